"""Listener motion from the trained DiT (resources/models/listener.pt).

Offline (`Listener.generate`): the input is cut into windows of W frames, all generated in
batches with few-step DDIM (core.diffusion.sample, v-prediction); then the transition-refinement
pass re-generates the frames around each join with the join's neighbourhood on both sides known
(core.diffusion.Known inpainting, started from the first pass noised to `refine_strength`) and
blends them in with cosine ramps, the role DiTaiListener-Edit plays. Batches of segments keep
memory bounded for long inputs, with progress and cancel between batches.

Live (`LiveListener`): per 40 ms audio chunk one new frame, generated in a short window whose
earlier frames are the ones already shown (known), through the same causal model: frame t sees
the speaker only up to t.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from core.expressions import INDEX

from .behaviour import MOTION_DIM, clip_motion
from .model import ListenerConfig, ListenerDiT

FORMAT = "likeness-listener-v1"


class ListenerModelError(ValueError):
    """The listener weights are missing or damaged; the message is for the user."""


def default_model_path() -> Path:
    from core.paths import MODELS_DIR
    return MODELS_DIR / "listener.pt"


class Listener:
    def __init__(self, model: ListenerDiT, mean: np.ndarray, std: np.ndarray, meta: dict | None = None):
        self.model = model.eval()
        self.cfg = model.cfg
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.meta = meta or {}
        # expression output calibration fitted on training clips (core.listener.calibrate)
        self.calibration = None
        if self.meta.get("calibration") is not None:
            from .calibrate import check_calibration
            self.calibration = check_calibration(self.meta["calibration"])
        from core.diffusion import make_schedule
        self.schedule = make_schedule("cosine", 1000)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Listener":
        from core.safeload import torch_load
        path = Path(path) if path else default_model_path()
        if not path.is_file():
            raise ListenerModelError(f"listener weights not found: {path} (train them with "
                                     f"scripts/train_listener.py)")
        try:
            blob = torch_load(path, max_bytes=64 << 20)
            if not isinstance(blob, dict) or blob.get("format") != FORMAT:
                raise ValueError("not a Likeness listener model")
            cfg = ListenerConfig(**json.loads(blob["config"]))
            # a damaged size field must not build a huge network before the weights disagree
            if not all(isinstance(v, int) and 1 <= v <= 4096 for v in cfg.to_dict().values()):
                raise ValueError(f"implausible configuration {cfg.to_dict()}")
            model = ListenerDiT(cfg)
            model.load_state_dict({k: v.float() for k, v in blob["weights"].items()})
            mean, std = blob["mean"].float().numpy(), blob["std"].float().numpy()
            if mean.shape != (cfg.motion_dim,) or std.shape != (cfg.motion_dim,) or not np.all(std > 0):
                raise ValueError("bad normalisation")
            meta = json.loads(blob.get("meta", "{}"))
            return cls(model, mean, std, meta)
        except ListenerModelError:
            raise
        except Exception as exc:
            raise ListenerModelError(f"{path.name} is not a usable listener model ({type(exc).__name__}: "
                                     f"{exc})") from None

    # --- offline ------------------------------------------------------------------------------
    def _sample(self, cond: dict, n: int, steps: int, seed: int, known=None, init=None,
                strength: float = 1.0, guidance: float = 1.0) -> torch.Tensor:
        from core.diffusion import sample
        # the unconditioned branch is what training's condition dropout showed: no speaker, no attitude
        null = {k: torch.zeros_like(v) for k, v in cond.items()} if guidance != 1.0 else None
        with torch.no_grad():
            return sample(self.model, self.schedule, (n, cond["speaker"].shape[1] - self.cfg.past,
                                                      self.cfg.motion_dim), cond,
                          sampler="ddim", steps=steps, prediction="v", seed=seed, known=known,
                          init=init, strength=strength, clip_x0=8.0, guidance=guidance, null_cond=null)

    def _windows(self, speaker_cond: np.ndarray, starts: list[int], length: int) -> np.ndarray:
        """(len(starts), past + length, C) speaker condition windows (zeros outside the input)."""
        p = self.cfg.past
        n, c = speaker_cond.shape
        out = np.zeros((len(starts), p + length, c), np.float32)
        for i, s in enumerate(starts):
            lo, hi = s - p, s + length
            out[i, max(0, -lo):(p + length) - max(0, hi - n)] = speaker_cond[max(lo, 0):min(hi, n)]
        return out

    def generate(self, speaker_cond: np.ndarray, attitude: np.ndarray, seed: int = 0, steps: int = 8,
                 refine: bool = True, refine_strength: float = 0.8, refine_keep: int = 12,
                 refine_blend: int = 8, refine_resample: int = 1, guidance: float | None = None, batch: int = 16,
                 postfilter: bool = False, blinks: bool = True, calibrate: bool = True,
                 progress: Callable[[float, str], None] = lambda f, s: None,
                 cancelled: Callable[[], bool] = lambda: False) -> tuple[np.ndarray, dict]:
        """(N, 56) listener motion for an (N, C) speaker condition (core.listener.data.speaker_condition)
        and 4 attitude weights. Raises core.diffusion.Cancelled when cancelled.

        `blinks`: lay blinks over the eyelids at the attitude's rate (17-26/min, real listeners
        15-30): the network's samples keep the lids at a steady level and never blink (a blink is
        a rare, 6-frame event that 8 DDIM steps average away), and an avatar that never blinks
        stares. The network output without blinks is info["raw"].

        `guidance`: classifier-free guidance on the speaker and attitude (None: the weights'
        meta "guidance", 1 when absent); the cue-channel weights use 1.5, which raised nod timing
        on the training speakers from 0.57 to 0.70 (FD +0.015).

        `calibrate`: the expression calibration fitted on training clips (core.listener.calibrate;
        when the weights file has one); info["uncalibrated"] is the normalised output without it.

        Refinement: around each join a window is regenerated with `refine_keep` frames known at
        each end, from the first pass noised to `refine_strength`, and blended in over
        `refine_blend` frames (cosine) at both ends of the regenerated span; a hard cut there
        left new seams 12 frames either side of the join (jerk 2x the segments' own), and
        strength 0.6 left the join's. Chosen on the training speakers (joins/within jerk 0.85;
        held-out speakers 0.88, was 1.12)."""
        from core.diffusion import Cancelled, Known
        from .data import with_cue_channel
        if guidance is None:       # the weights' own guidance on the speaker (chosen on training speakers)
            guidance = float(self.meta.get("guidance", 1.0))
        torch.set_num_threads(max(1, torch.get_num_threads()))
        speaker_cond = with_cue_channel(speaker_cond, self.cfg.speaker_dim)    # weights with the cue input
        n = len(speaker_cond)
        w = self.cfg.window
        starts = list(range(0, n, w))
        att = torch.from_numpy(np.asarray(attitude, np.float32).reshape(1, -1))
        out = np.zeros((len(starts) * w, MOTION_DIM), np.float32)
        total = len(starts) + (len(starts) - 1 if refine else 0)
        done = 0
        for b0 in range(0, len(starts), batch):
            if cancelled():
                raise Cancelled()
            chunk = starts[b0:b0 + batch]
            cond = {"speaker": torch.from_numpy(self._windows(speaker_cond, chunk, w)),
                    "attitude": att.expand(len(chunk), -1)}
            x = self._sample(cond, len(chunk), steps, seed * 100003 + b0, guidance=guidance).numpy()
            for i, s in enumerate(chunk):
                out[s:s + w] = x[i]
            done += len(chunk)
            progress(done / total, f"segments {done}/{len(starts)}")
        joins = [s for s in starts[1:]]
        if refine and joins:
            half, keep = w // 2, refine_keep      # regenerate +-(half - keep) frames around each join
            ramp = _ramp(w - 2 * keep, refine_blend)[:, None]
            for b0 in range(0, len(joins), batch):
                if cancelled():
                    raise Cancelled()
                chunk = joins[b0:b0 + batch]
                lo = [j - half for j in chunk]
                cond = {"speaker": torch.from_numpy(self._windows(speaker_cond, lo, w)),
                        "attitude": att.expand(len(chunk), -1)}
                init = np.stack([out[a:a + w] if a + w <= len(out) else
                                 np.concatenate([out[a:], np.repeat(out[-1:], a + w - len(out), 0)])
                                 for a in lo])
                mask = np.zeros((1, w, 1), bool)
                mask[:, :keep] = mask[:, w - keep:] = True
                init_t = torch.from_numpy(init)
                known = Known(init_t, torch.from_numpy(mask).expand(len(chunk), w, MOTION_DIM),
                              resample=refine_resample)
                x = self._sample(cond, len(chunk), steps, seed * 7919 + b0 + 1, known=known,
                                 init=init_t, strength=refine_strength, guidance=guidance).numpy()
                for i, a in enumerate(lo):
                    m = min(w, len(out) - a)
                    old_part = out[a + keep:a + m - keep]
                    r = ramp[:len(old_part)]
                    out[a + keep:a + m - keep] = (1 - r) * old_part + r * x[i, keep:m - keep]
                done += len(chunk)
                progress(done / total, f"refining joins {done - len(starts)}/{len(joins)}")
        uncalibrated = out[:n].copy()
        if calibrate and self.calibration is not None:
            from .calibrate import apply_calibration
            out = apply_calibration(out[:n], self.calibration)
        raw = out[:n]
        if postfilter:
            out = temporal_filter(out)
        motion = clip_motion(out[:n] * self.std + self.mean)
        if blinks:
            from .behaviour import add_blinks, blend_style
            motion = add_blinks(motion, blend_style(attitude).blink_per_min, np.random.default_rng([seed, 7]))
        return motion, {"joins": joins, "segments": len(starts), "normalised": out[:n],
                        "raw": clip_motion(raw * self.std + self.mean),
                        "uncalibrated": uncalibrated}


def _ramp(n: int, blend: int) -> np.ndarray:
    """(n,) weights of a regenerated span: 0 -> 1 over `blend` frames at each end (a smooth
    cosine, so the blend adds no jerk of its own), 1 in between."""
    r = np.ones(n, np.float32)
    b = min(int(blend), n // 2)
    if b > 0:
        up = 0.5 - 0.5 * np.cos(np.pi * (np.arange(b, dtype=np.float32) + 0.5) / b)
        r[:b] = up
        r[n - b:] = up[::-1]
    return r


def temporal_filter(x: np.ndarray) -> np.ndarray:
    """Optional post-filter (generate(postfilter=True); off by default: with the shipped weights
    it made FD and FD of frame differences worse on eval-listen): a 3-frame median on every channel (removes
    single-frame flicker, keeps a 5-8 frame blink), then a Gaussian of sigma 1 frame on head
    rotation (its motion is slow; 40 ms wobble is sampling noise)."""
    from core.animation.clip import gaussian_smooth
    y = np.asarray(x, np.float32)
    if len(y) >= 3:
        stack = np.stack([np.concatenate([y[:1], y[:-1]]), y, np.concatenate([y[1:], y[-1:]])])
        y = np.median(stack, axis=0).astype(np.float32)
        y[:, 53:56] = gaussian_smooth(y[:, 53:56], 1.0)
    return y


class LiveListener:
    """One listener frame per 40 ms of speaker audio (and optional speaker motion), causal."""

    def __init__(self, listener: Listener, attitude: np.ndarray, seed: int = 0, window: int = 12,
                 steps: int = 3, blinks: bool = True):
        from .behaviour import BlinkProcess, blend_style
        from .features import HOP, WIN
        self.l = listener
        # blinks laid over the lids as in Listener.generate
        self.blink = BlinkProcess(blend_style(attitude).blink_per_min, np.random.default_rng([seed, 7])) \
            if blinks else None
        self.window = window
        self.steps = steps
        self.seed = seed
        self.att = torch.from_numpy(np.asarray(attitude, np.float32).reshape(1, -1))
        self.audio = np.zeros(WIN, np.float32)
        self.hop = HOP
        cfg = listener.cfg
        self.cond = np.zeros((cfg.past + window, cfg.speaker_dim), np.float32)
        self.hist = np.zeros((window, MOTION_DIM), np.float32)      # normalised, mean face
        self.hist[:] = 0.0
        self.frames = 0
        self._stats = _RunningFeatures()
        from .data import SPEAKER_DIM, CueRamp
        self._cue = CueRamp() if cfg.speaker_dim == SPEAKER_DIM + 1 else None    # the cue channel, causal

    def push(self, chunk: np.ndarray, speaker_motion: np.ndarray | None = None) -> np.ndarray:
        """Feed HOP (640) samples of 16 kHz audio; returns the next listener frame (56,)."""
        from core.diffusion import Known
        chunk = np.asarray(chunk, np.float32).reshape(-1)[: self.hop]
        if len(chunk) < self.hop:
            chunk = np.pad(chunk, (0, self.hop - len(chunk)))
        self.audio = np.concatenate([self.audio[self.hop:], chunk])
        row = self._stats.row(self.audio, chunk, speaker_motion, self.l.mean, self.l.std)
        if self._cue is not None:
            row = np.append(row, np.float32(self._cue.step(row)))
        self.cond = np.concatenate([self.cond[1:], row[None]], 0)
        w = self.window
        cond = {"speaker": torch.from_numpy(self.cond[None]), "attitude": self.att}
        hist = np.concatenate([self.hist[1:], self.hist[-1:]], 0)
        mask = np.zeros((1, w, 1), bool)
        mask[:, : w - 1] = self.frames > 0
        known = Known(torch.from_numpy(hist[None]), torch.from_numpy(mask).expand(1, w, MOTION_DIM))
        with torch.no_grad():
            from core.diffusion import sample
            x = sample(self.l.model, self.l.schedule, (1, w, MOTION_DIM), cond, sampler="ddim",
                       steps=self.steps, prediction="v", seed=self.seed + self.frames, known=known,
                       clip_x0=8.0).numpy()[0]
        self.hist = x
        self.frames += 1
        # causal counterpart of the offline post-filter: the head rotation eased over ~2 frames
        if self.frames > 1:
            self.hist[-1, 53:56] = 0.5 * self.hist[-1, 53:56] + 0.5 * self.hist[-2, 53:56]
        frame = clip_motion((self.hist[-1] * self.l.std + self.l.mean)[None])[0]
        if self.blink is not None:
            lid = self.blink.step()
            for k in (INDEX["eyeBlink_L"], INDEX["eyeBlink_R"]):
                frame[k] = max(frame[k], lid)
        return frame


class _RunningFeatures:
    """Per-frame audio features for live input, normalised with running statistics (the offline
    features use the whole input's)."""

    def __init__(self):
        from .features import N_MELS
        self.n = 0
        self.mel_mean = np.zeros(N_MELS, np.float32)
        self.mel_var = np.ones(N_MELS, np.float32)
        self.f0_hist: list[float] = []
        self.e_hist: list[float] = []
        self.prev_lf0 = 0.0
        import webrtcvad
        self.vad = webrtcvad.Vad(2)

    def row(self, window: np.ndarray, chunk: np.ndarray, motion, mean, std) -> np.ndarray:
        from .features import RATE, energy_db, log_mel, pitch
        win = window[None]
        mel = log_mel(win)[0]
        e = float(energy_db(win)[0])
        f0, voiced = pitch(win)
        vad = self.vad
        pcm = (np.clip(chunk, -1, 1) * 32767).astype("<i2")
        step = RATE // 50
        speech = vad.is_speech(pcm[:step].tobytes(), RATE) or vad.is_speech(pcm[step:2 * step].tobytes(), RATE)
        a = 0.02 if self.n > 50 else 1.0 / (self.n + 1)
        self.mel_mean = (1 - a) * self.mel_mean + a * mel
        self.mel_var = (1 - a) * self.mel_var + a * (mel - self.mel_mean) ** 2
        self.n += 1
        self.e_hist = (self.e_hist + [e])[-500:]
        v = bool(voiced[0]) and speech
        if v:
            self.f0_hist = (self.f0_hist + [float(f0[0])])[-500:]
        med = float(np.median(self.f0_hist)) if len(self.f0_hist) >= 5 else 150.0
        lf0 = float(np.log2(max(f0[0], 1.0) / med)) if v else 0.0
        low = v and len(self.f0_hist) >= 10 and f0[0] < np.percentile(self.f0_hist, 26)
        slope, self.prev_lf0 = (lf0 - self.prev_lf0) * v, lf0
        audio = np.concatenate([(mel - self.mel_mean) / (np.sqrt(self.mel_var) + 1e-3),
                                [(e - float(np.median(self.e_hist))) / 10.0, lf0, v, speech, low, slope * 5]])
        if motion is not None:
            m = np.clip((np.asarray(motion, np.float32) - mean) / std, -6, 6)
            flag = [1.0]
        else:
            m, flag = np.zeros(MOTION_DIM, np.float32), [0.0]
        return np.clip(np.concatenate([audio, m, flag]), -6, 6).astype(np.float32)
