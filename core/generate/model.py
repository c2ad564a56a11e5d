"""The two latent diffusion models of text-to-avatar (after GenCA), readable in one file.

Stage 1: x = identity as ICT coefficients (whitened: the face model's prior is N(0, I) there),
conditioned on the reading of the prompt. Stage 2: x = appearance code + hair + iris
(normalised), conditioned on the reading AND the stage-1 identity, so texture follows geometry.

The condition is the prompt's reading as numbers: per attribute a target z-score and a
"was mentioned" flag, plus a hair style one-hot and its flag. Nothing mentioned = all zeros =
the null condition, so the empty prompt and classifier-free guidance's unconditional branch
are the same thing.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from core.head.settings import HAIR_STYLES

from .attributes import INDEX, SCALARS
from .reading import Reading

NUM_ATTRS = len(SCALARS)
COND_DIM = 2 * NUM_ATTRS + len(HAIR_STYLES) + 1
IDENTITY_DIM = 100
# stage-2 extras after the appearance code: style one-hot, length, hairline, colour RGB, grey, iris RGB
EXTRA_NAMES = tuple(f"style_{s}" for s in HAIR_STYLES) + (
    "hair_length", "hairline", "hair_r", "hair_g", "hair_b", "grey", "iris_r", "iris_g", "iris_b")


def encode_reading(reading: Reading | None) -> np.ndarray:
    """(COND_DIM,) float32 condition of a reading (None or an empty reading -> zeros)."""
    c = np.zeros(COND_DIM, np.float32)
    if reading is None:
        return c
    targets = {**reading.relative, **reading.targets}
    for attr, z in targets.items():
        if attr in INDEX:
            c[INDEX[attr]] = np.clip(z, -3, 3)
            c[NUM_ATTRS + INDEX[attr]] = 1.0
    if reading.style is not None:
        c[2 * NUM_ATTRS + HAIR_STYLES.index(reading.style)] = 1.0
        c[-1] = 1.0
    return c


def encode_targets(targets: dict[str, float], style: str | None = None) -> np.ndarray:
    r = Reading("")
    r.targets = dict(targets)
    r.style = style
    return encode_reading(r)


class TimeEmbedding(nn.Module):
    def __init__(self, dim: int, steps: int) -> None:
        super().__init__()
        self.dim, self.steps = dim, steps
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(1000.0) * torch.arange(half, dtype=torch.float32) / half)
        a = (t.float() / self.steps * 1000.0)[:, None] * freqs[None]
        return self.mlp(torch.cat([a.sin(), a.cos()], 1))


class Block(nn.Module):
    """Pre-norm residual MLP block with FiLM from the time+condition embedding."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.film = nn.Linear(width, 2 * width)
        self.fc1 = nn.Linear(width, 2 * width)
        self.fc2 = nn.Linear(2 * width, width)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(emb).chunk(2, 1)
        y = self.norm(h) * (1 + scale) + shift
        return h + self.fc2(torch.nn.functional.silu(self.fc1(y)))


class Denoiser(nn.Module):
    """denoiser(x_t, t, cond) -> v prediction; cond (B, cond_dim)."""

    def __init__(self, x_dim: int, cond_dim: int, width: int = 256, depth: int = 4, steps: int = 1000) -> None:
        super().__init__()
        self.config = {"x_dim": x_dim, "cond_dim": cond_dim, "width": width, "depth": depth, "steps": steps}
        self.inp = nn.Linear(x_dim, width)
        self.time = TimeEmbedding(width, steps)
        self.cond = nn.Sequential(nn.Linear(cond_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.blocks = nn.ModuleList(Block(width) for _ in range(depth))
        self.out_norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, x_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        emb = torch.nn.functional.silu(self.time(t) + self.cond(cond))
        h = self.inp(x)
        for b in self.blocks:
            h = b(h, emb)
        return self.out(self.out_norm(h))


def state_half(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to(torch.float16) for k, v in net.state_dict().items()}


def load_net(config: dict, state: dict[str, torch.Tensor]) -> Denoiser:
    """A Denoiser from a config dict and its (float16) state; ValueError on a bad config."""
    keys = {"x_dim", "cond_dim", "width", "depth", "steps"}
    if not isinstance(config, dict) or set(config) != keys or not all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 100_000 for v in config.values()) \
            or config["width"] > 4096 or config["depth"] > 64 or config["x_dim"] > 4096 or config["cond_dim"] > 4096:
        raise ValueError(f"bad network configuration {config!r}"[:200])
    net = Denoiser(**config)
    net.load_state_dict({k: v.float() for k, v in state.items()})
    net.eval()
    return net
