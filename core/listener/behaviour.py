"""The documented listener behaviour model (../shared/notes/listener.md): when and how a
listener responds to a speaker, from published facts, applied to real speaker recordings.

- Backchannel cues (Ward & Tsukahara 2000): a region of pitch below the speaker's 26th
  percentile lasting >= 110 ms, after >= 700 ms of speech, with no backchannel in the previous
  800 ms; the response (a nod) starts about 700 ms after the cue starts. Truong et al. 2010:
  pauses preceded by a rising or falling pitch are cues too.
- Nods are the listener's backchannel (Poppe et al. 2011), a head pitch pulse of ~0.5 s,
  sometimes doubled; listeners also make small fast nods (2.6-6.5 Hz, Hale et al. 2020).
- Blinks: ~17/min at rest, ~26/min in conversation (Bentivoglio 1997), >= 0.3 s apart.
- Head-motion mimicry at 0.2-1.1 Hz with ~600 ms lag (Hale et al. 2020).
- Smile mimicry starts 300-400 ms after the speaker's smile (Dimberg & Thunberg 1998).

`respond()` gives the response motion (offsets) for a speaker; `behaviour_listener()` adds it
to a procedural idle face: the "behaviour model alone" baseline. Training pairs add the same
responses to real tracked listening motion instead (core.listener.data).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.expressions import INDEX, NUM_EXPRESSIONS

from .features import FPS, AudioFeatures

MOTION_DIM = NUM_EXPRESSIONS + 3        # 53 weights + yaw, pitch, roll (degrees)
YAW, PITCH, ROLL = NUM_EXPRESSIONS, NUM_EXPRESSIONS + 1, NUM_EXPRESSIONS + 2
ATTITUDES = ("attentive", "amused", "sceptical", "bored")


@dataclass(frozen=True)
class Style:
    """How strongly a listener responds (one per attitude; blends are weighted averages)."""
    nod_prob: float = 0.8        # share of cues answered with a nod
    nod_deg: float = 6.0         # nod depth (head pitch, degrees; + = chin down)
    double_nod: float = 0.3      # share of nods that are doubled
    blink_per_min: float = 26.0
    smile_mimic: float = 0.5     # gain on the speaker's smile, 350 ms later
    smile_base: float = 0.05
    head_mimic: float = 0.3      # gain on the speaker's 0.2-1.1 Hz head motion, 600 ms later
    brow_down: float = 0.0
    brow_up: float = 0.1         # raised inner brows (interest)
    roll_deg: float = 0.0        # head tilt
    gaze_away: float = 0.0       # share of time looking away
    sway: float = 1.0            # idle head sway scale


STYLES = {
    "attentive": Style(),
    "amused": Style(nod_prob=0.7, smile_mimic=0.9, smile_base=0.35, brow_up=0.15, blink_per_min=24),
    "sceptical": Style(nod_prob=0.25, nod_deg=3.5, double_nod=0.05, smile_mimic=0.1, smile_base=0.0,
                       brow_down=0.35, brow_up=0.0, roll_deg=6.0, head_mimic=0.15, blink_per_min=20),
    "bored": Style(nod_prob=0.15, nod_deg=3.0, double_nod=0.0, smile_mimic=0.05, smile_base=0.0,
                   brow_up=0.0, head_mimic=0.05, gaze_away=0.35, sway=0.5, blink_per_min=17),
}


def blend_style(weights: np.ndarray) -> Style:
    """The weighted average of the four attitude styles (weights sum to 1)."""
    w = np.asarray(weights, np.float64).reshape(len(ATTITUDES))
    w = w / max(w.sum(), 1e-9)
    fields = Style.__dataclass_fields__
    return Style(**{f: float(sum(wi * getattr(STYLES[a], f) for wi, a in zip(w, ATTITUDES))) for f in fields})


class CueTracker:
    """Ward & Tsukahara's backchannel-cue rule (plus Truong et al.'s pauses after a pitch rise or
    fall), one 40 ms frame at a time: causal, so the offline cues (`backchannel_cues`), the
    listener model's cue channel (`cue_channel`) and live listening all run the same code.
    `step` returns the frame where a cue found at this frame starts (it is found 110 ms after a
    low-pitch region starts, or 200 ms into a pause), or None."""

    def __init__(self, fps: float = FPS):
        self.min_low, self.min_speech = int(round(0.11 * fps)), int(round(0.7 * fps))
        self.refractory = int(round(0.8 * fps))
        self.i, self.run_speech, self.low_run, self.last = 0, 0, 0, -10 ** 9
        self.speech: list[bool] = []          # the last min_speech + 6 frames
        self.lf0: list[float] = []            # log2 f0 where voiced speech, NaN elsewhere

    def step(self, speech: bool, low: bool, lf0: float) -> int | None:
        i, n_keep = self.i, self.min_speech + 6
        prev = self.speech[-1] if self.speech else False
        self.speech = (self.speech + [bool(speech)])[-n_keep:]
        self.lf0 = (self.lf0 + [float(lf0)])[-n_keep:]
        self.i += 1
        self.run_speech = self.run_speech + 1 if speech else max(0, self.run_speech - 1) if i and prev else 0
        self.low_run = self.low_run + 1 if low else 0
        start = i - self.low_run + 1
        if self.low_run == self.min_low and start - self.last > self.refractory and self.run_speech >= self.min_speech:
            self.last = start
            return start
        # a pause (>= 200 ms without speech) after >= 700 ms of speech ending in a pitch movement
        sp = self.speech
        if i >= 5 and not any(sp[-5:]) and sp[-6]:
            seg = np.array(self.lf0[-6 - 8:-5])          # frames i-13..i-5
            seg = seg[np.isfinite(seg)]
            spoken = np.mean(sp[-6 - self.min_speech:-5]) > 0.8      # frames i-5-min_speech..i-5
            if spoken and len(seg) >= 4 and abs(seg[-1] - seg[0]) > 0.15 and i - 5 - self.last > self.refractory:
                self.last = i - 5
                return i - 5
        return None


def backchannel_cues(feat: AudioFeatures, fps: float = FPS) -> np.ndarray:
    """Frames where a backchannel cue starts (Ward & Tsukahara's rule, plus pauses after a pitch
    rise or fall as in Truong et al.): CueTracker over the input."""
    v = feat.voiced & feat.vad
    lf0 = np.where(v, np.log2(np.maximum(feat.f0, 1.0)), np.nan)
    return cues_of(feat.vad, feat.low_pitch(), lf0, fps)[0]


def cues_of(speech: np.ndarray, low: np.ndarray, lf0: np.ndarray, fps: float = FPS) -> tuple[np.ndarray, np.ndarray]:
    """(cue start frames, frames where each was found) of per-frame streams (CueTracker)."""
    tr = CueTracker(fps)
    starts, found = [], []
    for i in range(len(speech)):
        c = tr.step(bool(speech[i]), bool(low[i]), float(lf0[i]))
        if c is not None:
            starts.append(c)
            found.append(i)
    return np.array(starts, int), np.array(found, int)


def _pulse(length: int) -> np.ndarray:
    """Smooth 0 -> 1 -> 0 bump of `length` frames."""
    x = np.linspace(0, np.pi, max(length, 2))
    return np.sin(x) ** 2


def _lag(x: np.ndarray, frames: int) -> np.ndarray:
    if frames <= 0:
        return x.copy()
    return np.concatenate([np.repeat(x[:1], frames, 0), x[:-frames]], 0)


def _bandpass(x: np.ndarray, fps: float, lo: float = 0.2, hi: float = 1.1) -> np.ndarray:
    """FFT band-pass along axis 0 (the 0.2-1.1 Hz band where partners mimic head motion)."""
    n = len(x)
    if n < 4:
        return np.zeros_like(x)
    f = np.fft.rfftfreq(n, 1.0 / fps)
    spec = np.fft.rfft(x - x.mean(0), axis=0)
    spec[(f < lo) | (f > hi)] = 0
    return np.fft.irfft(spec, n, axis=0).astype(np.float32)


def respond(feat: AudioFeatures, speaker_motion: np.ndarray | None, style: Style,
            rng: np.random.Generator, fps: float = FPS) -> tuple[np.ndarray, dict]:
    """(N, MOTION_DIM) offsets a listener adds in response to the speaker, and the events
    (cue frames, nod frames) for evaluation and tests."""
    n = feat.frames
    out = np.zeros((n, MOTION_DIM), np.float32)
    cues = backchannel_cues(feat, fps)
    nods = []
    for c in cues:
        if rng.random() > style.nod_prob:
            continue
        start = c + int(round(rng.normal(0.7, 0.12) * fps))
        length = int(round(rng.uniform(0.4, 0.6) * fps))
        depth = style.nod_deg * rng.uniform(0.7, 1.3)
        shape = _pulse(length) * depth
        if rng.random() < style.double_nod:
            shape = np.concatenate([shape, _pulse(length) * depth * 0.7])
        a, b = max(start, 0), min(start + len(shape), n)
        if b > a:
            out[a:b, PITCH] += shape[a - start:b - start]
            nods.append(a)
    if speaker_motion is not None and len(speaker_motion) == n:
        sm = np.asarray(speaker_motion, np.float32)
        smile = 0.5 * (sm[:, INDEX["mouthSmile_L"]] + sm[:, INDEX["mouthSmile_R"]])
        mim = _lag(smile, int(round(0.35 * fps))) * style.smile_mimic
        for k in ("mouthSmile_L", "mouthSmile_R"):
            out[:, INDEX[k]] += mim
        out[:, YAW:ROLL + 1] += _lag(_bandpass(sm[:, YAW:ROLL + 1], fps), int(round(0.6 * fps))) * style.head_mimic
    for k in ("mouthSmile_L", "mouthSmile_R"):
        out[:, INDEX[k]] += style.smile_base
    for k in ("browDown_L", "browDown_R"):
        out[:, INDEX[k]] += style.brow_down
    for k in ("browInnerUp_L", "browInnerUp_R"):
        out[:, INDEX[k]] += style.brow_up
    out[:, ROLL] += style.roll_deg
    return out, {"cues": cues, "nods": np.array(nods, int)}


class BlinkProcess:
    """Blinks one frame at a time (the live listener's, and blink_track's): Poisson at `per_min`,
    at least 0.3 s apart, each a 0.2-0.3 s closing and opening of the lids."""

    def __init__(self, per_min: float, rng: np.random.Generator, fps: float = FPS):
        self.mean_gap = 60.0 / max(per_min, 1e-3)
        self.rng, self.fps = rng, fps
        self.frame = 0
        self.next = rng.exponential(self.mean_gap) * fps      # frame of the next blink
        self.pulse: np.ndarray | None = None
        self.k = 0

    def step(self) -> float:
        if self.pulse is None and self.frame >= int(self.next):
            self.pulse, self.k = _pulse(int(round(self.rng.uniform(0.2, 0.3) * self.fps)) + 1), 0
            self.next += (0.3 + self.rng.exponential(max(self.mean_gap - 0.3, 0.05))) * self.fps
        v = 0.0
        if self.pulse is not None:
            v = float(self.pulse[self.k])
            self.k += 1
            if self.k >= len(self.pulse):
                self.pulse = None
        self.frame += 1
        return v


def blink_track(n: int, per_min: float, rng: np.random.Generator, fps: float = FPS) -> np.ndarray:
    """eyeBlink values (N,) with blinks at `per_min` (BlinkProcess)."""
    proc = BlinkProcess(per_min, rng, fps)
    return np.array([proc.step() for _ in range(n)], np.float32)


def add_blinks(motion: np.ndarray, per_min: float, rng: np.random.Generator, fps: float = FPS) -> np.ndarray:
    """The motion with blinks laid over its eyeBlink channels (the larger value wins)."""
    out = np.array(motion, np.float32, copy=True)
    track = blink_track(len(out), per_min, rng, fps)
    for k in ("eyeBlink_L", "eyeBlink_R"):
        np.maximum(out[:, INDEX[k]], track, out=out[:, INDEX[k]])
    return out


def idle_motion(n: int, style: Style, rng: np.random.Generator, fps: float = FPS) -> np.ndarray:
    """A procedural idle face: neutral weights, slow head sway (smoothed noise), blinks, gaze
    shifts; what a listener does with no speaker."""
    out = np.zeros((n, MOTION_DIM), np.float32)
    k = int(fps * 1.5)
    kernel = np.hanning(2 * k + 1)
    kernel /= kernel.sum()
    for c, amp in ((YAW, 2.5), (PITCH, 1.5), (ROLL, 1.0)):
        noise = rng.normal(0, 1, n + 2 * k)
        sway = np.convolve(noise, kernel, mode="valid")[:n]
        out[:, c] = sway / (sway.std() + 1e-6) * amp * style.sway
    blink = blink_track(n, style.blink_per_min, rng, fps)
    out[:, INDEX["eyeBlink_L"]] = out[:, INDEX["eyeBlink_R"]] = blink
    if style.gaze_away > 0:
        away = np.zeros(n, np.float32)
        t = 0
        while t < n:
            dur = int(rng.uniform(1.0, 3.0) * fps)
            if rng.random() < style.gaze_away:
                away[t:t + dur] = 1
            t += dur
        away = np.convolve(away, np.ones(5) / 5, mode="same")
        side = "eyeLookOut_L" if rng.random() < 0.5 else "eyeLookOut_R"
        other = "eyeLookIn_R" if side.endswith("L") else "eyeLookIn_L"
        out[:, INDEX[side]] = out[:, INDEX[other]] = 0.5 * away
    return out


def behaviour_listener(feat: AudioFeatures, speaker_motion: np.ndarray | None, style: Style,
                       rng: np.random.Generator, base: np.ndarray | None = None, fps: float = FPS
                       ) -> tuple[np.ndarray, dict]:
    """The behaviour model alone: `base` (default: a neutral face, `idle_motion`) plus the
    responses, weights clipped to [0, 1]."""
    n = feat.frames
    if base is None:
        base = idle_motion(n, style, rng, fps)
    resp, events = respond(feat, speaker_motion, style, rng, fps)
    return clip_motion(base + resp), events


def clip_motion(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float32).copy()
    m[:, :NUM_EXPRESSIONS] = np.clip(m[:, :NUM_EXPRESSIONS], 0, 1)
    m[:, YAW:] = np.clip(m[:, YAW:], -60, 60)
    return m
