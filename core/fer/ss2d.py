"""2D selective scan (SS2D, after VMamba) and the neck blocks of the one-stage detector.

A selective scan is a linear recurrence whose coefficients depend on the input:
    h_t = exp(delta_t * A) * h_t-1 + delta_t * B_t * u_t        (state h_t: d channels x n)
    y_t = C_t . h_t + D * u_t
with delta (softplus, per channel), B and C (per state) computed from the input at step t.
SS2D runs it over a feature map in four orders (rows, columns, and both reversed) and sums the
four outputs, so every position sees context from every direction.

`selective_scan` is the chunked form used for training and inference (pure PyTorch, no
kernels). A is one decay per channel shared by the n state entries (as in Mamba-2), which lets
the scan contract over the state inside a chunk with one matrix product shared by all channels
instead of materialising the state; the per-step log decay is floored at -5 (a step keeps at
least 0.7% of the state) so that in chunks of 16 every factor stays within exp(+-40) and no
product of them overflows float32 (a floor of -10, factors up to exp(80), overflowed in training). `selective_scan_reference` is the plain loop over time steps; tests/test_fer_detect.py
checks the two agree, and `ss2d_reference` redoes a whole SS2D with explicit pixel orders.

Blocks: `VSSBlock` is FER-YOLO-Mamba's dual branch (half the channels LayerNorm -> SS2D with a
residual, half conv-BN-ReLU with squeeze-excitation channel attention; concatenated, 1x1 conv,
residual); `CSPBlock` is the plain YOLO CSP layer it replaces (the ablation).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

DIRECTIONS = 4
DECAY_FLOOR = 5.0


def selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, Bm: torch.Tensor, Cm: torch.Tensor,
                   D: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """u, delta (b, g, d, L); A (g, d) negative; Bm, Cm (b, g, n, L); D (g, d) -> y (b, g, d, L).

    g independent groups (the scan directions) each with d channels sharing B and C."""
    b, g, d, L = u.shape
    pad = (-L) % chunk
    if pad:  # padded steps carry no input and no decay; their outputs are cut off
        u, delta = F.pad(u, (0, pad)), F.pad(delta, (0, pad))
        Bm, Cm = F.pad(Bm, (0, pad)), F.pad(Cm, (0, pad))
    nc, n = (L + pad) // chunk, Bm.shape[2]
    x = (delta * u).view(b, g, d, nc, chunk)                                 # input entering the state
    cum = log_decay(delta, A).view(b, g, d, nc, chunk).cumsum(-1)
    Bc = Bm.view(b, g, n, nc, chunk).permute(0, 1, 3, 4, 2)                # (b, g, nc, T, n)
    Cc = Cm.view(b, g, n, nc, chunk).permute(0, 1, 3, 4, 2)
    # within a chunk: y_t = sum_{s<=t} exp(cum_t - cum_s) (C_t . B_s) x_s, with the decay split as
    # exp(cum_t - m) * exp(m - cum_s) about the chunk's middle m: both factors stay within
    # exp(+-chunk/2 * DECAY_FLOOR), and the sum over s is a matrix product shared by all channels.
    mid = cum[..., chunk // 2:chunk // 2 + 1]
    up = (cum - mid).exp()                      # exp(cum_t - m), within exp(+-40)
    down = up.reciprocal()                      # exp(m - cum_s)
    causal = torch.ones(chunk, chunk, dtype=torch.bool, device=u.device).tril()
    cb = (Cc @ Bc.transpose(-1, -2)).masked_fill(~causal, 0.0)             # (b, g, nc, T, T)
    y = (cb @ (down * x).permute(0, 1, 3, 4, 2)).transpose(-1, -2)         # (b, g, nc, d, T)
    y = y * up.transpose(2, 3)
    # the state each chunk leaves behind, then a sequential scan over chunks (few steps) for the
    # state entering each chunk
    end = cum[..., -1]                                                     # (b, g, d, nc) chunk log decay
    to_end = down * (end[..., None] - mid).exp()                           # exp(cum_T - cum_s) <= 1
    leave = (to_end * x).transpose(2, 3) @ Bc                              # (b, g, nc, d, n)
    keep = end.exp().transpose(2, 3)[..., None]                            # (b, g, nc, d, 1)
    h = torch.zeros_like(leave[:, :, 0])
    enter = []
    for c in range(nc):
        enter.append(h)
        h = keep[:, :, c] * h + leave[:, :, c]
    enter = torch.stack(enter, 2)                                          # (b, g, nc, d, n)
    y = y + (up * mid.exp()).transpose(2, 3) * (enter @ Cc.transpose(-1, -2))
    y = y.transpose(2, 3).reshape(b, g, d, nc * chunk)[..., :L]
    return y + D[None, :, :, None] * u[..., :L]


def log_decay(delta: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """delta * A per step, floored at -DECAY_FLOOR (the chunked scan's factors stay finite).
    (b, g, d, L), A (g, d)."""
    return (delta * A[None, :, :, None]).clamp(min=-DECAY_FLOOR)


def selective_scan_reference(u, delta, A, Bm, Cm, D) -> torch.Tensor:
    """The recurrence step by step (slow, obviously right); same arguments as selective_scan."""
    b, g, d, L = u.shape
    h = u.new_zeros(b, g, d, Bm.shape[2])
    ys = []
    for t in range(L):
        decay = torch.exp(log_decay(delta[..., t:t + 1], A)[..., 0])          # (b, g, d)
        h = decay[..., None] * h + (delta[..., t] * u[..., t])[..., None] * Bm[:, :, None, :, t]
        ys.append((h * Cm[:, :, None, :, t]).sum(-1) + D[None] * u[..., t])
    return torch.stack(ys, -1)


def scan_orders(x: torch.Tensor) -> torch.Tensor:
    """(b, d, H, W) -> (b, 4, d, H*W): row-major, column-major and both reversed."""
    rows = x.flatten(2)
    cols = x.transpose(2, 3).flatten(2)
    return torch.stack([rows, cols, rows.flip(-1), cols.flip(-1)], 1)


def merge_orders(y: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """(b, 4, d, H*W) -> (b, d, H, W): each order put back in place and summed."""
    b, _, d, _ = y.shape
    rows = y[:, 0] + y[:, 2].flip(-1)
    cols = y[:, 1] + y[:, 3].flip(-1)
    return rows.view(b, d, H, W) + cols.view(b, d, W, H).transpose(2, 3)


class SS2D(nn.Module):
    """Input (b, H, W, dim) channels-last -> same shape."""

    def __init__(self, dim: int, d_state: int = 8, expand: float = 1.0, chunk: int = 16):
        super().__init__()
        di = int(dim * expand)
        self.d_inner, self.d_state, self.chunk = di, d_state, chunk
        self.dt_rank = max(1, math.ceil(dim / 16))
        k = DIRECTIONS
        self.in_proj = nn.Linear(dim, 2 * di, bias=False)
        self.conv = nn.Conv2d(di, di, 3, padding=1, groups=di)
        self.x_proj = nn.Parameter(torch.randn(k, self.dt_rank + 2 * d_state, di) / math.sqrt(di))
        self.dt_w = nn.Parameter(torch.randn(k, di, self.dt_rank) * self.dt_rank ** -0.5)
        # step sizes start log-uniform in [1e-3, 1e-1] (softplus inverse), as in Mamba
        dt = torch.exp(torch.rand(k, di) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
        self.dt_b = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        # one decay rate per channel, spread over 1..16 so channels remember over different ranges
        self.A_log = nn.Parameter(torch.log(torch.linspace(1, 16, di)).repeat(k, 1))
        self.D = nn.Parameter(torch.ones(k, di))
        self.out_norm = nn.LayerNorm(di)
        self.out_proj = nn.Linear(di, dim, bias=False)

    def scan_inputs(self, x: torch.Tensor):
        """Shared by forward and ss2d_reference: (u, delta, A, B, C, D, z) with u in image layout."""
        xz = self.in_proj(x)
        u, z = xz.chunk(2, dim=-1)
        u = F.silu(self.conv(u.permute(0, 3, 1, 2).contiguous()))      # (b, di, H, W)
        return u, z

    def coefficients(self, xs: torch.Tensor):
        """xs (b, 4, di, L) -> delta (b, 4, di, L), B, C (b, 4, n, L)."""
        dbl = torch.einsum("bkdl,kcd->bkcl", xs, self.x_proj)
        dts, Bm, Cm = dbl.split([self.dt_rank, self.d_state, self.d_state], dim=2)
        delta = F.softplus(torch.einsum("bkrl,kdr->bkdl", dts, self.dt_w) + self.dt_b[None, :, :, None])
        return delta, Bm.contiguous(), Cm.contiguous()

    def finish(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        y = self.out_norm(y.permute(0, 2, 3, 1)) * F.silu(z)
        return self.out_proj(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        H, W = x.shape[1:3]
        u, z = self.scan_inputs(x)
        xs = scan_orders(u)
        delta, Bm, Cm = self.coefficients(xs)
        y = selective_scan(xs, delta, -torch.exp(self.A_log), Bm, Cm, self.D, self.chunk)
        return self.finish(merge_orders(y, H, W), z)


@torch.no_grad()
def ss2d_reference(m: SS2D, x: torch.Tensor) -> torch.Tensor:
    """SS2D with every scan written out: visit pixels in each order, run the recurrence, write
    each output back at the pixel it came from. Slow; for tests."""
    b, H, W, _ = x.shape
    u, z = m.scan_inputs(x)
    orders = [[(i, j) for i in range(H) for j in range(W)], [(i, j) for j in range(W) for i in range(H)]]
    orders += [o[::-1] for o in orders]
    A = -torch.exp(m.A_log)
    out = torch.zeros_like(u)
    for k, order in enumerate(orders):
        seq = torch.stack([u[:, :, i, j] for i, j in order], -1)[:, None]     # (b, 1, di, L)
        dbl = torch.einsum("bkdl,cd->bkcl", seq, m.x_proj[k])
        dts, Bm, Cm = dbl.split([m.dt_rank, m.d_state, m.d_state], dim=2)
        delta = F.softplus(torch.einsum("bkrl,dr->bkdl", dts, m.dt_w[k]) + m.dt_b[k][None, None, :, None])
        y = selective_scan_reference(seq, delta, A[k:k + 1], Bm, Cm, m.D[k:k + 1])[:, 0]
        for t, (i, j) in enumerate(order):
            out[:, :, i, j] += y[..., t]
    return m.finish(out, z)


class ConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, act: type = nn.SiLU):
        super().__init__(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), act())


class SqueezeExcite(nn.Module):
    def __init__(self, c: int, r: int = 4):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, max(4, c // r), 1), nn.Conv2d(max(4, c // r), c, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))))


class VSSBlock(nn.Module):
    """(b, cin, H, W) -> (b, cout, H, W): 1x1 in, then the dual branch with residuals."""

    def __init__(self, cin: int, cout: int, d_state: int = 8):
        super().__init__()
        self.inp = ConvBN(cin, cout, 1)
        h = cout // 2
        self.half = h
        self.norm = nn.LayerNorm(h)
        self.ss2d = SS2D(h, d_state)
        self.conv = nn.Sequential(ConvBN(cout - h, cout - h, 3, act=nn.ReLU), SqueezeExcite(cout - h))
        self.fuse = ConvBN(cout, cout, 1)

    def forward(self, x):
        x = self.inp(x)
        a, c = x[:, :self.half], x[:, self.half:]
        a_hw = a.permute(0, 2, 3, 1)
        a = (a_hw + self.ss2d(self.norm(a_hw))).permute(0, 3, 1, 2)
        c = self.conv(c)
        return x + self.fuse(torch.cat([a, c], 1))


class Bottleneck(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.cv1, self.cv2 = ConvBN(c, c, 1), ConvBN(c, c, 3)

    def forward(self, x):
        return x + self.cv2(self.cv1(x))


class CSPBlock(nn.Module):
    """YOLO's CSP layer (C3): two 1x1 paths, bottlenecks on one, concatenated, 1x1 out."""

    def __init__(self, cin: int, cout: int, n: int = 1):
        super().__init__()
        h = cout // 2
        self.cv1, self.cv2 = ConvBN(cin, h, 1), ConvBN(cin, h, 1)
        self.m = nn.Sequential(*(Bottleneck(h) for _ in range(n)))
        self.cv3 = ConvBN(2 * h, cout, 1)

    def forward(self, x):
        return self.cv3(torch.cat([self.m(self.cv1(x)), self.cv2(x)], 1))
