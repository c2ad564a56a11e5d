"""An animation clip: per frame the 53 expression weights, head rotation and translation and
gaze, at a fixed rate, with keyframes, markers and an optional audio track.

Plain numpy (trimesh style): the samples are one (N, C) float32 array whose columns are the
channels named in CHANNELS; keys and markers are small lists beside it. A channel with keys
follows its keys (linear or smooth interpolation between them, held before the first and after
the last key); its sampled data stay underneath and come back when the keys are deleted.
Gaze (degrees) is the one eye-direction control: the eight eyeLook* weights an evaluated frame
carries are computed from it, so a gaze edit and the weights never disagree.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from core.expressions import EXPRESSION_NAMES, INDEX, NUM_EXPRESSIONS

POSE_CHANNELS = ("head.yaw", "head.pitch", "head.roll", "head.tx", "head.ty", "head.tz")
GAZE_CHANNELS = ("gaze.x", "gaze.y")
CHANNELS: tuple[str, ...] = tuple(EXPRESSION_NAMES) + POSE_CHANNELS + GAZE_CHANNELS
CHANNEL_INDEX = {name: i for i, name in enumerate(CHANNELS)}
NUM_CHANNELS = len(CHANNELS)
ROT = slice(NUM_EXPRESSIONS, NUM_EXPRESSIONS + 3)          # yaw, pitch, roll (degrees)
TRANS = slice(NUM_EXPRESSIONS + 3, NUM_EXPRESSIONS + 6)    # head translation (cm)
GAZE = slice(NUM_EXPRESSIONS + 6, NUM_EXPRESSIONS + 8)     # x: toward the subject's left, y: up
# Range of each channel: weights [0, 1], angles in degrees, translation in cm.
LIMITS = np.array([(0.0, 1.0)] * NUM_EXPRESSIONS + [(-90.0, 90.0)] * 3 + [(-50.0, 50.0)] * 3
                  + [(-40.0, 40.0)] * 2, np.float32)
GAZE_DEG = 30.0          # eye turn at eyeLook* weight 1 (the head rig's default)
INTERPOLATIONS = ("linear", "smooth")
MAX_FRAMES = 30 * 60 * 60 * 2   # two hours at 30 fps
_LOOK = {k: INDEX[k] for k in ("eyeLookOut_L", "eyeLookIn_L", "eyeLookOut_R", "eyeLookIn_R",
                               "eyeLookUp_L", "eyeLookUp_R", "eyeLookDown_L", "eyeLookDown_R")}


def gaze_from_weights(weights: np.ndarray) -> np.ndarray:
    """(N, 53) weights -> (N, 2) gaze degrees (x toward the subject's left, y up)."""
    w = np.asarray(weights, np.float32).reshape(-1, NUM_EXPRESSIONS)
    g = lambda k: w[:, _LOOK[k]]   # noqa: E731
    x = 0.5 * (g("eyeLookOut_L") + g("eyeLookIn_R") - g("eyeLookIn_L") - g("eyeLookOut_R"))
    y = 0.5 * (g("eyeLookUp_L") + g("eyeLookUp_R") - g("eyeLookDown_L") - g("eyeLookDown_R"))
    return np.stack([x, y], 1) * GAZE_DEG


def weights_with_gaze(weights: np.ndarray, gaze: np.ndarray) -> np.ndarray:
    """Copy of (N, 53) weights with the eyeLook* weights set from (N, 2) gaze degrees."""
    w = np.array(weights, np.float32).reshape(-1, NUM_EXPRESSIONS)
    gz = np.asarray(gaze, np.float32).reshape(-1, 2) / GAZE_DEG
    x, y = np.clip(gz[:, 0], -1, 1), np.clip(gz[:, 1], -1, 1)
    left, right = np.maximum(x, 0), np.maximum(-x, 0)
    w[:, _LOOK["eyeLookOut_L"]] = left
    w[:, _LOOK["eyeLookIn_R"]] = left
    w[:, _LOOK["eyeLookIn_L"]] = right
    w[:, _LOOK["eyeLookOut_R"]] = right
    for side in ("L", "R"):
        w[:, _LOOK[f"eyeLookUp_{side}"]] = np.maximum(y, 0)
        w[:, _LOOK[f"eyeLookDown_{side}"]] = np.maximum(-y, 0)
    return w


@dataclass
class Key:
    """A keyframe of one channel: value at `frame`; `interp` shapes the segment to the next key."""
    channel: str
    frame: int
    value: float
    interp: str = "smooth"


@dataclass
class Marker:
    frame: int
    label: str = ""


@dataclass
class AudioTrack:
    """Mono float32 samples in [-1, 1] at `rate` Hz; `offset` seconds after the clip's start."""
    samples: np.ndarray
    rate: int
    offset: float = 0.0

    def __post_init__(self) -> None:
        s = np.asarray(self.samples, np.float32).reshape(-1)
        if not 1000 <= int(self.rate) <= 192000:
            raise ValueError(f"audio rate must be 1000-192000 Hz, got {self.rate}")
        if not np.all(np.isfinite(s)):
            raise ValueError("audio samples contain NaN or infinity")
        self.samples, self.rate, self.offset = np.clip(s, -1, 1), int(self.rate), float(self.offset)

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate

    def window(self, start_s: float, end_s: float) -> "AudioTrack":
        """The part between clip times start_s and end_s, re-based to start at 0."""
        a = int(round((start_s - self.offset) * self.rate))
        b = int(round((end_s - self.offset) * self.rate))
        lo, hi = max(a, 0), min(max(b, 0), len(self.samples))
        return AudioTrack(self.samples[lo:hi].copy() if hi > lo else np.zeros(0, np.float32),
                          self.rate, max(-a, 0) / self.rate)


@dataclass
class Clip:
    """Samples (N, C) over CHANNELS at `fps`; keys, markers and an optional audio track."""
    data: np.ndarray
    fps: float = 25.0
    name: str = "Clip"
    keys: list[Key] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    audio: AudioTrack | None = None
    source: str = ""              # where the motion came from (a video, "webcam", "listener")
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        d = np.asarray(self.data, np.float32)
        if d.ndim != 2 or d.shape[1] != NUM_CHANNELS or not 1 <= len(d) <= MAX_FRAMES:
            raise ValueError(f"clip data must be (frames, {NUM_CHANNELS}) with 1-{MAX_FRAMES} frames, "
                             f"got {d.shape}")
        if not np.all(np.isfinite(d)):
            raise ValueError("clip data contain NaN or infinity")
        if not (np.isfinite(self.fps) and 1.0 <= float(self.fps) <= 240.0):
            raise ValueError(f"clip rate must be 1-240 frames per second, got {self.fps}")
        self.data = np.clip(d, LIMITS[:, 0], LIMITS[:, 1]).astype(np.float32)
        self.fps = float(self.fps)
        self.name = str(self.name)[:256]
        for k in self.keys:
            _check_key(k, len(self.data))
        self.keys.sort(key=lambda k: (k.channel, k.frame))

    def __repr__(self) -> str:
        return (f"Clip(name={self.name!r}, frames={self.frames}, fps={self.fps:g}, keys={len(self.keys)}, "
                f"markers={len(self.markers)}, audio={'yes' if self.audio is not None else 'no'})")

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def from_streams(cls, weights: np.ndarray, rotation: np.ndarray | None = None,
                     translation: np.ndarray | None = None, gaze: np.ndarray | None = None,
                     fps: float = 25.0, **kw) -> "Clip":
        """From (N, 53) weights, (N, 3) yaw/pitch/roll degrees, (N, 3) cm and (N, 2) gaze degrees
        (None: zeros; gaze None: read from the weights' eyeLook* values)."""
        w = np.asarray(weights, np.float32).reshape(-1, NUM_EXPRESSIONS)
        n = len(w)
        data = np.zeros((n, NUM_CHANNELS), np.float32)
        data[:, :NUM_EXPRESSIONS] = w
        if rotation is not None:
            data[:, ROT] = np.asarray(rotation, np.float32).reshape(n, 3)
        if translation is not None:
            data[:, TRANS] = np.asarray(translation, np.float32).reshape(n, 3)
        data[:, GAZE] = gaze_from_weights(w) if gaze is None else np.asarray(gaze, np.float32).reshape(n, 2)
        return cls(data, fps, **kw)

    @classmethod
    def still(cls, frames: int, fps: float = 25.0, weights: np.ndarray | None = None, **kw) -> "Clip":
        w = np.zeros((frames, NUM_EXPRESSIONS), np.float32)
        if weights is not None:
            w[:] = np.asarray(weights, np.float32)
        return cls.from_streams(w, fps=fps, **kw)

    def copy(self) -> "Clip":
        return copy.deepcopy(self)

    # --- read ---------------------------------------------------------------------------------
    @property
    def frames(self) -> int:
        return len(self.data)

    @property
    def duration(self) -> float:
        return self.frames / self.fps

    def channel_index(self, channel: str) -> int:
        if channel not in CHANNEL_INDEX:
            raise ValueError(f"unknown channel '{channel}' (expected an expression name, "
                             f"{', '.join(POSE_CHANNELS + GAZE_CHANNELS)})")
        return CHANNEL_INDEX[channel]

    def keyed_channels(self) -> list[str]:
        return sorted({k.channel for k in self.keys}, key=CHANNEL_INDEX.get)

    def keys_of(self, channel: str) -> list[Key]:
        return [k for k in self.keys if k.channel == channel]

    def curve(self, channel: str) -> np.ndarray:
        """The evaluated values of one channel over all frames (keys applied)."""
        c = self.channel_index(channel)
        keys = self.keys_of(channel)
        if not keys:
            return self.data[:, c].copy()
        return interpolate_keys(keys, self.frames)

    def evaluated(self) -> np.ndarray:
        """(N, C) with keys applied and the eyeLook* weights taken from gaze."""
        out = self.data.copy()
        for ch in self.keyed_channels():
            out[:, CHANNEL_INDEX[ch]] = self.curve(ch)
        out = np.clip(out, LIMITS[:, 0], LIMITS[:, 1])
        out[:, :NUM_EXPRESSIONS] = weights_with_gaze(out[:, :NUM_EXPRESSIONS], out[:, GAZE])
        return out

    def weights(self) -> np.ndarray:
        return self.evaluated()[:, :NUM_EXPRESSIONS]

    def rotation(self) -> np.ndarray:
        return self.evaluated()[:, ROT]

    def translation(self) -> np.ndarray:
        return self.evaluated()[:, TRANS]

    def gaze(self) -> np.ndarray:
        return self.evaluated()[:, GAZE]

    def frame_at(self, t: float, evaluated: np.ndarray | None = None) -> np.ndarray:
        """Channel values at time t seconds (linear between frames, clamped to the clip)."""
        ev = self.evaluated() if evaluated is None else evaluated
        x = min(max(t * self.fps, 0.0), self.frames - 1.0)
        i = int(np.floor(x))
        j = min(i + 1, self.frames - 1)
        a = x - i
        return (1 - a) * ev[i] + a * ev[j]

    def frame_of(self, t: float) -> int:
        return int(min(max(round(t * self.fps), 0), self.frames - 1))

    # --- keys ---------------------------------------------------------------------------------
    def set_key(self, channel: str, frame: int, value: float | None = None, interp: str = "smooth") -> Key:
        """Add or replace the key of `channel` at `frame`; value None: the channel's current value
        there (keys a captured curve without changing it at that frame)."""
        self.channel_index(channel)
        if value is None:
            value = float(self.curve(channel)[int(frame)])
        self.delete_key(channel, frame)
        key = Key(channel, int(frame), float(value), interp)
        _check_key(key, self.frames)
        key.value = float(np.clip(key.value, *LIMITS[CHANNEL_INDEX[channel]]))
        self.keys.append(key)
        self.keys.sort(key=lambda k: (k.channel, k.frame))
        return key

    def delete_key(self, channel: str, frame: int) -> bool:
        before = len(self.keys)
        self.keys = [k for k in self.keys if not (k.channel == channel and k.frame == int(frame))]
        return len(self.keys) != before

    def move_key(self, channel: str, frame: int, new_frame: int, new_value: float | None = None) -> Key:
        old = next((k for k in self.keys if k.channel == channel and k.frame == int(frame)), None)
        if old is None:
            raise ValueError(f"no key of {channel} at frame {frame}")
        self.delete_key(channel, frame)
        return self.set_key(channel, int(np.clip(new_frame, 0, self.frames - 1)),
                            old.value if new_value is None else new_value, old.interp)

    def bake_keys(self, channels: list[str] | None = None) -> None:
        """Write the keyed curves into the samples and drop those keys."""
        for ch in channels or self.keyed_channels():
            self.data[:, CHANNEL_INDEX[ch]] = self.curve(ch)
            self.keys = [k for k in self.keys if k.channel != ch]

    # --- editing ------------------------------------------------------------------------------
    def smooth(self, channels: list[str] | None = None, start: int = 0, end: int | None = None,
               sigma: float = 2.0) -> None:
        """Gaussian smoothing (sigma in frames) of the chosen channels between frames start and
        end (exclusive); the edges of the selection blend into the untouched frames over 2 sigma.
        Keyed channels are baked first (smoothing edits the curve you see)."""
        chans = list(channels) if channels else list(CHANNELS)
        end = self.frames if end is None else int(end)
        start = int(max(0, start))
        if end - start < 2 or sigma <= 0:
            return
        self.bake_keys([c for c in chans if c in self.keyed_channels()])
        idx = [self.channel_index(c) for c in chans]
        smoothed = gaussian_smooth(self.data[:, idx], sigma)
        blend = np.zeros(self.frames, np.float32)
        blend[start:end] = 1.0
        ramp = max(1, int(round(2 * sigma)))
        if ramp > 1:
            kernel = np.ones(ramp, np.float32) / ramp
            blend = np.clip(np.convolve(blend, kernel, mode="same"), 0, 1) * (blend > 0)
        self.data[:, idx] = blend[:, None] * smoothed + (1 - blend[:, None]) * self.data[:, idx]

    def trim(self, start: int, end: int) -> None:
        """Keep frames [start, end): keys, markers and audio move with them."""
        start, end = int(max(0, start)), int(min(self.frames, end))
        if end - start < 1:
            raise ValueError(f"trim to frames {start}-{end} leaves nothing")
        self.data = self.data[start:end].copy()
        self.keys = [Key(k.channel, k.frame - start, k.value, k.interp) for k in self.keys
                     if start <= k.frame < end]
        self.markers = [Marker(m.frame - start, m.label) for m in self.markers if start <= m.frame < end]
        if self.audio is not None:
            self.audio = self.audio.window(start / self.fps, end / self.fps)

    def add_marker(self, frame: int, label: str = "") -> Marker:
        m = Marker(int(np.clip(frame, 0, self.frames - 1)), str(label)[:256])
        self.markers.append(m)
        self.markers.sort(key=lambda m: m.frame)
        return m

    def resampled(self, fps: float) -> "Clip":
        """The clip at another rate (linear interpolation; keys and markers moved to the nearest
        frame)."""
        n = max(1, int(round(self.duration * fps)))
        t = np.arange(n) / fps * self.fps
        x = np.arange(self.frames)
        data = np.stack([np.interp(t, x, self.data[:, c]) for c in range(NUM_CHANNELS)], 1)
        scale = fps / self.fps
        out = Clip(data, fps, self.name, source=self.source, meta=dict(self.meta),
                   audio=copy.deepcopy(self.audio))
        for k in self.keys:
            out.set_key(k.channel, min(n - 1, int(round(k.frame * scale))), k.value, k.interp)
        out.markers = [Marker(min(n - 1, int(round(m.frame * scale))), m.label) for m in self.markers]
        return out


def interpolate_keys(keys: list[Key], frames: int) -> np.ndarray:
    """Values over `frames` from one channel's keys (sorted by frame): each segment linear or
    smoothstep-eased by its left key's `interp`; held before the first and after the last key."""
    keys = sorted(keys, key=lambda k: k.frame)
    out = np.full(frames, keys[0].value, np.float32)
    x = np.arange(frames, dtype=np.float32)
    for a, b in zip(keys, keys[1:]):
        seg = (x >= a.frame) & (x <= b.frame)
        u = (x[seg] - a.frame) / max(b.frame - a.frame, 1)
        if a.interp == "smooth":
            u = u * u * (3 - 2 * u)
        out[seg] = a.value + (b.value - a.value) * u
    out[x >= keys[-1].frame] = keys[-1].value
    return out


def gaussian_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian filter along axis 0 with edge values repeated (no shrink toward zero at the ends)."""
    v = np.asarray(values, np.float32)
    r = max(1, int(np.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2).astype(np.float32)
    k /= k.sum()
    padded = np.concatenate([np.repeat(v[:1], r, 0), v, np.repeat(v[-1:], r, 0)], 0)
    out = np.empty_like(v)
    flat = padded.reshape(len(padded), -1)
    for c in range(flat.shape[1]):
        out.reshape(len(v), -1)[:, c] = np.convolve(flat[:, c], k, mode="valid")
    return out


def _check_key(k: Key, frames: int) -> None:
    if k.channel not in CHANNEL_INDEX:
        raise ValueError(f"key on unknown channel '{k.channel}'")
    if not 0 <= int(k.frame) < frames:
        raise ValueError(f"key of {k.channel} at frame {k.frame} is outside the clip (0-{frames - 1})")
    if k.interp not in INTERPOLATIONS:
        raise ValueError(f"key interpolation must be one of {INTERPOLATIONS}, got {k.interp!r}")
    if not np.isfinite(k.value):
        raise ValueError(f"key of {k.channel} has a non-finite value")
