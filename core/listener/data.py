"""Training and evaluation data for the listener, built from real recordings in ../shared/media.

There is no paired speaker + listener recording here (see the model card). Pairs are composed:
- speaker streams: real speaker videos tracked into motion (core.animation.track) with their
  audio features (core.listener.features), and speech audio files alone;
- listener motion: real listening motion tracked from conversation_a.mp4 (one side of a real
  conversation) where the man is not talking (low jaw activity), plus the behaviour model's
  responses (core.listener.behaviour) to the speaker at hand: nods after cues, smile and head
  mimicry, attitude offsets.
Held out from training: speaker_e, speaker_g and speech_d.wav as speakers, and the last 30 % of
conversation_a as the real listening motion they are compared with.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.expressions import INDEX, NUM_EXPRESSIONS

from .behaviour import MOTION_DIM, YAW
from .features import FPS, AudioFeatures, audio_features

TRAIN_SPEAKERS = ("speaker_a.mp4", "speaker_b.mp4", "speaker_d.mp4", "speaker_f.mp4", "speech_b.wav",
                  "speech_c.wav")
TEST_SPEAKERS = ("speaker_e.mp4", "speaker_g.mp4", "speech_d.wav")
LISTENING_VIDEO = "conversation_a.mp4"
HELD_OUT_SHARE = 0.3
SPEAKER_DIM = 30 + MOTION_DIM + 1        # audio features, speaker motion, has-video flag
CUE_RAMP = 50                            # frames (2 s) the cue channel takes to fall from 1 to 0


@dataclass
class Speaker:
    name: str
    feat: AudioFeatures
    motion: np.ndarray | None      # (N, MOTION_DIM) at FPS, or None (audio only)
    audio: np.ndarray              # 16 kHz samples

    @property
    def frames(self) -> int:
        return self.feat.frames


def clip_motion_matrix(clip) -> np.ndarray:
    """(N, 56) = 53 weights (eyeLook* from gaze) + yaw, pitch, roll of a clip at FPS."""
    c = clip if abs(clip.fps - FPS) < 1e-6 else clip.resampled(FPS)
    ev = c.evaluated()
    return np.concatenate([ev[:, :NUM_EXPRESSIONS], ev[:, NUM_EXPRESSIONS:NUM_EXPRESSIONS + 3]], 1).astype(np.float32)


def motion_to_clip(motion: np.ndarray, name: str = "Listener", fps: float = FPS, audio=None, **kw):
    from core.animation import Clip
    m = np.asarray(motion, np.float32)
    return Clip.from_streams(m[:, :NUM_EXPRESSIONS], m[:, YAW:YAW + 3], fps=fps, name=name, audio=audio, **kw)


def speaker_condition(sp: Speaker, motion_mean: np.ndarray, motion_std: np.ndarray,
                      use_video: bool = True) -> np.ndarray:
    """(N, SPEAKER_DIM) per-frame condition: audio features, normalised speaker motion (zeros and
    flag 0 without video)."""
    a = sp.feat.matrix()
    n = len(a)
    if use_video and sp.motion is not None:
        m = (sp.motion[:n] - motion_mean) / motion_std
        flag = np.ones((n, 1), np.float32)
    else:
        m = np.zeros((n, MOTION_DIM), np.float32)
        flag = np.zeros((n, 1), np.float32)
    return np.concatenate([a, np.clip(m, -6, 6), flag], 1).astype(np.float32)


def cue_channel(cond: np.ndarray) -> np.ndarray:
    """(N,) the backchannel-cue channel of a speaker condition: 1 at the frame where a cue is found
    (core.listener.behaviour.CueTracker on the condition's own voiced, vad, low-pitch and log-f0
    columns: the same cues eval-listen scores nods against), falling linearly to 0 over CUE_RAMP
    frames, so a listener frame can read the time since the last cue. Causal (live listening
    computes it frame by frame: CueRamp)."""
    ramp = CueRamp()
    return np.array([ramp.step(r) for r in np.asarray(cond, np.float32)], np.float32)


class CueRamp:
    """cue_channel one condition row at a time (the first 30 columns: the audio features)."""

    def __init__(self):
        from .behaviour import CueTracker
        self.tracker = CueTracker(FPS)
        self.since = 10 ** 9

    def step(self, row: np.ndarray) -> float:
        voiced, vad, low = row[26] > 0.5, row[27] > 0.5, row[28] > 0.5
        found = self.tracker.step(bool(vad), bool(low), float(row[25]) if voiced else float("nan"))
        self.since = 0 if found is not None else self.since + 1
        return max(0.0, 1.0 - self.since / CUE_RAMP)


def with_cue_channel(cond: np.ndarray, speaker_dim: int) -> np.ndarray:
    """The condition as a model of `speaker_dim` inputs takes it: SPEAKER_DIM columns as they
    are, SPEAKER_DIM + 1 with the cue channel appended (listener.pt since issue 26's fine-tune)."""
    cond = np.asarray(cond, np.float32)
    if cond.shape[1] == speaker_dim:
        return cond
    if cond.shape[1] == SPEAKER_DIM and speaker_dim == SPEAKER_DIM + 1:
        return np.concatenate([cond, cue_channel(cond)[:, None]], 1)
    raise ValueError(f"speaker condition has {cond.shape[1]} columns, the model takes {speaker_dim}")


def load_speaker(path: str | Path, tracked_dir: Path | None = None, clip=None) -> Speaker:
    """A speaker from a video (tracked, cached in tracked_dir as NAME.json when given) or an
    audio file. Audio and video of different lengths: the motion is cut or held to the audio."""
    from core.animation.audio import read_audio
    from core.animation.files import load_clip

    path = Path(path)
    audio = read_audio(path, rate=16000)
    if clip is None and path.suffix.lower() in (".mp4", ".mov", ".avi", ".mkv", ".webm"):
        cached = tracked_dir / f"{path.stem}.json" if tracked_dir else None
        if cached is not None and cached.exists():
            clip = load_clip(cached)
        else:
            from core.animation.track import NoFaceError, track_video
            try:
                clip, _ = track_video(path, with_audio=False)
            except NoFaceError:
                clip = None
    return make_speaker(path.stem, audio.samples, clip)


def make_speaker(name: str, samples: np.ndarray, clip=None, frames: int | None = None) -> Speaker:
    """A speaker from 16 kHz audio and an optional tracked clip; the motion is cut or held to
    the audio's length (or `frames`)."""
    n = int(np.ceil(len(samples) / (16000 / FPS))) if frames is None else int(frames)
    n = max(n, 1)
    motion = None if clip is None else fit_length(clip_motion_matrix(clip), n)
    return Speaker(name, audio_features(samples, n), motion, np.asarray(samples, np.float32))


def fit_length(m: np.ndarray, n: int) -> np.ndarray:
    """Cut, or hold the last frame, to n frames."""
    if len(m) >= n:
        return m[:n]
    return np.concatenate([m, np.repeat(m[-1:], n - len(m), 0)], 0)


def listening_runs(tracked_dir: Path, part: str) -> list[np.ndarray]:
    """The contiguous listening runs (>= 2 s) of a part ("train": the first 70 %, "test": the
    rest) of conversation_a: frames where the man is not talking (jaw activity over +-1 s below
    0.04, talking spans widened by 0.5 s)."""
    from core.animation.files import load_clip

    clip = load_clip(tracked_dir / f"{Path(LISTENING_VIDEO).stem}.json")
    m = clip_motion_matrix(clip)
    jaw = m[:, INDEX["jawOpen"]]
    k = int(FPS)
    act = np.array([jaw[max(0, i - k):i + k].std() for i in range(len(jaw))])
    widen = int(0.5 * FPS)
    talking = np.convolve((act > 0.04).astype(float), np.ones(2 * widen + 1), mode="same") > 0
    cut = int(len(m) * (1 - HELD_OUT_SHARE))
    lo, hi = (0, cut) if part == "train" else (cut, len(m))
    runs, start = [], None
    for i in range(lo, hi + 1):
        listening = i < hi and not talking[i]
        if listening and start is None:
            start = i
        elif not listening and start is not None:
            if i - start >= 2 * FPS:
                runs.append(m[start:i])
            start = None
    return runs
