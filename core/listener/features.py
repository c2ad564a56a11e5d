"""Speaker audio features at the motion frame rate: log-mel, energy, pitch, voicing, voice
activity (webrtcvad), and the low-pitch backchannel cue region.

Plain numpy: an STFT with a hand-built mel filterbank, pitch by normalised autocorrelation
(YIN-like cumulative-mean-normalised difference from FFT autocorrelation, 60-400 Hz), voice
activity from webrtcvad (no weights; aggressiveness 2) on 20 ms frames. Every function takes the
whole signal or a chunk plus the running state, so live audio and files give the same features.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATE = 16000
FPS = 25.0
HOP = int(RATE / FPS)          # 640 samples = 40 ms: one feature frame per motion frame
WIN = 1024
N_MELS = 24
F0_MIN, F0_MAX = 60.0, 400.0
FEATURES = N_MELS + 6           # mel, energy, log-f0, voiced, vad, low-pitch, pitch slope


def _mel_filterbank(n_mels: int = N_MELS, n_fft: int = WIN, rate: int = RATE) -> np.ndarray:
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)   # noqa: E731
    inv = lambda m: 700.0 * (10 ** (m / 2595.0) - 1.0)   # noqa: E731
    pts = inv(np.linspace(mel(60.0), mel(rate / 2 * 0.95), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / rate)
    fb = np.zeros((n_mels, len(bins)), np.float32)
    for i in range(n_mels):
        lo, c, hi = pts[i], pts[i + 1], pts[i + 2]
        fb[i] = np.clip(np.minimum((bins - lo) / (c - lo), (hi - bins) / (hi - c)), 0, None)
    return fb / np.maximum(fb.sum(1, keepdims=True), 1e-9)


_FB = _mel_filterbank()


def frames_of(samples: np.ndarray, n_frames: int | None = None, start: int = 0) -> np.ndarray:
    """(N, WIN) windows centred on frames start..start+N (frame k covers [k*HOP, (k+1)*HOP)),
    zeros outside the signal."""
    s = np.asarray(samples, np.float32)
    n = int(np.ceil(len(s) / HOP)) - start if n_frames is None else int(n_frames)
    pad = (WIN - HOP) // 2
    lo = start * HOP - pad
    hi = lo + (n - 1) * HOP + WIN
    seg = np.zeros(hi - lo, np.float32)
    a, b = max(lo, 0), min(hi, len(s))
    if b > a:
        seg[a - lo:b - lo] = s[a:b]
    idx = np.arange(WIN)[None] + HOP * np.arange(n)[:, None]
    return seg[idx]


def log_mel(win: np.ndarray) -> np.ndarray:
    spec = np.abs(np.fft.rfft(win * np.hanning(WIN).astype(np.float32), axis=1)) ** 2
    return np.log(spec @ _FB.T + 1e-8).astype(np.float32)


def energy_db(win: np.ndarray) -> np.ndarray:
    core = win[:, (WIN - HOP) // 2:(WIN + HOP) // 2]
    return (10 * np.log10(np.mean(core ** 2, axis=1) + 1e-10)).astype(np.float32)


def pitch(win: np.ndarray, threshold: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(f0 Hz, voiced bool) per frame: the first dip of the cumulative-mean-normalised difference
    below `threshold` in the 60-400 Hz lag range (YIN's steps 2-4, from an FFT autocorrelation)."""
    x = win - win.mean(1, keepdims=True)
    n = WIN // 2
    head = np.zeros_like(x)
    head[:, :n] = x[:, :n]
    ac = np.fft.irfft(np.fft.rfft(x, 2 * WIN, axis=1) * np.conj(np.fft.rfft(head, 2 * WIN, axis=1)),
                      axis=1)[:, :n + 1]      # r(tau) = sum_{j<n} x_j x_{j+tau}
    sq = np.cumsum(x ** 2, axis=1)
    e0 = sq[:, n - 1:n]
    # d(tau) = sum_{j<n} (x_j - x_{j+tau})^2 = E(0..n) + E(tau..tau+n) - 2 r(tau)
    tail = sq[:, n - 1 + np.arange(n + 1)] - np.concatenate([np.zeros((len(x), 1)), sq[:, :n]], 1)
    d = e0 + tail - 2 * ac
    d[:, 0] = 0
    cm = d[:, 1:] * np.arange(1, n + 1) / np.maximum(np.cumsum(d[:, 1:], axis=1), 1e-12)
    lo, hi = int(RATE / F0_MAX), int(RATE / F0_MIN)
    band = cm[:, lo - 1:hi]
    below = band < threshold
    first = np.where(below.any(1), below.argmax(1), band.argmin(1))
    # walk to the local minimum after the first crossing
    for _ in range(8):
        nxt = np.minimum(first + 1, band.shape[1] - 1)
        better = band[np.arange(len(band)), nxt] < band[np.arange(len(band)), first]
        first = np.where(better, nxt, first)
    val = band[np.arange(len(band)), first]
    lag = first + lo
    voiced = (val < threshold + 0.15) & (e0[:, 0] > 1e-6 * n)
    return (RATE / lag).astype(np.float32), voiced


