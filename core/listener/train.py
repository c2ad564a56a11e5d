"""Training the listener DiT on composed pairs (core.listener.data): real listening motion plus
the behaviour model's responses to real speakers, v-prediction DDPM loss from core.diffusion,
condition dropout (10 %) for optional guidance. One thread, checkpoints outside git, resumable.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from .behaviour import ATTITUDES, MOTION_DIM, blend_style, clip_motion, respond
from .data import TRAIN_SPEAKERS, listening_runs, load_speaker, speaker_condition, with_cue_channel
from .model import ListenerConfig, ListenerDiT

STD_FLOOR = np.array([0.02] * 53 + [0.5] * 3, np.float32)


def _mirror_index() -> np.ndarray:
    """Column permutation of a motion frame seen in a mirror (_L <-> _R, jawLeft <-> jawRight...)."""
    from core.expressions import EXPRESSION_NAMES, INDEX

    def other(n: str) -> str:
        for a, b in (("_L", "_R"), ("_R", "_L"), ("Left", "Right"), ("Right", "Left")):
            if n.endswith(a):
                return n[: -len(a)] + b
        return n
    return np.array([INDEX[other(n)] for n in EXPRESSION_NAMES] + [53, 54, 55])


MIRROR = _mirror_index()


def mirrored(m: np.ndarray) -> np.ndarray:
    """The motion of the mirror image: sides swapped, yaw and roll negated."""
    out = m[..., MIRROR].copy()
    out[..., 53] *= -1
    out[..., 55] *= -1
    return out


def attitude_sample(rng: np.random.Generator) -> np.ndarray:
    """Mostly one attitude, sometimes a blend (Dirichlet)."""
    if rng.random() < 0.75:
        w = np.zeros(len(ATTITUDES), np.float32)
        w[rng.integers(len(ATTITUDES))] = 1
        return w
    return rng.dirichlet(np.full(len(ATTITUDES), 0.7)).astype(np.float32)


class PairSampler:
    """Random training windows: speaker condition (past + window), attitude, listener target."""

    def __init__(self, media_dir: Path, tracked_dir: Path, cfg: ListenerConfig, seed: int = 0,
                 pool_per_speaker: int = 16):
        self.cfg = cfg
        self.rng = np.random.default_rng(seed)
        self.speakers = [load_speaker(media_dir / name, tracked_dir) for name in TRAIN_SPEAKERS
                         if (media_dir / name).exists()]
        self.runs = [r for r in listening_runs(tracked_dir, "train") if len(r) >= cfg.window]
        frames = np.concatenate(self.runs)
        self.mean = frames.mean(0).astype(np.float32)
        self.std = np.maximum(frames.std(0), STD_FLOOR).astype(np.float32)
        self.pool_per_speaker = pool_per_speaker
        self.refresh()

    def refresh(self) -> None:
        """New behaviour responses (attitudes, nod draws) for every speaker."""
        self.pool = []
        for k, sp in enumerate(self.speakers):
            conds = {v: with_cue_channel(speaker_condition(sp, self.mean, self.std, v), self.cfg.speaker_dim)
                     for v in (True, False)}
            for _ in range(self.pool_per_speaker):
                video = sp.motion is not None and self.rng.random() < 0.85
                att = attitude_sample(self.rng)
                resp, _ = respond(sp.feat, sp.motion if video else None, blend_style(att), self.rng)
                self.pool.append((conds[video], att, resp))

    def batch(self, size: int) -> tuple[torch.Tensor, dict]:
        cfg = self.cfg
        w, p = cfg.window, cfg.past
        x = np.zeros((size, w, MOTION_DIM), np.float32)
        spk = np.zeros((size, p + w, cfg.speaker_dim), np.float32)
        att = np.zeros((size, len(ATTITUDES)), np.float32)
        for b in range(size):
            cond, a, resp = self.pool[self.rng.integers(len(self.pool))]
            n = len(cond)
            s = int(self.rng.integers(0, max(n - w, 1)))
            lo = s - p
            spk[b, max(0, -lo):] = cond[max(lo, 0):s + w]
            run = self.runs[self.rng.integers(len(self.runs))]
            r0 = int(self.rng.integers(0, len(run) - w + 1))
            base = run[r0:r0 + w]
            if self.rng.random() < 0.5:      # real listening seen in a mirror: twice the data
                base = mirrored(base)
            seg = resp[s:s + w]
            if len(seg) < w:
                seg = np.concatenate([seg, np.repeat(seg[-1:], w - len(seg), 0)])
            x[b] = (clip_motion(base + seg) - self.mean) / self.std
            att[b] = a
        return torch.from_numpy(x), {"speaker": torch.from_numpy(spk), "attitude": torch.from_numpy(att)}


def init_from(model: ListenerDiT, weights: Path) -> None:
    """Start `model` from a shipped listener.pt. A model with one speaker input more than the
    file's (the cue channel) gets the new input's weights at zero: it starts as the old model."""
    from core.safeload import torch_load
    blob = torch_load(weights, max_bytes=64 << 20)
    state = {k: v.float() for k, v in blob["weights"].items()}
    own = model.state_dict()
    w = state["adapter.proj.weight"]
    if w.shape != own["adapter.proj.weight"].shape:
        grown = torch.zeros_like(own["adapter.proj.weight"])
        grown[:, :w.shape[1]] = w
        state["adapter.proj.weight"] = grown
    model.load_state_dict(state)


def train(media_dir: Path, tracked_dir: Path, ckpt: Path, steps: int = 20000, batch: int = 32,
          lr: float = 3e-4, seed: int = 0, log=print, time_limit_s: float | None = None,
          cue_channel: bool = False, init: Path | None = None, warmup: int = 300) -> Path:
    """Train (or resume from `ckpt`) for `steps` optimiser steps; saves `ckpt` every 250 steps.
    `cue_channel`: the speaker condition carries the backchannel-cue channel
    (core.listener.data.cue_channel); `init`: start from these shipped weights (a fine-tune)."""
    from core.diffusion import diffusion_loss, make_schedule

    from .data import SPEAKER_DIM
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    cfg = ListenerConfig(speaker_dim=SPEAKER_DIM + 1 if cue_channel else SPEAKER_DIM)
    sampler = PairSampler(media_dir, tracked_dir, cfg, seed)
    model = ListenerDiT(cfg)
    if init is not None and not ckpt.exists():
        init_from(model, init)
        log(f"started from {init}")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    step, losses = 0, []
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = int(state["step"])
        log(f"resumed at step {step}")
    sched = make_schedule("cosine", 1000)
    null = {"speaker": torch.zeros(1, cfg.past + cfg.window, cfg.speaker_dim),
            "attitude": torch.zeros(1, len(ATTITUDES))}
    gen = torch.Generator().manual_seed(seed + step)
    t0 = time.time()

    def save() -> None:
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                    "config": cfg.to_dict(), "mean": torch.from_numpy(sampler.mean),
                    "std": torch.from_numpy(sampler.std)}, tmp)
        tmp.replace(ckpt)

    while step < steps:
        if step % 2000 == 0 and step:
            sampler.refresh()
        warm = min(1.0, (step + 1) / max(warmup, 1))
        for g in opt.param_groups:
            g["lr"] = lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        x0, cond = sampler.batch(batch)
        loss = diffusion_loss(model, sched, x0, cond, prediction="v", null_cond=null, cond_drop=0.1,
                              generator=gen, min_snr_gamma=5.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % 250 == 0 or step == steps:
            save()
            log(f"step {step} loss {np.mean(losses[-250:]):.4f} ({time.time() - t0:.0f} s)")
        if time_limit_s is not None and time.time() - t0 > time_limit_s:
            save()
            log(f"time limit reached at step {step}")
            break
    return ckpt


def export(ckpt: Path, out: Path, meta: dict | None = None) -> Path:
    """The shipped file: float16 weights, config, normalisation, training facts."""
    import json
    state = torch.load(ckpt, weights_only=True)
    weights = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    info = {"step": int(state["step"]), **(meta or {})}
    blob = {"format": "likeness-listener-v1", "weights": weights, "config": json.dumps(state["config"]),
            "mean": state["mean"], "std": state["std"], "meta": json.dumps(info)}
    tmp = out.with_suffix(".tmp")
    torch.save(blob, tmp)
    tmp.replace(out)
    return out
