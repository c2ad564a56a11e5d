"""The main character of a video, tracked through cuts, as per-frame expression weights and pose.

Every sampled frame is tracked with up to MAX_FACES faces. A face's track is scored by how large
and how central it is, summed over the frames it is seen in; the best track is the main
character. A cut (the picture changes at once) starts a new shot, where the face ids of the
tracker mean nothing any more: in each other shot the main character is the track that looks
most like the best one (a colour histogram of the face), if any looks like it enough.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from core.expressions import NUM_EXPRESSIONS

MAX_FACES = 3
MAX_FPS = 15.0          # blinks (~0.1-0.3 s) still show; a 30 s clip is tracked in seconds
MAX_SIDE = 640          # frames are reduced to this before tracking
CUT_DIFF = 45.0         # mean absolute change of a 32x32 grey thumbnail (0-255) that marks a cut
SAME_PERSON = 0.55      # histogram correlation above which a face in another shot is the same person


class NoFaceError(ValueError):
    """No face in any frame of the video."""


@dataclass
class MainFace:
    weights: np.ndarray        # (N, 53)
    rotation: np.ndarray       # (N, 3) yaw, pitch, roll degrees
    valid: np.ndarray          # (N,) the main character was seen in that frame
    fps: float                 # of the sampled frames
    cuts: list[float] = field(default_factory=list)   # seconds where a new shot starts
    faces_seen: int = 0        # distinct face tracks over the video
    seconds: float = 0.0       # wall time

    @property
    def duration(self) -> float:
        return len(self.valid) / self.fps


def _hist(image_bgr: np.ndarray, box) -> np.ndarray | None:
    x, y, w, h = (int(round(v)) for v in box)
    # the inner face: cheeks, nose and mouth (hair and background left out)
    x0, y0 = max(0, x + w // 5), max(0, y + h // 4)
    x1, y1 = min(image_bgr.shape[1], x + w - w // 5), min(image_bgr.shape[0], y + h - h // 10)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    hsv = cv2.cvtColor(image_bgr[y0:y1, x0:x1], cv2.COLOR_BGR2HSV)
    h2 = cv2.calcHist([hsv], [0, 1], None, [12, 8], [0, 180, 0, 256]).reshape(-1)
    return h2 / max(float(h2.sum()), 1e-6)


def _similar(a: np.ndarray, b: np.ndarray) -> float:
    return float(cv2.compareHist(a.astype(np.float32), b.astype(np.float32), cv2.HISTCMP_CORREL))


def choose_main(tracks: dict, shots: int) -> dict[int, tuple]:
    """Per shot, the key of the main character's track (absent where nobody resembles it).
    `tracks`: key (shot, id) -> {"score": float, "hist": summed histogram}."""
    if not tracks:
        return {}
    best = max(tracks, key=lambda k: tracks[k]["score"])
    ref = tracks[best]["hist"]
    main = {best[0]: best}
    for shot in range(shots):
        if shot == best[0]:
            continue
        cands = [k for k in tracks if k[0] == shot and tracks[k]["hist"] is not None]
        if not cands:
            continue
        sim, k = max((_similar(tracks[k]["hist"], ref), tracks[k]["score"], k) for k in cands)[0::2]
        if sim >= SAME_PERSON:
            main[shot] = k
    return main


def track_main_face(path: str | Path, progress: Callable[[float, str], None] = lambda f, s: None,
                    cancelled: Callable[[], bool] = lambda: False, max_fps: float = MAX_FPS,
                    tracker_factory=None) -> MainFace:
    """Raises VideoSourceError (unreadable video) or NoFaceError."""
    from core.tracking import FaceTracker
    from core.video.sources import VideoFileSource

    t0 = time.perf_counter()
    path = Path(path)
    src = VideoFileSource(path)
    fps = src.fps if 1.0 <= src.fps <= 240.0 else 25.0
    stride = max(1, int(round(fps / max_fps)))
    total = src.frame_count or 0
    tracker = (tracker_factory or (lambda: FaceTracker(num_faces=MAX_FACES)))()
    frames: list[dict] = []          # per sampled frame: key -> (weights, rotation)
    tracks: dict[tuple, dict] = {}
    shot, prev, cuts = 0, None, []
    try:
        with src:
            for frame in src:
                if cancelled():
                    break
                if frame.index % stride:
                    continue
                img = frame.image
                s = MAX_SIDE / max(img.shape[:2])
                if s < 1:
                    img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
                thumb = cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
                if prev is not None and float(np.abs(thumb - prev).mean()) > CUT_DIFF:
                    shot += 1
                    cuts.append(frame.index / fps)
                prev = thumb
                found = {}
                h, w = img.shape[:2]
                for f in tracker.track(img, frame.index / fps):
                    key = (shot, f.face_id)
                    bx, by, bw, bh = f.box
                    centre = np.hypot((bx + bw / 2) / w - 0.5, (by + bh / 2) / h - 0.5) / np.hypot(0.5, 0.5)
                    t = tracks.setdefault(key, {"score": 0.0, "hist": None})
                    t["score"] += (bw * bh) / (w * h) * (1.0 - centre)
                    hist = _hist(img, f.box)
                    if hist is not None:
                        t["hist"] = hist if t["hist"] is None else t["hist"] + hist
                    found[key] = (f.weights, (f.yaw, f.pitch, f.roll))
                frames.append(found)
                if len(frames) % 15 == 0:
                    n = frame.index + 1
                    progress(min(0.95, n / total) if total else 0.5, f"tracking frame {n}/{total or '?'}")
    finally:
        tracker.close()
    if not frames:
        raise NoFaceError(f"{path.name}: no frames could be decoded.")
    main = choose_main(tracks, shot + 1)
    if not main:
        raise NoFaceError(f"No face was found in {path.name} ({len(frames)} frames looked at).")
    n = len(frames)
    weights = np.zeros((n, NUM_EXPRESSIONS), np.float32)
    rotation = np.zeros((n, 3), np.float32)
    valid = np.zeros(n, bool)
    shot_of = np.searchsorted(np.array(cuts) * fps / stride, np.arange(n), side="right")
    for i, found in enumerate(frames):
        key = main.get(int(shot_of[i]))
        if key in found:
            weights[i], rotation[i], valid[i] = found[key][0], found[key][1], True
    # unseen frames hold the nearest seen values (they are marked invalid for the events)
    if not valid.all():
        good = np.flatnonzero(valid)
        x = np.arange(n)
        for arr in (weights, rotation):
            for c in range(arr.shape[1]):
                arr[:, c] = np.interp(x, good, arr[good, c])
    progress(1.0, "tracked")
    return MainFace(weights, rotation, valid, fps / stride, cuts, len(tracks), time.perf_counter() - t0)