def voice_activity(samples: np.ndarray, n_frames: int, aggressiveness: int = 2) -> np.ndarray:
    """webrtcvad speech flags per 40 ms frame (speech in either of its two 20 ms halves)."""
    import webrtcvad
    vad = webrtcvad.Vad(aggressiveness)
    pcm = (np.clip(np.asarray(samples, np.float32), -1, 1) * 32767).astype("<i2")
    step = RATE // 50
    pcm = np.concatenate([pcm, np.zeros(n_frames * HOP + step, "<i2")])
    out = np.zeros(n_frames, bool)
    for k in range(n_frames):
        a = k * HOP
        out[k] = vad.is_speech(pcm[a:a + step].tobytes(), RATE) or \
            vad.is_speech(pcm[a + step:a + 2 * step].tobytes(), RATE)
    return out


@dataclass
class AudioFeatures:
    mel: np.ndarray        # (N, 24) log-mel
    energy: np.ndarray     # (N,) dB
    f0: np.ndarray         # (N,) Hz (meaningful where voiced)
    voiced: np.ndarray     # (N,) bool
    vad: np.ndarray        # (N,) bool
    silent: bool           # the whole input is silence (no speech anywhere)

    @property
    def frames(self) -> int:
        return len(self.energy)

    def low_pitch(self) -> np.ndarray:
        """Frames whose pitch is below the speaker's 26th percentile (Ward & Tsukahara's cue
        region), among voiced speech frames."""
        v = self.voiced & self.vad
        if v.sum() < 10:
            return np.zeros(self.frames, bool)
        thr = np.percentile(self.f0[v], 26)
        return v & (self.f0 < thr)

    def matrix(self) -> np.ndarray:
        """(N, FEATURES) model input: mel and energy standardised over the input, log-f0 in
        octaves from the speaker's median (0 unvoiced), voiced, vad, low-pitch, pitch slope."""
        mel = (self.mel - self.mel.mean(0)) / (self.mel.std(0) + 1e-3)
        e = (self.energy - np.median(self.energy)) / 10.0
        v = self.voiced & self.vad
        med = np.median(self.f0[v]) if v.sum() >= 5 else 150.0
        lf0 = np.where(v, np.log2(np.maximum(self.f0, 1.0) / med), 0.0)
        slope = np.gradient(lf0) * v
        if self.silent:
            mel = np.zeros_like(mel)
        m = np.column_stack([mel, e, lf0, v, self.vad, self.low_pitch(), slope * 5])
        return np.clip(m, -6, 6).astype(np.float32)


CHUNK = 1500          # frames per block (60 s): long inputs are processed in bounded memory


def audio_features(samples: np.ndarray, n_frames: int | None = None) -> AudioFeatures:
    """Features of 16 kHz mono audio, one frame per 40 ms (n_frames: pad or cut to this many).
    Long inputs are processed in blocks of CHUNK frames (memory does not grow with length)."""
    s = np.asarray(samples, np.float32)
    n = int(np.ceil(len(s) / HOP)) if n_frames is None else int(n_frames)
    n = max(n, 1)
    mel, e, f0, voiced = [], [], [], []
    for start in range(0, n, CHUNK):
        win = frames_of(s, min(CHUNK, n - start), start)
        mel.append(log_mel(win))
        e.append(energy_db(win))
        f, v = pitch(win)
        f0.append(f)
        voiced.append(v)
    mel_a, e_a = np.concatenate(mel), np.concatenate(e)
    f0_a, voiced_a = np.concatenate(f0), np.concatenate(voiced)
    vad = voice_activity(s, n)
    silent = bool(vad.mean() < 0.02 or e_a.max() < -50)
    if silent:
        vad[:] = False
        voiced_a[:] = False
    return AudioFeatures(mel_a, e_a, f0_a, voiced_a & (e_a > e_a.max() - 45), vad, silent)
