"""The clip file (.json): one JSON document, the same bytes a project stores per clip.

    {"format": "likeness-clip", "version": 1, "name", "fps", "frames", "channels": [names],
     "data": {"encoding": "base64-f32le", "shape": [frames, channels], "bytes": "..."},
     "keys": [[channel, frame, value, "linear"|"smooth"], ...], "markers": [[frame, label], ...],
     "audio": null | {"rate", "offset", "samples", "encoding": "base64-s16le", "bytes"},
     "source": "...", "meta": {...}}

Samples are base64 little-endian float32 (exact, 1/3 the size of decimal text); channels are
named, so a reader with more or fewer channels maps them by name (missing ones are zero).
Reading checks the size before parsing, every field's type and range, and every declared length
against the bytes present; damage raises ClipError with a sentence for the user. Saving is atomic.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import os
from pathlib import Path

import numpy as np

from ..atomic import write_atomic
from .clip import CHANNEL_INDEX, CHANNELS, INTERPOLATIONS, MAX_FRAMES, NUM_CHANNELS, AudioTrack, Clip, Key, Marker

FORMAT = "likeness-clip"
VERSION = 1
SUFFIX = ".json"
MAX_FILE_BYTES = 512 << 20
MAX_KEYS = 200_000
MAX_MARKERS = 10_000
MAX_AUDIO_SAMPLES = 48000 * 3 * 60 * 60


class ClipError(ValueError):
    """A clip file cannot be read or written; the message is for the user."""


def clip_to_dict(clip: Clip) -> dict:
    d = {
        "format": FORMAT, "version": VERSION, "name": clip.name, "fps": clip.fps,
        "frames": clip.frames, "channels": list(CHANNELS),
        "data": {"encoding": "base64-f32le", "shape": [clip.frames, NUM_CHANNELS],
                 "bytes": base64.b64encode(clip.data.astype("<f4").tobytes()).decode("ascii")},
        "keys": [[k.channel, k.frame, k.value, k.interp] for k in clip.keys],
        "markers": [[m.frame, m.label] for m in clip.markers],
        "audio": None, "source": clip.source, "meta": _json_safe(clip.meta),
    }
    if clip.audio is not None:
        pcm = (np.clip(clip.audio.samples, -1, 1) * 32767).astype("<i2")
        d["audio"] = {"rate": clip.audio.rate, "offset": clip.audio.offset, "samples": len(pcm),
                      "encoding": "base64-s16le", "bytes": base64.b64encode(pcm.tobytes()).decode("ascii")}
    return d


def clip_to_bytes(clip: Clip) -> bytes:
    return json.dumps(clip_to_dict(clip), separators=(",", ":")).encode("utf-8")


def save_clip(clip: Clip, path: str | os.PathLike) -> Path:
    """Write `clip` to `path` atomically (temporary file, fsync, rename)."""
    return write_atomic(path, clip_to_bytes(clip), ClipError, "save")


def load_clip(path: str | os.PathLike) -> Clip:
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ClipError(f"Cannot read {path}: {exc.strerror or exc}") from None
    if size > MAX_FILE_BYTES:
        raise ClipError(f"{path.name} is {size} bytes; a clip file may hold at most {MAX_FILE_BYTES}.")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ClipError(f"Cannot read {path}: {exc.strerror or exc}") from None
    return clip_from_bytes(raw, path.name)


def clip_from_bytes(raw: bytes, label: str = "clip") -> Clip:
    try:
        d = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ClipError(f"{label} is not a Likeness clip: it is not valid JSON ({exc}).") from None
    return clip_from_dict(d, label)


def clip_from_dict(d, label: str = "clip") -> Clip:
    def bad(what: str) -> ClipError:
        return ClipError(f"{label} is damaged: {what}.")

    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ClipError(f"{label} is not a Likeness clip (no '{FORMAT}' header).")
    version = d.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise bad("its version is missing")
    if version > VERSION:
        raise ClipError(f"{label} was written by a newer Likeness (clip version {version}); "
                        f"this version reads {VERSION}. Please update Likeness.")
    fps = d.get("fps")
    if not _number(fps) or not 1 <= fps <= 240:
        raise bad("its frame rate is not a number between 1 and 240")
    frames = d.get("frames")
    if not _int(frames) or not 1 <= frames <= MAX_FRAMES:
        raise bad(f"its frame count is not an integer between 1 and {MAX_FRAMES}")
    channels = d.get("channels")
    if not (isinstance(channels, list) and 0 < len(channels) <= 4096
            and all(isinstance(c, str) and len(c) <= 64 for c in channels)):
        raise bad("its channel names are not a list of names")
    block = d.get("data")
    if not (isinstance(block, dict) and block.get("encoding") == "base64-f32le"
            and block.get("shape") == [frames, len(channels)] and isinstance(block.get("bytes"), str)):
        raise bad("its samples are missing or do not match its frame and channel counts")
    values = _b64_array(block["bytes"], "<f4", frames * len(channels), bad, "samples")
    values = values.reshape(frames, len(channels))
    if not np.all(np.isfinite(values)):
        raise bad("its samples contain NaN or infinity")
    data = np.zeros((frames, NUM_CHANNELS), np.float32)
    for j, name in enumerate(channels):
        if name in CHANNEL_INDEX:   # unknown channels (a newer Likeness) are left out
            data[:, CHANNEL_INDEX[name]] = values[:, j]
    keys_raw, markers_raw = d.get("keys", []), d.get("markers", [])
    if not isinstance(keys_raw, list) or len(keys_raw) > MAX_KEYS:
        raise bad("its keys are not a list")
    keys = []
    for k in keys_raw:
        if not (isinstance(k, list) and len(k) == 4 and k[0] in CHANNEL_INDEX and _int(k[1])
                and 0 <= k[1] < frames and _number(k[2]) and k[3] in INTERPOLATIONS):
            raise bad(f"a key is not [channel, frame, value, interpolation]: {str(k)[:60]}")
        keys.append(Key(k[0], int(k[1]), float(k[2]), k[3]))
    if not isinstance(markers_raw, list) or len(markers_raw) > MAX_MARKERS:
        raise bad("its markers are not a list")
    markers = []
    for m in markers_raw:
        if not (isinstance(m, list) and len(m) == 2 and _int(m[0]) and 0 <= m[0] < frames
                and isinstance(m[1], str) and len(m[1]) <= 256):
            raise bad(f"a marker is not [frame, label]: {str(m)[:60]}")
        markers.append(Marker(int(m[0]), m[1]))
    audio = None
    a = d.get("audio")
    if a is not None:
        if not (isinstance(a, dict) and _int(a.get("rate")) and 1000 <= a["rate"] <= 192000
                and _number(a.get("offset")) and abs(a["offset"]) <= MAX_FRAMES / fps
                and _int(a.get("samples")) and 0 <= a["samples"] <= MAX_AUDIO_SAMPLES
                and a.get("encoding") == "base64-s16le" and isinstance(a.get("bytes"), str)):
            raise bad("its audio track description is invalid")
        pcm = _b64_array(a["bytes"], "<i2", a["samples"], bad, "audio")
        audio = AudioTrack(pcm.astype(np.float32) / 32768.0, a["rate"], a["offset"])
    name, source, meta = d.get("name", "Clip"), d.get("source", ""), d.get("meta", {})
    if not isinstance(name, str) or not isinstance(source, str) or len(source) > 4096:
        raise bad("its name or source is not text")
    if not isinstance(meta, dict):
        raise bad("its meta field is not a mapping")
    try:
        return Clip(data, float(fps), name, keys, markers, audio, source, meta)
    except (TypeError, ValueError) as exc:
        raise bad(str(exc)) from None


def _b64_array(text: str, dtype: str, count: int, bad, what: str) -> np.ndarray:
    itemsize = np.dtype(dtype).itemsize
    if len(text) != 4 * ((count * itemsize + 2) // 3):   # checked before decoding anything
        raise bad(f"its {what} hold {len(text)} base64 characters, expected {count} values")
    try:
        blob = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise bad(f"its {what} are not valid base64") from None
    if len(blob) != count * itemsize:
        raise bad(f"its {what} hold {len(blob)} bytes, expected {count * itemsize}")
    return np.frombuffer(blob, dtype).astype(np.float32 if dtype == "<f4" else np.int16)


def _number(x) -> bool:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return False
    return abs(x) < 1 << 53 if isinstance(x, int) else math.isfinite(x)


def _int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _json_safe(meta: dict) -> dict:
    """Meta with only JSON-representable plain values (numbers, text, lists, mappings)."""
    try:
        return json.loads(json.dumps(meta, default=str))
    except (TypeError, ValueError):
        return {}
