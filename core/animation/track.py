"""Any video -> a clip: MediaPipe tracks the largest face of each frame (53 weights, head pose,
position), gaps where no face was found are filled from the neighbouring frames, and the
video's sound track becomes the clip's audio.

The head pose is stored relative to the video's median pose (a camera that films from an angle
still gives a front-facing avatar); translation is the face's offset from its median position
in cm (MediaPipe's canonical face is metric).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from core.expressions import NUM_EXPRESSIONS

from .clip import Clip


@dataclass
class TrackStats:
    frames: int
    face_frames: int
    fps: float
    seconds: float          # wall time spent
    has_audio: bool

    @property
    def face_share(self) -> float:
        return self.face_frames / max(self.frames, 1)


class NoFaceError(ValueError):
    """No face was found in any frame of a video."""


def track_video(path: str | Path, progress: Callable[[float, str], None] = lambda f, s: None,
                cancelled: Callable[[], bool] = lambda: False, max_seconds: float | None = None,
                with_audio: bool = True, tracker=None) -> tuple[Clip, TrackStats]:
    """Track `path` into a clip at the video's frame rate. Raises VideoSourceError (unreadable
    video), NoFaceError (no face anywhere) or AudioError (a damaged sound track)."""
    import time

    from core.tracking import FaceTracker
    from core.video.sources import VideoFileSource

    from .audio import read_audio

    t0 = time.perf_counter()
    path = Path(path)
    src = VideoFileSource(path)
    fps = src.fps if 1.0 <= src.fps <= 240.0 else 25.0
    total = src.frame_count or 0
    limit = int(max_seconds * fps) if max_seconds else None
    own = tracker is None
    tracker = tracker or FaceTracker(num_faces=1)
    weights, pose, trans, found = [], [], [], []
    try:
        with src:
            for frame in src:
                if cancelled() or (limit is not None and frame.index >= limit):
                    break
                faces = tracker.track(frame.image, frame.index / fps)
                if faces:
                    f = max(faces, key=lambda f: f.box[2] * f.box[3])
                    weights.append(f.weights)
                    pose.append((f.yaw, f.pitch, f.roll))
                    trans.append(np.asarray(f.matrix, np.float32)[:3, 3])
                    found.append(True)
                else:
                    weights.append(np.zeros(NUM_EXPRESSIONS, np.float32))
                    pose.append((0.0, 0.0, 0.0))
                    trans.append(np.zeros(3, np.float32))
                    found.append(False)
                if frame.index % 25 == 0:
                    n = frame.index + 1
                    progress(min(0.95, n / total) if total else 0.5, f"tracking frame {n}/{total or '?'}")
    finally:
        if own:
            tracker.close()
    if not weights:
        raise NoFaceError(f"{path.name}: no frames were decoded.")
    found_arr = np.array(found)
    if not found_arr.any():
        raise NoFaceError(f"{path.name}: no face was found in any of its {len(found)} frames.")
    w = _fill_gaps(np.array(weights, np.float32), found_arr)
    p = _fill_gaps(np.array(pose, np.float32), found_arr)
    t = _fill_gaps(np.array(trans, np.float32), found_arr)
    p -= np.median(p[found_arr], axis=0)
    t -= np.median(t[found_arr], axis=0)
    t[:, 2] *= 0.3      # depth from a single camera is noisy; keep a little of it
    audio = read_audio(path, required=False, **({'max_seconds': max_seconds} if max_seconds else {})) \
        if with_audio else None
    clip = Clip.from_streams(w, p, t, fps=fps, name=path.stem, source=str(path), audio=audio,
                             meta={"face_frames": int(found_arr.sum()), "frames": len(found)})
    progress(1.0, "tracked")
    return clip, TrackStats(len(found), int(found_arr.sum()), fps, time.perf_counter() - t0, audio is not None)


def _fill_gaps(values: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Frames without a face take values interpolated linearly between the nearest tracked
    frames (held at the ends)."""
    if found.all():
        return values
    x = np.arange(len(values))
    good = np.flatnonzero(found)
    out = values.copy()
    for c in range(values.shape[1]):
        out[:, c] = np.interp(x, good, values[good, c])
    return out
