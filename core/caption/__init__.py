"""Expression captions of a video or clip (after FaceTrack-MM / FEC-Bench): the main character's
expression events in time order (core.caption.events), told as a paragraph (core.caption.text),
scored against hand-made references (core.caption.evaluate)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .events import Event, blink_rate, detect_events
from .text import paragraph
from .track import MainFace, NoFaceError, track_main_face

__all__ = ["Caption", "Event", "NoFaceError", "caption_clip", "caption_video", "detect_events"]


@dataclass
class Caption:
    text: str
    events: list[Event]
    seconds: float            # media time described
    seen_share: float         # of frames where the main character was seen
    cuts: list[float]
    wall_seconds: float = 0.0

    def to_json(self) -> dict:
        return {"caption": self.text, "duration_s": round(self.seconds, 2),
                "face_seen_share": round(self.seen_share, 3), "cuts_s": [round(c, 2) for c in self.cuts],
                "blinks_per_minute": round(blink_rate(self.events, self.seconds), 1),
                "events": [e.to_json() for e in self.events]}


def caption_face(face: MainFace) -> Caption:
    events = detect_events(face.weights, face.rotation, face.fps, face.valid)
    seen = float(face.valid.mean()) if len(face.valid) else 0.0
    text = paragraph(events, face.duration, seen, len(face.cuts))
    return Caption(text, events, face.duration, seen, face.cuts, face.seconds)


def caption_video(path: str | Path, progress: Callable[[float, str], None] = lambda f, s: None,
                  cancelled: Callable[[], bool] = lambda: False) -> Caption:
    """Raises VideoSourceError or NoFaceError with a message for the user."""
    import time
    t0 = time.perf_counter()
    cap = caption_face(track_main_face(path, progress, cancelled))
    cap.wall_seconds = time.perf_counter() - t0
    return cap


def caption_clip(clip) -> Caption:
    """A recorded or generated animation clip (core.animation.Clip)."""
    w, rot = clip.weights(), clip.rotation()
    face = MainFace(w, rot, np.ones(len(w), bool), clip.fps)
    return caption_face(face)
