"""Train the face network from ICT FaceKit (CPU, resumable). Used by `main.py train-face-model`.

Every field has its own regression target from the linear ICT model in vertex correspondence,
so all of them train in one loop on one summed loss:
  template SDF grid   starts at the exact signed distance of the closed template at its nodes,
                      then is fitted so its trilinear interpolation matches samples near the surface
  F, G, U             template surface points -> identity / expression offsets, UV chart + coords
  shader MLPs         deformed surface points -> template points; template SDF samples
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from scipy.spatial import cKDTree

from core.meshops import border_labels, clean_sign_specks, grid_points

from .data import REST_EXPRESSION, FaceData, sample_case
from .net import FaceNet, FaceNetConfig


def _area(data: FaceData, v: np.ndarray) -> float:
    t = v[data.topo.tris]
    return float(0.5 * np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1).sum())


def face_boost(data: FaceData, v: np.ndarray, boost: float = 3.0) -> np.ndarray:
    """Area weights with the face region (where quality is measured) sampled `boost` x as densely."""
    return data.area_weights(v, np.where(data.topo.tri_face, boost, 1.0))


class SignedDistance:
    """Signed distance to the closed template from dense surface samples (sign: nearest normal)."""

    def __init__(self, data: FaceData, rng: np.random.Generator, dense: int = 1_500_000):
        tv = data.template()
        tri, bary = data.sample(rng, dense, data.area_weights(tv))
        self.p, self.n = data.points(tv, tri, bary)
        self.tree = cKDTree(self.p)
        self.coarse = cKDTree(self.p[:40_000])  # far points: a sparse tree is fast and close enough
        self.spacing = math.sqrt(_area(data, tv) / dense)
        # The nearest normal gets the sign wrong in the wedge below a flared rim (the neck cut),
        # so far from the surface the sign comes from a flood fill: free space connected to the
        # box border is outside.
        cfg = FaceNetConfig()
        self.lo, self.hi = np.array(cfg.lo), np.array(cfg.hi)
        self.shape = tuple(int(np.ceil((h - l) / 0.4)) + 1 for l, h in zip(cfg.lo, cfg.hi))  # x, y, z
        axes = [np.linspace(l, h, n) for l, h, n in zip(cfg.lo, cfg.hi, self.shape)]
        nodes = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        free = (self.coarse.query(nodes, workers=2)[0] > self.FAR).reshape(self.shape)
        labels, _ = ndimage.label(free)
        border = border_labels(labels)
        self.free = free
        self.outside = np.isin(labels, border[border > 0])

    FAR = 0.8  # cm

    def __call__(self, x: np.ndarray) -> np.ndarray:
        d, i = self.coarse.query(x, workers=2)
        near = d < 1.0
        dn, iN = self.tree.query(x[near], workers=2)
        d[near], i[near] = dn, iN
        sign = np.sign(np.einsum("nd,nd->n", x - self.p[i], self.n[i]))
        idx = np.round((x - self.lo) / (self.hi - self.lo) * (np.array(self.shape) - 1)).astype(int)
        idx = np.clip(idx, 0, np.array(self.shape) - 1)
        node_free = self.free[idx[:, 0], idx[:, 1], idx[:, 2]]
        node_out = self.outside[idx[:, 0], idx[:, 1], idx[:, 2]]
        far = (d > self.FAR) & node_free
        sign[far] = np.where(node_out[far], 1.0, -1.0)
        return sign * d


class Pools:
    """Fixed pools of template-space training points (built once)."""

    def __init__(self, data: FaceData, rng: np.random.Generator, sd: SignedDistance,
                 sdf_points: int = 1_000_000, surf_points: int = 200_000):
        topo = data.topo
        tv = data.template()
        self.template = tv
        n_near = int(sdf_points * 0.85)
        tri, bary = data.sample(rng, n_near, face_boost(data, tv))
        p, n = data.points(tv, tri, bary)
        t = rng.standard_normal(n_near) * np.where(rng.random(n_near) < 0.5, 0.05, 0.4)
        near = p + t[:, None] * n
        lo, hi = np.array(FaceNetConfig().lo), np.array(FaceNetConfig().hi)
        box = lo + (hi - lo) * rng.random((sdf_points - n_near, 3))
        x = np.concatenate([near, box])
        target = sd(x)
        # p + t n is exactly t away unless another part of the surface is closer.
        exact = np.abs(t) <= np.abs(target[:n_near]) + sd.spacing
        target[:n_near] = np.where(exact, t, target[:n_near])
        self.sdf_x = torch.tensor(x, dtype=torch.float32)
        self.sdf_y = torch.tensor(target, dtype=torch.float32)
        self.sdf_w = torch.tensor(np.r_[np.ones(n_near), np.full(len(box), 0.2)], dtype=torch.float32)
        # Surface points (+ small normal offsets: the fields are constant along the normal, which
        # keeps them right on slightly-off surfaces) with identity / expression / UV targets.
        # Where expressions move the skin a lot (eyelids, lips) gets more samples: those small
        # regions are what blinks and speech are made of.
        mag = np.linalg.norm(data.expression_deltas(), axis=2)          # (53, V)
        motion = (mag / mag.max(1, keepdims=True)).max(0)[topo.tris].mean(1)  # per expression
        w = face_boost(data, tv) * (1.0 + 8.0 * motion)
        # Expression errors are measured relative to each expression's reach, so a 1 cm blink
        # counts as much as a 4 cm jaw drop.
        scale = mag.max(1)
        self.ex_scale = torch.tensor(scale / scale.mean(), dtype=torch.float32)
        tri, bary = data.sample(rng, surf_points, w / w.sum())
        p, n = data.points(tv, tri, bary)
        p = p + (rng.standard_normal(surf_points) * 0.05)[:, None] * n
        corners = topo.tris[tri]
        b = bary.astype(np.float32)

        def interp(deltas: np.ndarray) -> np.ndarray:  # (K, V, 3) -> (n, 3, K)
            d = deltas.astype(np.float32).transpose(1, 2, 0)
            return sum(b[:, k, None, None] * d[corners[:, k]] for k in range(3))

        self.surf_x = torch.tensor(p, dtype=torch.float32)
        self.surf_id = torch.tensor(interp(data.identity_deltas()))
        self.surf_ex = torch.tensor(interp(data.expression_deltas()))
        self.surf_chart = torch.tensor(topo.tri_chart[tri], dtype=torch.long)  # -1 on caps
        self.surf_uv = torch.tensor(np.einsum("nk,nkd->nd", bary, topo.tri_uvs[tri]), dtype=torch.float32)


def init_sdf_grid(net: FaceNet, sd: SignedDistance) -> None:
    """Exact signed distances at the grid nodes: the starting point the fit refines."""
    cfg = net.cfg
    Z, Y, X = net.sdf_grid.shape[1:]
    pts = grid_points(cfg.lo, cfg.hi, (X, Y, Z)).reshape(-1, 3).astype(np.float64)
    with torch.no_grad():
        grid = clean_sign_specks(sd(pts).reshape(Z, Y, X))
        net.sdf_grid.copy_(torch.tensor(grid, dtype=torch.float32)[None])


def warp_batch(data: FaceData, rng: np.random.Generator, pairs: int, per_pair: int,
               weights: np.ndarray) -> dict[str, torch.Tensor]:
    """Corresponding points on deformed and template meshes of random faces (for the shader warp)."""
    tv = data.template()
    xs: dict[str, list] = {k: [] for k in ("xd", "xt", "a", "e")}
    for _ in range(pairs):
        a, e = sample_case(rng)
        vd = data.skin(a, e)
        tri, bary = data.sample(rng, per_pair, weights)
        t = rng.standard_normal(per_pair) * 0.25 * (rng.random(per_pair) < 0.5)
        for key, v in (("xd", vd), ("xt", tv)):
            p, n = data.points(v, tri, bary)
            xs[key].append(p + t[:, None] * n)
        xs["a"].append(np.repeat(a[None], per_pair, 0))
        xs["e"].append(np.repeat(e[None], per_pair, 0))
    return {k: torch.tensor(np.concatenate(v), dtype=torch.float32) for k, v in xs.items()}


def losses(net: FaceNet, pools: Pools, wb: dict[str, torch.Tensor], gen: torch.Generator,
           n_surf: int, n_shader: int) -> dict[str, torch.Tensor]:
    k = torch.randint(len(pools.sdf_x), (n_shader,), generator=gen)
    s2 = net.shader_sdf(net.norm(pools.sdf_x[k]))[:, 0]
    l_ssdf = (pools.sdf_w[k] * (s2 - pools.sdf_y[k]).abs()).mean()

    j = torch.randint(len(pools.surf_x), (n_surf,), generator=gen)
    fid, fex, logits, uvs = net.fields(pools.surf_x[j])
    # Errors in ICT coefficient space: the effective field per ICT mode is F W.
    eff = fid @ net.id_encoder.weight
    l_id = ((eff - pools.surf_id[j]) ** 2).sum((1, 2)).add(1e-8).sqrt().mean()
    l_ex = (((fex - pools.surf_ex[j]) / pools.ex_scale) ** 2).sum((1, 2)).add(1e-8).sqrt().mean()
    chart = pools.surf_chart[j]
    skin = chart >= 0
    l_chart = F.cross_entropy(logits[skin], chart[skin])
    uv = uvs[skin, chart[skin]]
    l_uv = (uv - pools.surf_uv[j][skin]).abs().sum(-1).mean()

    z = net.encode_identity(wb["a"])
    c = net.encode_expression(wb["e"])
    xt = wb["xd"] + net.shader_warp(net.norm(wb["xd"]), torch.cat([z, c], -1))
    l_warp = (xt - wb["xt"]).norm(dim=-1).mean()
    return {"id": l_id, "ex": l_ex, "chart": l_chart, "uv": l_uv,
            "shader_sdf": l_ssdf, "shader_warp": l_warp}


WEIGHTS = {"id": 1.0, "ex": 1.0, "chart": 0.02, "uv": 10.0, "shader_sdf": 0.3,
           "shader_warp": 0.3}


def train(data: FaceData, out: Path, steps: int, seed: int = 0, minutes: float | None = None,
          cfg: FaceNetConfig | None = None, resume: bool = True, log: Callable[[str], None] = print,
          batch: tuple[int, int, int, int] = (2048, 768, 3, 256),
          ckpt_every: int = 100) -> FaceNet:
    """Train for `steps` (or until `minutes` pass); checkpoints to out/ckpt.pt, resumable."""
    torch.manual_seed(seed)
    cfg = cfg or FaceNetConfig()
    cfg.rest_expression = [float(x) for x in REST_EXPRESSION]
    cfg.num_charts = data.topo.num_charts
    net = FaceNet(cfg)
    # The template SDF grid keeps its exact node distances (fitting it barely helps on this CPU).
    net.sdf_grid.requires_grad_(False)
    grid_params = list(net.feat)
    other = [p for p in net.parameters() if p.requires_grad and all(p is not g for g in grid_params)]
    # Feature grids get a larger step: each sample only touches 8 nodes.
    opt = torch.optim.Adam([{"params": grid_params, "base": 1e-2}, {"params": other, "base": 2e-3}],
                           fused=True)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "ckpt.pt"
    step, elapsed = 0, 0.0
    t0 = time.time()
    sd = SignedDistance(data, np.random.default_rng([seed, 5]))
    if resume and ckpt.exists():
        st = torch.load(ckpt, weights_only=True)
        net.load_state_dict(st["state"])
        opt.load_state_dict(st["opt"])
        step, elapsed = int(st["step"]), float(st["elapsed"])
        log(f"resumed at step {step} ({elapsed / 60:.1f} min)")
    else:
        init_sdf_grid(net, sd)
    net.landmarks_template.copy_(torch.tensor(data.template()[data.topo.landmarks], dtype=torch.float32))
    pools = Pools(data, np.random.default_rng([seed, 7]), sd)
    log(f"pools built in {time.time() - t0:.1f} s")
    rng = np.random.default_rng([seed, step])  # a fresh stream per resume point
    gen = torch.Generator().manual_seed(seed * 1000 + step)
    weights = face_boost(data, pools.template)
    n_surf, n_shader, pairs, per_pair = batch
    start = time.time() - elapsed
    ema: dict[str, float] = {}
    while step < steps:
        progress = step / steps
        if minutes is not None:  # a time budget: anneal by elapsed time
            progress = max(progress, (time.time() - start) / (minutes * 60))
        decay = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        for g in opt.param_groups:
            g["lr"] = g["base"] * (0.01 + 0.99 * decay)
        wb = warp_batch(data, rng, pairs, per_pair, weights)
        ls = losses(net, pools, wb, gen, n_surf, n_shader)
        loss = sum(WEIGHTS[k] * v for k, v in ls.items())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        for k, v in ls.items():
            ema[k] = 0.95 * ema.get(k, v.item()) + 0.05 * v.item()
        if step % 25 == 0 or step == steps:
            log(f"step {step}/{steps} {time.time() - start:.0f}s "
                + " ".join(f"{k} {v:.4f}" for k, v in ema.items()))
        done = minutes is not None and time.time() - start > minutes * 60
        if step % ckpt_every == 0 or step == steps or done:
            tmp = out / "ckpt.tmp"
            torch.save({"state": net.state_dict(), "opt": opt.state_dict(), "step": step,
                        "elapsed": time.time() - start, "config": cfg.to_dict()}, tmp)
            tmp.replace(ckpt)
        if done:
            break
    net.train_seconds = time.time() - start  # type: ignore[attr-defined]
    net.train_steps = step  # type: ignore[attr-defined]
    return net
