"""Per-frame live analysis: track faces, crop, classify, and the CSV row schema.

This is the API the webcam panel builds on: feed frames from core.video, get FaceResult
objects (tracking + expression) back, draw them with core.fer.overlay.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.tracking import FaceTracker, TrackedFace
from core.video import Frame

from .classifier import ExpressionClassifier
from .crop import face_crop
from .model import FER_CLASSES

# One row per (frame, face). Documented in docs/FER.md; tests assert this exact header.
CSV_COLUMNS: tuple[str, ...] = (
    "frame", "time_s", "face_id", "box_x", "box_y", "box_w", "box_h", "label", "confidence",
    *(f"p_{c}" for c in FER_CLASSES), "unknown", "yaw", "pitch", "roll",
    "top_blendshapes",
)


@dataclass
class FaceResult:
    face: TrackedFace
    crop: np.ndarray        # (48, 48) uint8 aligned grayscale
    crop_matrix: np.ndarray  # 2x3 image -> crop
    probs: np.ndarray       # (7,)
    unknown: float          # 0..1
    heatmap: np.ndarray | None = None  # (48, 48) Grad-CAM in crop space, when requested

    @property
    def label(self) -> str:
        return FER_CLASSES[int(self.probs.argmax())]

    @property
    def confidence(self) -> float:
        return float(self.probs.max())

    def csv_row(self, frame: int, time_s: float) -> list:
        b = self.face.box
        top = ";".join(f"{n}:{v:.2f}" for n, v in self.face.top_blendshapes(3))
        return [frame, f"{time_s:.3f}", self.face.face_id, *(f"{v:.1f}" for v in b), self.label,
                f"{self.confidence:.4f}", *(f"{p:.4f}" for p in self.probs), f"{self.unknown:.4f}",
                f"{self.face.yaw:.1f}", f"{self.face.pitch:.1f}", f"{self.face.roll:.1f}", top]


def primary_result(results: list[FaceResult]) -> FaceResult | None:
    """The face that drives the avatar: the lowest id, i.e. the one tracked longest."""
    return min(results, key=lambda r: r.face.face_id) if results else None


class FerPipeline:
    """`process(frame)` -> list[FaceResult]; `timings` holds the last frame's stage times (s)."""

    def __init__(self, model: str | Path | None = None, landmarker: str | Path | None = None,
                 num_faces: int = 4, heatmap: bool = False, image_mode: bool = False):
        self.tracker = FaceTracker(landmarker, num_faces=num_faces)
        self.classifier = ExpressionClassifier(model)
        self.heatmap, self.image_mode = heatmap, image_mode
        self.timings: dict[str, float] = {}

    def process(self, frame: Frame) -> list[FaceResult]:
        t0 = time.perf_counter()
        faces = (self.tracker.detect(frame.image) if self.image_mode
                 else self.tracker.track(frame.image, frame.timestamp_s))
        t1 = time.perf_counter()
        crops = [face_crop(frame.image, f.landmarks) for f in faces]
        pred = self.classifier.predict(np.stack([c for c, _ in crops]) if crops else np.zeros((0, 48, 48), np.uint8))
        results = [FaceResult(f, c, m, pred.probs[i], float(pred.unknown[i]))
                   for i, (f, (c, m)) in enumerate(zip(faces, crops))]
        if self.heatmap:
            for r in results:
                r.heatmap = self.classifier.gradcam(r.crop, int(r.probs.argmax()))  # class already known
        t2 = time.perf_counter()
        self.timings = {"track_s": t1 - t0, "classify_s": t2 - t1}
        return results

    def close(self) -> None:
        self.tracker.close()

    def __enter__(self) -> "FerPipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
