"""What a video source hands out: frames with timestamps, and a status a UI can show."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np


@dataclass(frozen=True)
class Frame:
    image: np.ndarray   # (H, W, 3) uint8, BGR channel order
    index: int          # 0-based count of frames delivered by this source
    timestamp_s: float  # camera: seconds since the source opened; file: media time; images: index / fps
    source: str = ""    # the spec the source was opened with (a file name, "camera 0")


class SourceState(str, Enum):
    OPENING = "opening"
    LIVE = "live"                  # delivering frames
    RECONNECTING = "reconnecting"  # camera missing, busy or unplugged; retrying with backoff
    ENDED = "ended"                # file or folder fully read
    CLOSED = "closed"              # close() was called
    FAILED = "failed"              # gave up (unreadable file, camera never came back in time)


@dataclass(frozen=True)
class SourceStatus:
    state: SourceState
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.state in (SourceState.OPENING, SourceState.LIVE, SourceState.ENDED)

    def __str__(self) -> str:
        return f"{self.state.value}: {self.message}" if self.message else self.state.value
