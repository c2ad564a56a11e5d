"""Audio in and out through the ffmpeg that imageio-ffmpeg bundles (wav, mp3, m4a, a video's
track), and the playback device check.

Decoding runs ffmpeg as a subprocess that writes mono 16-bit PCM to a pipe, so any container
ffmpeg reads works and a damaged file becomes one AudioError with ffmpeg's last line.
"""
from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np

from .clip import AudioTrack

MAX_SECONDS = 3 * 60 * 60      # longer inputs are refused (3 h)


class AudioError(ValueError):
    """An audio file or a video's sound track cannot be read; the message is for the user."""


def ffmpeg_exe() -> str:
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


def read_audio(path: str | Path, rate: int = 16000, max_seconds: float = MAX_SECONDS,
               required: bool = True) -> AudioTrack | None:
    """Mono float32 audio of a file at `rate` Hz. A file without an audio stream returns None
    (required=False) or raises AudioError; unreadable files raise AudioError."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path} does not exist.")
    if not has_audio_stream(path):
        if required:
            raise AudioError(f"{path.name} has no audio track (or is not a media file ffmpeg can read).")
        return None
    cmd = [ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path), "-map", "0:a:0?", "-vn",
           "-ac", "1", "-ar", str(int(rate)), "-t", str(float(max_seconds)), "-f", "s16le", "-"]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AudioError(f"cannot decode the audio of {path.name}: {exc}") from None
    err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    if proc.returncode != 0:
        raise AudioError(f"cannot read the audio of {path.name}: "
                         f"{err[-1] if err else 'ffmpeg failed'}")
    pcm = np.frombuffer(proc.stdout[: len(proc.stdout) // 2 * 2], "<i2")
    if len(pcm) == 0:
        if required:
            raise AudioError(f"{path.name} has no audio track." if not err else
                             f"cannot read the audio of {path.name}: {err[-1]}")
        return None
    return AudioTrack(pcm.astype(np.float32) / 32768.0, rate)


def has_audio_stream(path: str | Path) -> bool:
    """Whether ffmpeg sees an audio stream in the file (its stream listing, no decoding)."""
    try:
        proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                              capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return any(" Audio: " in line for line in proc.stderr.decode("utf-8", "replace").splitlines()
               if line.lstrip().startswith("Stream #"))


def write_wav(path: str | Path, audio: AudioTrack) -> Path:
    path = Path(path)
    pcm = (np.clip(audio.samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(audio.rate)
        w.writeframes(pcm.tobytes())
    return path


def padded_samples(audio: AudioTrack, duration: float) -> np.ndarray:
    """The track placed on the clip's timeline (its offset as leading silence), cut or padded
    with silence to `duration` seconds."""
    n = int(round(duration * audio.rate))
    out = np.zeros(n, np.float32)
    start = int(round(audio.offset * audio.rate))
    if start < n:
        m = min(len(audio.samples), n - start)
        out[start:start + m] = audio.samples[:m]
    return out


def _device_status(kind: str, none: str, missing: str, default: str) -> tuple[bool, str]:
    try:
        import sounddevice as sd
    except OSError as exc:   # the PortAudio library itself is missing
        return False, f"{none}: the PortAudio library is not installed ({exc})."
    except ImportError:
        return False, f"{none}: the sounddevice package is not installed."
    try:
        dev = sd.query_devices(kind=kind)
        return True, str(dev.get("name", default))
    except Exception as exc:
        return False, f"{missing} ({exc})."


def output_device_status() -> tuple[bool, str]:
    """(True, device name) when sound can be played, else (False, why) in words."""
    return _device_status("output", "no audio output", "no audio output device was found", "audio output")


def input_device_status() -> tuple[bool, str]:
    """(True, device name) when a microphone can be opened, else (False, why)."""
    return _device_status("input", "no microphone", "no microphone was found", "microphone")
