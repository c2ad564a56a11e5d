"""The one-stage engine behind the same per-frame API as FerPipeline: `process(frame)` ->
list[FaceResult], so `main.py fer --engine one-stage`, the CSV writer and the overlay work
unchanged. The detector gives boxes and expression probabilities in one pass; it has no
landmarks, head pose, blendshapes or open-set score, so those columns stay empty (NaN / 0)."""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from core.tracking.ids import FaceIdAssigner
from core.tracking.tracker import TrackedFace
from core.video import Frame

from .crop import SIZE
from .detector import OneStageDetector
from .pipeline import FaceResult


class DetectedFace(TrackedFace):
    """A face from the detector: box and id only."""

    def top_blendshapes(self, k: int = 3) -> list[tuple[str, float]]:
        return []


def _box_crop(gray: np.ndarray, box) -> tuple[np.ndarray, np.ndarray]:
    """48x48 crop of the box (square, centred) and its 2x3 image->crop matrix."""
    x, y, w, h = box
    side = max(w, h)
    s = SIZE / max(side, 1e-6)
    m = np.array([[s, 0, -(x + w / 2 - side / 2) * s], [0, s, -(y + h / 2 - side / 2) * s]], np.float32)
    return cv2.warpAffine(gray, m, (SIZE, SIZE), borderMode=cv2.BORDER_REPLICATE), m


class OneStagePipeline:
    def __init__(self, model: str | Path | None = None, num_faces: int = 4, score_threshold: float = 0.3):
        self.detector = OneStageDetector(model, score_threshold=score_threshold, max_faces=num_faces)
        self.ids = FaceIdAssigner()
        self.timings: dict[str, float] = {}

    def process(self, frame: Frame) -> list[FaceResult]:
        t0 = time.perf_counter()
        dets = self.detector.detect(frame.image)
        t1 = time.perf_counter()
        gray = frame.image if frame.image.ndim == 2 else cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
        results = []
        for d, fid in zip(dets, self.ids.assign([d.box for d in dets])):
            face = DetectedFace(fid, d.box, np.zeros((0, 3), np.float32), np.zeros(52, np.float32),
                                np.zeros(53, np.float32), np.eye(4, dtype=np.float32),
                                yaw=float("nan"), pitch=float("nan"), roll=float("nan"), extra={"score": d.score})
            crop, m = _box_crop(gray, d.box)
            results.append(FaceResult(face, crop, m, d.probs.astype(np.float32), float("nan")))
        self.timings = {"detect_s": t1 - t0, "classify_s": 0.0}
        return results

    def close(self) -> None:
        pass

    def __enter__(self) -> "OneStagePipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
