"""Playback and recording without Qt: a playhead over a clip that writes each frame to the
avatar document, sound output when a device exists, and a recorder that samples what the avatar
shows (the webcam puppet, sliders) into a new clip at a fixed rate.
"""
from __future__ import annotations

import numpy as np

from core.expressions import NUM_EXPRESSIONS

from .clip import GAZE, ROT, Clip, gaze_from_weights


class Playhead:
    """Time on a clip; `advance(dt)` moves it (looping or stopping at the end); `apply(avatar)`
    shows the frame (weights with gaze, head rotation) through the document's setters."""

    def __init__(self, clip: Clip | None = None, loop: bool = True):
        self.clip = clip
        self.time = 0.0
        self.loop = loop
        self.playing = False
        self._ev: np.ndarray | None = None

    def set_clip(self, clip: Clip | None) -> None:
        self.clip = clip
        self.time = 0.0 if clip is None else min(self.time, clip.duration)
        self.invalidate()

    def invalidate(self) -> None:
        """The clip was edited: re-evaluate keys on the next frame."""
        self._ev = None

    @property
    def frame(self) -> int:
        return 0 if self.clip is None else self.clip.frame_of(self.time)

    def seek(self, t: float) -> None:
        if self.clip is not None:
            self.time = float(min(max(t, 0.0), (self.clip.frames - 1) / self.clip.fps))

    def advance(self, dt: float) -> bool:
        """Move by dt seconds; False when a non-looping playhead reached the end (it stops)."""
        if self.clip is None:
            return False
        end = (self.clip.frames - 1) / self.clip.fps
        t = self.time + dt
        if t > end:
            if self.loop and end > 0:
                t = t % (end + 1.0 / self.clip.fps)
            else:
                self.time, self.playing = end, False
                return False
        self.time = t
        return True

    def values(self) -> np.ndarray:
        if self._ev is None:
            self._ev = self.clip.evaluated()
        return self.clip.frame_at(self.time, self._ev)

    def apply(self, avatar) -> np.ndarray:
        v = self.values()
        avatar.set_expression(v[:NUM_EXPRESSIONS])
        avatar.set_head_pose(v[ROT])
        return v


class AudioOut:
    """Plays a clip's audio from a time through sounddevice; `available` False (with `message`)
    where there is no PortAudio library or no output device, and then play() does nothing."""

    def __init__(self):
        from .audio import output_device_status
        self.available, self.message = output_device_status()

    def play(self, clip: Clip, t: float) -> None:
        if not self.available or clip.audio is None:
            return
        import sounddevice as sd

        from .audio import padded_samples
        samples = padded_samples(clip.audio, clip.duration)
        start = int(t * clip.audio.rate)
        try:
            sd.play(samples[start:], clip.audio.rate)
        except Exception as exc:   # the device went away mid-session
            self.available, self.message = False, f"audio output failed: {exc}"

    def stop(self) -> None:
        if self.available:
            try:
                import sounddevice as sd
                sd.stop()
            except Exception:
                pass


class Recorder:
    """Samples (53 weights, yaw/pitch/roll) at `fps` into a clip; translation stays zero (the
    viewport's puppet has none)."""

    def __init__(self, fps: float = 25.0):
        self.fps = float(fps)
        self.weights: list[np.ndarray] = []
        self.poses: list[np.ndarray] = []

    def add(self, weights: np.ndarray, head_pose: np.ndarray) -> None:
        self.weights.append(np.asarray(weights, np.float32).copy())
        self.poses.append(np.asarray(head_pose, np.float32).copy())

    def sample(self, avatar) -> None:
        self.add(avatar.expression, avatar.head_pose)

    @property
    def frames(self) -> int:
        return len(self.weights)

    def clip(self, name: str = "Recording", source: str = "webcam") -> Clip | None:
        if not self.weights:
            return None
        w = np.stack(self.weights)
        clip = Clip.from_streams(w, np.stack(self.poses), fps=self.fps, name=name, source=source)
        clip.data[:, GAZE] = gaze_from_weights(w)
        return clip
