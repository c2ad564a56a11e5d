"""The listener diffusion transformer, in one file (nanoGPT style).

Denoises a window of W listener motion frames (53 weights + head yaw/pitch/roll, normalised).
Conditioning:
- the diffusion step and the attitude (4 weights from the attitude sentence) through adaLN-Zero
  modulation of every block (DiT, Peebles & Xie 2023);
- the speaker streams (audio features + tracked speaker motion, P past frames + the W frames of
  the window) through the causal temporal adapter: a causal temporal convolution over the
  speaker tokens, then cross-attention in every block with a causal mask, so listener frame t
  sees speaker input up to t only (DiTaiListener's Causal Temporal Multimodal Adapter).
Self-attention among a window's listener frames is bidirectional (a window is generated jointly,
and the join refinement needs the frames on both sides of a join). Live, the newest frame is the
last of its window with the earlier frames known, so it depends on speaker input up to now only
(core.listener.generate.LiveListener).

forward(x_t (B, W, D), t (B,), cond {"speaker": (B, P + W, C), "attitude": (B, 4)}) -> the
v-prediction (B, W, D), the interface core.diffusion expects.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ListenerConfig:
    motion_dim: int = 56
    speaker_dim: int = 87
    attitude_dim: int = 4
    window: int = 64          # listener frames generated per call (2.56 s at 25 fps)
    past: int = 32            # speaker frames of context before the window
    width: int = 128
    layers: int = 3
    heads: int = 4
    kernel: int = 5           # causal temporal convolution of the adapter

    def to_dict(self) -> dict:
        return asdict(self)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    a = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(a), torch.sin(a)], 1)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, w = x.shape
        h = self.heads
        q = self.q(x).view(b, n, h, w // h).transpose(1, 2)
        k, v = self.kv(ctx).view(b, ctx.shape[1], 2, h, w // h).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, n, w))


class Block(nn.Module):
    def __init__(self, cfg: ListenerConfig):
        super().__init__()
        w = cfg.width
        self.norm1 = nn.LayerNorm(w, elementwise_affine=False)
        self.self_attn = Attention(w, cfg.heads)
        self.norm2 = nn.LayerNorm(w, elementwise_affine=False)
        self.cross_attn = Attention(w, cfg.heads)
        self.norm3 = nn.LayerNorm(w, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(w, 4 * w), nn.GELU(approximate="tanh"), nn.Linear(4 * w, w))
        self.ada = nn.Linear(w, 9 * w)       # shift/scale/gate for the three sub-layers
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, spk: torch.Tensor, mask: torch.Tensor,
                self_mask: torch.Tensor | None = None) -> torch.Tensor:
        s1, c1, g1, s2, c2, g2, s3, c3, g3 = self.ada(F.silu(c)).chunk(9, dim=1)
        h = modulate(self.norm1(x), s1, c1)
        x = x + g1[:, None] * self.self_attn(h, h, self_mask)
        x = x + g2[:, None] * self.cross_attn(modulate(self.norm2(x), s2, c2), spk, mask)
        return x + g3[:, None] * self.mlp(modulate(self.norm3(x), s3, c3))


class CausalAdapter(nn.Module):
    """Speaker features -> tokens: a linear projection, a causal temporal convolution (each token
    mixes only itself and earlier frames) and learned positions."""

    def __init__(self, cfg: ListenerConfig):
        super().__init__()
        self.proj = nn.Linear(cfg.speaker_dim, cfg.width)
        self.conv = nn.Conv1d(cfg.width, cfg.width, cfg.kernel)
        self.kernel = cfg.kernel
        self.pos = nn.Parameter(torch.zeros(cfg.past + cfg.window, cfg.width))
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, speaker: torch.Tensor) -> torch.Tensor:
        h = self.proj(speaker)
        y = self.conv(F.pad(h.transpose(1, 2), (self.kernel - 1, 0))).transpose(1, 2)
        return h + F.gelu(y) + self.pos[: speaker.shape[1]]


class ListenerDiT(nn.Module):
    def __init__(self, cfg: ListenerConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.inp = nn.Linear(cfg.motion_dim, w)
        self.pos = nn.Parameter(torch.zeros(cfg.window, w))
        nn.init.normal_(self.pos, std=0.02)
        self.t_mlp = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        self.att = nn.Linear(cfg.attitude_dim, w)
        self.adapter = CausalAdapter(cfg)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(w, elementwise_affine=False)
        self.final_ada = nn.Linear(w, 2 * w)
        self.out = nn.Linear(w, cfg.motion_dim)
        for lin in (self.final_ada, self.out):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        # listener frame i sits at speaker position past + i: it may see speaker tokens <= that
        i = torch.arange(cfg.window)[:, None] + cfg.past
        j = torch.arange(cfg.past + cfg.window)[None]
        self.register_buffer("causal", j <= i, persistent=False)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: dict) -> torch.Tensor:
        n = x.shape[1]
        spk = self.adapter(cond["speaker"])
        c = self.t_mlp(timestep_embedding(t, self.cfg.width)) + self.att(cond["attitude"])
        mask = self.causal[:n, : spk.shape[1]]
        h = self.inp(x) + self.pos[:n]
        for blk in self.blocks:
            h = blk(h, c, spk, mask, None)
        shift, scale = self.final_ada(F.silu(c)).chunk(2, dim=1)
        return self.out(modulate(self.norm(h), shift, scale))
