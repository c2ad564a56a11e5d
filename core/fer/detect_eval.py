"""Scoring face + expression detectors on a held-out detection set (core.fer.detdata layout).

VOC protocol: for each class, detections of all images ranked by score; one counts as a true
positive when its box overlaps an unclaimed ground-truth face of that class with IoU >= 0.5;
AP is the area under the interpolated precision-recall curve (all points, VOC 2010+). mAP is the
mean over the 7 classes. Every detector reports each box once per class with score
objectness x p(class), so a face detected with the wrong top class still earns some credit at
a lower rank, the same rule for all. "face AP" ignores the class (detection alone).

The two-stage pipeline (MediaPipe + the shipped classifier) reports the 478-landmark extent as
its box; TWO_STAGE_BOX maps it to our face-box convention with a centre shift and scale measured
on training scenes (scripts/train_detector.py --calibrate-two-stage), so it is not penalised for
a different box convention. MediaPipe gives no face score, so its objectness is 1.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .model import FER_CLASSES

# (dx, dy) of the centre in units of the MediaPipe box size, (sw, sh) size ratios: medians over
# 121 faces MediaPipe found in 150 training scenes (18:14 UTC 2026-12-03 run); the conventions
# nearly agree already
TWO_STAGE_BOX = (0.003, -0.026, 0.954, 1.050)

# detector: grey or BGR image -> list of (x1, y1, x2, y2, objectness, probs (7,))
Detector = Callable[[np.ndarray], list]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None] - inter, 1e-9)


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    i = np.flatnonzero(r[1:] != r[:-1])
    return float(((r[i + 1] - r[i]) * p[i + 1]).sum())


def average_precision(dets: list[tuple[int, float, np.ndarray]], gts: list[np.ndarray], iou: float = 0.5) -> float:
    """dets: (image index, score, box x1y1x2y2); gts[i]: (k, 4) boxes of the class in image i."""
    n_gt = sum(len(g) for g in gts)
    if n_gt == 0:
        return float("nan")
    used = [np.zeros(len(g), bool) for g in gts]
    tp = np.zeros(len(dets))
    for j, (i, _, box) in enumerate(sorted(dets, key=lambda d: -d[1])):
        g = gts[i]
        if len(g):
            o = iou_matrix(box[None], g)[0]
            k = int(o.argmax())
            if o[k] >= iou and not used[i][k]:
                used[i][k] = True
                tp[j] = 1
    ctp = np.cumsum(tp)
    if not len(dets):
        return 0.0
    return voc_ap(ctp / n_gt, ctp / np.arange(1, len(dets) + 1))


def score_detections(all_dets: list[list], all_gts: list[np.ndarray]) -> dict:
    """all_dets[i]: detections of image i; all_gts[i]: (k, 5) class, x1, y1, x2, y2."""
    per_class = {}
    for c, name in enumerate(FER_CLASSES):
        dets = [(i, float(d[4] * d[5][c]), np.asarray(d[:4], np.float64))
                for i, ds in enumerate(all_dets) for d in ds]
        gts = [g[g[:, 0] == c, 1:].astype(np.float64) for g in all_gts]
        per_class[name] = average_precision(dets, gts)
    face = average_precision([(i, float(d[4]), np.asarray(d[:4], np.float64)) for i, ds in enumerate(all_dets)
                              for d in ds], [g[:, 1:].astype(np.float64) for g in all_gts])
    valid = [v for v in per_class.values() if np.isfinite(v)]
    # top-1 expression accuracy on faces the detector found (IoU >= 0.5 with its best box)
    hit = right = 0
    for ds, g in zip(all_dets, all_gts):
        if not len(ds) or not len(g):
            continue
        boxes = np.array([d[:4] for d in ds], np.float64)
        o = iou_matrix(g[:, 1:].astype(np.float64), boxes)
        for k in range(len(g)):
            j = int(o[k].argmax())
            if o[k, j] >= 0.5:
                hit += 1
                right += int(np.argmax(ds[j][5]) == int(g[k, 0]))
    n_faces = int(sum(len(g) for g in all_gts))
    return {"mAP50": round(float(np.mean(valid)), 4) if valid else float("nan"),
            "AP50": {k: round(v, 4) for k, v in per_class.items()}, "face_AP50": round(face, 4),
            "recall50": round(hit / max(1, n_faces), 4), "expression_accuracy_found": round(right / max(1, hit), 4)}


def one_stage_runner(detector, threshold: float = 0.02) -> Detector:
    def run(image: np.ndarray) -> list:
        return [(d.box[0], d.box[1], d.box[0] + d.box[2], d.box[1] + d.box[3], d.score, d.probs)
                for d in detector.detect(image, score_threshold=threshold)]
    return run


def two_stage_runner(pipeline) -> Detector:
    """FerPipeline in image mode; boxes mapped by TWO_STAGE_BOX."""
    from core.video import Frame
    dx, dy, sw, sh = TWO_STAGE_BOX

    def run(image: np.ndarray) -> list:
        bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image
        out = []
        for r in pipeline.process(Frame(bgr, 0.0, 0)):
            x, y, w, h = r.face.box
            cx, cy = x + w / 2 + dx * w, y + h / 2 + dy * h
            w, h = w * sw, h * sh
            out.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, 1.0, r.probs))
        return out
    return run


def evaluate_set(detector: Detector, items: list[tuple[Path, np.ndarray]],
                 progress: Callable[[int], None] = lambda i: None) -> dict:
    dets, gts, secs = [], [], []
    for i, (path, gt) in enumerate(items):
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise ValueError(f"cannot read image {path}")
        t = time.perf_counter()
        dets.append(detector(img))
        secs.append(time.perf_counter() - t)
        gts.append(gt)
        progress(i)
    res = score_detections(dets, gts)
    res["images"], res["faces"] = len(items), int(sum(len(g) for g in gts))
    res["ms_per_image_median"] = round(1000 * float(np.median(secs)), 1)
    return res


def frame_latency(detector: Detector, frame_bgr: np.ndarray, n: int = 60) -> dict:
    """End to end on one 640x480 BGR frame (grey conversion, resize, network, decoding, NMS)."""
    frame = cv2.resize(frame_bgr, (640, 480), interpolation=cv2.INTER_AREA)
    for _ in range(3):
        detector(frame)
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        detector(frame)
        t.append(time.perf_counter() - t0)
    med = float(np.median(t))
    return {"ms_median": round(1000 * med, 2), "ms_p90": round(1000 * float(np.quantile(t, 0.9)), 2),
            "fps_median": round(1 / med, 1)}
