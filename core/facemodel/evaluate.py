"""Measured quality of a FaceModel against ICT FaceKit ground truth (eval command and bench).

On `samples` identity/expression pairs drawn with `seed` from a random stream training never
uses, over the face region (triangles of the ICT 'face' part):
  surface distance   GT face points -> extracted mesh, and extracted points whose closest GT
                     point lies in the face region -> GT; mean and 95th percentile of both
  UV error           GT face points -> model UV at that point vs the GT UV (u/2 convention)
  animated error     neutral mesh animated by the Animator to the sample's weights, vertex by
                     vertex against the GT surface point it corresponds to
Baseline: the mean ICT face (identity 0) with the true expression, same measures.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from .data import FaceData, sample_case
from .geometry import MeshDistance, barycentric
from .model import DEFAULT_PATH, FaceModel
from .shader_spec import evaluate_stages_numpy

EVAL_STREAM = 424242  # spawn key of evaluation draws; training streams are [seed, step] pairs


def eval_cases(seed: int, samples: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng([seed, EVAL_STREAM, 1])
    return [sample_case(rng) for _ in range(samples)]


def _surface_samples(data: FaceData, v: np.ndarray, n: int, rng: np.random.Generator):
    w = data.area_weights(v, data.topo.tri_face.astype(np.float64))
    tri, bary = data.sample(rng, n, w)
    p, _ = data.points(v, tri, bary)
    uv = np.einsum("nk,nkd->nd", bary, data.topo.tri_uvs[tri])
    return p, uv


def _mesh_samples(v: np.ndarray, f: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    t = v[f]
    a = 0.5 * np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1)
    tri = rng.choice(len(f), n, p=a / a.sum())
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    bary = np.stack([1 - s, s * (1 - r2), s * r2], 1)
    return np.einsum("nk,nkd->nd", bary, t[tri])


def surface_distances(data: FaceData, gt: np.ndarray, pv: np.ndarray, pf: np.ndarray,
                      rng: np.random.Generator, n: int = 15000) -> np.ndarray:
    """Both-way distances (cm) between a GT closed skin's face region and a predicted mesh."""
    gp, _ = _surface_samples(data, gt, n, rng)
    d1 = MeshDistance(pv, pf).query(gp)[0]
    pp = _mesh_samples(pv, pf, n * 2, rng)  # x2: the mesh is the whole head, the region ~half
    d2, _, tri = MeshDistance(gt, data.topo.tris).query(pp)
    return np.concatenate([d1, d2[data.topo.tri_face[tri]]])


def animated_errors(data: FaceData, gt_neutral: np.ndarray, gt_expr: np.ndarray,
                    neutral_vertices: np.ndarray, animated: np.ndarray) -> np.ndarray:
    """Per-vertex error of animated vertices against the GT point each neutral vertex sits on."""
    d, cp, tri = MeshDistance(gt_neutral, data.topo.tris).query(neutral_vertices)
    keep = data.topo.tri_face[tri]
    f = data.topo.tris[tri[keep]]
    bary = barycentric(cp[keep], gt_neutral[f[:, 0]], gt_neutral[f[:, 1]], gt_neutral[f[:, 2]])
    target = np.einsum("nk,nkd->nd", bary, gt_expr[f]) + (neutral_vertices[keep] - cp[keep])
    return np.linalg.norm(animated[keep] - target, axis=1)


def _summary(dist: list[np.ndarray], uv: list[np.ndarray], anim: list[np.ndarray]) -> dict:
    d = np.concatenate(dist) * 10.0  # cm -> mm
    a = np.concatenate(anim) * 10.0
    return {"surface_mean_mm": float(d.mean()), "surface_p95_mm": float(np.percentile(d, 95)),
            "uv_median": float(np.median(np.concatenate(uv))), "animated_mean_mm": float(a.mean())}


