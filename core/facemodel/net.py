"""The implicit morphable face network, in one file.

After Lin et al. 2023, "Single-Shot Implicit Morphable Faces with Consistent Texture
Parameterization". A face with identity code z and expression weights w is the zero level of

    sdf(x | z, w) = T( Phi^-1(x) ),    Phi(t) = t + F(t) z + G(t) (w - w_rest)

  T  template SDF (cm, negative inside): a learned trilinear grid, accurate to a fraction of a mm
  F  identity field: (3, D) offsets per unit identity code at a template point; Phi with w = w_rest
     maps the template to the canonical (rest pose) space of identity z
  G  expression field: (3, 53) offsets per unit weight, linear in the weights, so animating an
     extracted mesh is one matmul and GLB morph targets are exact
  U  UV field on template space (chart logits + one UV head per chart), shared by every
     identity: a texture painted once fits every face

F, G, U share one decoder on multi-resolution feature grids + Fourier features of the point.
Because Phi is linear in the codes, the zero level of sdf(.|z,w) is Phi(template zero level):
mesh extraction runs marching cubes once in template space and maps the vertices through Phi.
Points off the surface are pulled back by fixed-point iteration t <- x - D(t).

For GLSL ray marching, `shader_*` are small plain MLPs distilled from the same data: a backward
warp conditioned on (z, expression code) and an MLP copy of T (see shader_spec.py).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_ICT_IDENTITY = 100
NUM_EXPRESSIONS = 53


@dataclass
class FaceNetConfig:
    lo: tuple[float, float, float] = (-17.0, -24.0, -15.5)   # SDF box, cm (x, y, z)
    hi: tuple[float, float, float] = (17.0, 18.0, 15.5)
    identity_dim: int = 100
    expression_dim: int = 32
    num_charts: int = 6
    sdf_voxel: float = 0.25           # template SDF grid spacing, cm
    feat_grids: tuple[tuple[float, int], ...] = ((1.6, 16), (0.5, 8))  # (voxel cm, channels)
    octaves: int = 4
    width: int = 192
    shader_warp: tuple[int, int, int] = (6, 96, 3)   # (octaves, width, hidden layers)
    shader_sdf: tuple[int, int, int] = (6, 128, 3)
    softplus_beta: float = 100.0
    rest_expression: list[float] = field(default_factory=lambda: [0.0] * NUM_EXPRESSIONS)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["feat_grids"] = [list(g) for g in self.feat_grids]
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "FaceNetConfig":
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for k in ("lo", "hi", "shader_warp", "shader_sdf"):
            d[k] = tuple(d[k])
        d["feat_grids"] = tuple(tuple(g) for g in d["feat_grids"])
        return cls(**d)

    def grid_shape(self, voxel: float) -> tuple[int, int, int]:
        """(Z, Y, X) node counts of a grid with about `voxel` spacing over the box."""
        n = [max(2, int(math.ceil((h - l) / voxel)) + 1) for l, h in zip(self.lo, self.hi)]
        return (n[2], n[1], n[0])


def fourier(xn: torch.Tensor, octaves: int) -> torch.Tensor:
    """[x, sin(2^k pi x), cos(2^k pi x) for k < octaves]: the layout shader_spec documents."""
    feats = [xn]
    for k in range(octaves):
        a = (2.0 ** k) * math.pi * xn
        feats += [torch.sin(a), torch.cos(a)]
    return torch.cat(feats, -1)


def grid_sample3(grid: torch.Tensor, xn: torch.Tensor) -> torch.Tensor:
    """Trilinear lookup of a (C, Z, Y, X) grid at normalised points (N, 3) in [-1, 1] -> (N, C)."""
    g = xn.reshape(1, -1, 1, 1, 3)
    out = F.grid_sample(grid[None], g, mode="bilinear", padding_mode="border", align_corners=True)
    return out.reshape(grid.shape[0], -1).T


class MLP(nn.Module):
    """Fourier features of x (+ a code) -> out, softplus hidden layers: the shader's stage format."""

    def __init__(self, octaves: int, width: int, depth: int, out: int, code_dim: int = 0,
                 beta: float = 100.0, out_scale: float = 1.0):
        super().__init__()
        self.octaves, self.code_dim, self.beta = octaves, code_dim, beta
        dims = [3 * (1 + 2 * octaves) + code_dim] + [width] * depth + [out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        with torch.no_grad():
            self.layers[-1].weight.mul_(out_scale)
            self.layers[-1].bias.zero_()

    def forward(self, xn: torch.Tensor, code: torch.Tensor | None = None) -> torch.Tensor:
        h = fourier(xn, self.octaves)
        if code is not None:
            h = torch.cat([h, code.expand(*h.shape[:-1], code.shape[-1])], -1)
        for layer in self.layers[:-1]:
            h = F.softplus(layer(h), beta=self.beta)
        return self.layers[-1](h)


class FaceNet(nn.Module):
    def __init__(self, cfg: FaceNetConfig):
        super().__init__()
        self.cfg = cfg
        # No tensor arithmetic here: FaceModel.load builds this on the meta device to check a
        # file's shapes, and arithmetic on meta tensors imports torch._dynamo (3-6 s a load).
        lo, hi = np.float32(cfg.lo), np.float32(cfg.hi)
        self.register_buffer("in_offset", torch.tensor((lo + hi) / 2))
        self.register_buffer("in_scale", torch.tensor(np.float32(2.0) / (hi - lo)))
        self.register_buffer("rest_expression", torch.tensor(cfg.rest_expression, dtype=torch.float32))
        self.register_buffer("landmarks_template", torch.zeros(68, 3))
        D = cfg.identity_dim
        # Identity codes z = W a for ICT coefficients a ~ N(0, I): the prior is N(0, W W^T).
        self.id_encoder = nn.Linear(NUM_ICT_IDENTITY, D, bias=False)
        meta = self.id_encoder.weight.is_meta     # initial values unused (FaceModel.load's shape check)
        if not meta:
            with torch.no_grad():
                self.id_encoder.weight.copy_(torch.eye(D, NUM_ICT_IDENTITY))
        self.ex_encoder = nn.Sequential(nn.Linear(NUM_EXPRESSIONS, 64), nn.Softplus(beta=10.0),
                                        nn.Linear(64, cfg.expression_dim))
        self.sdf_grid = nn.Parameter(torch.zeros(1, *cfg.grid_shape(cfg.sdf_voxel)))
        self.feat = nn.ParameterList(
            nn.Parameter(torch.empty(c, *cfg.grid_shape(v)) if meta else torch.randn(c, *cfg.grid_shape(v)).mul_(1e-2))
            for v, c in cfg.feat_grids)
        n_in = sum(c for _, c in cfg.feat_grids) + 3 * (1 + 2 * cfg.octaves)
        self.trunk = nn.Sequential(nn.Linear(n_in, cfg.width), nn.Softplus(beta=cfg.softplus_beta),
                                   nn.Linear(cfg.width, cfg.width), nn.Softplus(beta=cfg.softplus_beta))
        self.head_id = nn.Linear(cfg.width, 3 * D)
        self.head_ex = nn.Linear(cfg.width, 3 * NUM_EXPRESSIONS)
        self.head_uv = nn.Linear(cfg.width, 3 * cfg.num_charts)   # per chart: logit, u, v
        for h in (self.head_id, self.head_ex):
            with torch.no_grad():
                h.weight.mul_(0.1)
                h.bias.zero_()
        b = cfg.softplus_beta
        self.shader_warp = MLP(*cfg.shader_warp, 3, D + cfg.expression_dim, b, 0.1)
        self.shader_sdf = MLP(*cfg.shader_sdf, 1, 0, b)

    def norm(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.in_offset) * self.in_scale

    # --- codes -----------------------------------------------------------------------------
    def encode_identity(self, ict: torch.Tensor) -> torch.Tensor:
        return self.id_encoder(ict)

    def encode_expression(self, weights: torch.Tensor) -> torch.Tensor:
        return self.ex_encoder(weights)

    # --- template-space fields (points in cm) -------------------------------------------------
    def template_sdf(self, xt: torch.Tensor) -> torch.Tensor:
        return grid_sample3(self.sdf_grid, self.norm(xt))[:, 0]

    def features(self, xt: torch.Tensor) -> torch.Tensor:
        xn = self.norm(xt)
        h = torch.cat([grid_sample3(g, xn) for g in self.feat] + [fourier(xn, self.cfg.octaves)], -1)
        return self.trunk(h)

    def fields(self, xt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Identity field (N, 3, D), expression field (N, 3, 53), chart logits (N, K), UVs (N, K, 2)."""
        h = self.features(xt)
        n = xt.shape[0]
        fid = self.head_id(h).reshape(n, 3, -1)
        fex = self.head_ex(h).reshape(n, 3, NUM_EXPRESSIONS)
        uv = self.head_uv(h).reshape(n, self.cfg.num_charts, 3)
        return fid, fex, uv[..., 0], uv[..., 1:] + 0.5

    def displacement(self, xt: torch.Tensor, z: torch.Tensor, dw: torch.Tensor) -> torch.Tensor:
        """Phi(t) - t for identity code z (D,) and expression weights minus rest pose dw (53,)."""
        h = self.features(xt)
        wid = self.head_id.weight.reshape(3, -1, h.shape[1])        # (3, D, width)
        wex = self.head_ex.weight.reshape(3, NUM_EXPRESSIONS, h.shape[1])
        # Contract the heads with the codes first: one (width -> 3) layer per query.
        w = torch.einsum("cdh,d->ch", wid, z) + torch.einsum("ceh,e->ch", wex, dw)
        b = self.head_id.bias.reshape(3, -1) @ z + self.head_ex.bias.reshape(3, -1) @ dw
        return h @ w.T + b

    def pull_back(self, x: torch.Tensor, z: torch.Tensor, dw: torch.Tensor, iters: int = 12) -> torch.Tensor:
        """Template point t with Phi(t) = x, by damped fixed-point iteration."""
        t = x.clone()
        for i in range(iters):
            t = t + 0.8 * ((x - self.displacement(t, z, dw)) - t) if i < iters - 1 else x - self.displacement(t, z, dw)
        return t

    def sdf(self, x: torch.Tensor, z: torch.Tensor, dw: torch.Tensor) -> torch.Tensor:
        return self.template_sdf(self.pull_back(x, z, dw))

    # --- shader distillation ------------------------------------------------------------------
    def shader_sdf_value(self, x: torch.Tensor, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        code = torch.cat([z, c], -1)
        xt = x + self.shader_warp(self.norm(x), code)
        return self.shader_sdf(self.norm(xt))[..., 0]