def evaluate(model: FaceModel, data: FaceData, samples: int = 50, seed: int = 0, resolution: int = 128,
             model_path: Path | None = None, log: Callable[[str], None] = print) -> dict:
    rng = np.random.default_rng([seed, EVAL_STREAM, 2])
    cases = eval_cases(seed, samples)
    mean_face = data.skin(None, None)
    res: dict[str, list] = {k: [] for k in ("dist", "uv", "anim", "bdist", "buv", "banim", "shader")}
    mean_md = MeshDistance(mean_face, data.topo.tris)
    for i, (a, e) in enumerate(cases):
        gt = data.skin(a, e)
        gt_neutral = data.skin(a, None)
        z = model.encode_ict(a)
        mesh = model.extract_mesh(z, e, resolution)
        res["dist"].append(surface_distances(data, gt, mesh.vertices, mesh.faces, rng))
        gp, guv = _surface_samples(data, gt, 2000, rng)
        res["uv"].append(np.linalg.norm(model.uv_at(gp, z, e) - guv, axis=1))
        # the GLSL proxy: |shader SDF| on the model's surface
        sv = mesh.vertices[rng.choice(len(mesh.vertices), 2000)]
        res["shader"].append(np.abs(evaluate_stages_numpy(model.shader_networks(z, e), sv)))
        neutral = model.extract_mesh(z, None, resolution)
        anim = model.animator(neutral, z).vertices(e)
        res["anim"].append(animated_errors(data, gt_neutral, gt, neutral.vertices, anim))
        # baseline: the mean ICT face with the true expression
        base = data.skin(None, e)
        res["bdist"].append(surface_distances(data, gt, base, data.topo.tris, rng))
        _, cp, tri = mean_md.query(gp)  # UV of the closest mean-face point
        f = data.topo.tris[tri]
        bary = barycentric(cp, mean_face[f[:, 0]], mean_face[f[:, 1]], mean_face[f[:, 2]])
        buv = np.einsum("nk,nkd->nd", bary, data.topo.tri_uvs[tri])
        res["buv"].append(np.linalg.norm(buv - guv, axis=1))
        face_v = np.unique(data.topo.tris[data.topo.tri_face])
        res["banim"].append(np.linalg.norm(base[face_v] - gt[face_v], axis=1))
        if (i + 1) % 10 == 0:
            log(f"  {i + 1}/{samples} samples")
    out = {"model": _summary(res["dist"], res["uv"], res["anim"]),
           "baseline_mean_face": _summary(res["bdist"], res["buv"], res["banim"])}
    out["model"]["shader_surface_mean_mm"] = float(np.concatenate(res["shader"]).mean() * 10.0)
    out["model"].update(timings(model, resolution))
    path = model_path or DEFAULT_PATH
    out["model"]["weights_mb"] = round(Path(path).stat().st_size / 1e6, 2) if Path(path).exists() else None
    out["samples"], out["seed"], out["resolution"] = samples, seed, resolution
    return out


def timings(model: FaceModel, resolution: int = 128) -> dict:
    """Cold mesh extraction (marching cubes + template fields), warm extraction, one animated frame."""
    rng = np.random.default_rng(1)
    z = model.sample_identity(rng)
    model._template_cache.clear()
    t = time.perf_counter()
    mesh = model.extract_mesh(z, None, resolution)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    model.extract_mesh(model.sample_identity(rng), None, resolution)
    warm = time.perf_counter() - t
    anim = model.animator(mesh, z)
    w = np.zeros(53, np.float32)
    times = []
    for _ in range(50):
        w[:] = rng.random(53) * 0.5
        t = time.perf_counter()
        anim.vertices(w)
        times.append(time.perf_counter() - t)
    return {"extract_s": cold, "extract_warm_s": warm, "frame_ms": float(np.median(times) * 1e3),
            "vertices": int(len(mesh.vertices)), "triangles": int(len(mesh.faces))}


TARGETS = {"surface_mean_mm": 0.5, "surface_p95_mm": 1.5, "uv_median": 0.005, "animated_mean_mm": 0.5,
           "extract_s": 3.0, "frame_ms": 10.0, "weights_mb": 20.0}


def format_report(out: dict) -> list[str]:
    lines = [f"face model quality: {out['samples']} samples, seed {out['seed']}, {out['resolution']}^3"]
    m, b = out["model"], out["baseline_mean_face"]
    for k, target in TARGETS.items():
        mv = m.get(k)
        ok = "ok " if mv is not None and mv <= target else "MISS"
        bv = b.get(k)
        lines.append(f"  {k:18s} model {mv if mv is None else round(mv, 4)!s:>10}  "
                     f"baseline {'-' if bv is None else round(bv, 4)!s:>10}  target <= {target}  {ok}")
    return lines
