#!/usr/bin/env python3
"""Save a quick software render (matplotlib) of face-model meshes, textured with the default skin.

    python scripts/render_face_preview.py OUT.png [--expressions neutral,happy,surprised] [--seed 0]
A visual check that eyes, mouth and the UV layout read right; no OpenGL needed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection
    from PIL import Image

    from core.expressions import parse_expression
    from core.facemodel import FaceModel
    from core.paths import RESOURCES

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--expressions", default="neutral,happy,surprised,jawOpen=1,eyeBlink_L=1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--identities", type=int, default=2)
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--model", help="face model file (default: the shipped one)")
    args = p.parse_args()
    model = FaceModel.load(args.model)
    tex = np.asarray(Image.open(RESOURCES / "textures" / "default_skin.png").convert("RGB"), np.float32) / 255
    exprs = args.expressions.split(",")
    rng = np.random.default_rng(args.seed)
    ids = [model.mean_identity()] + [model.sample_identity(rng) for _ in range(args.identities - 1)]
    fig, axes = plt.subplots(len(ids), len(exprs), figsize=(3 * len(exprs), 3.6 * len(ids)), squeeze=False)
    light = np.array([0.3, 0.4, 1.0]) / np.linalg.norm([0.3, 0.4, 1.0])
    for r, z in enumerate(ids):
        mesh = model.extract_mesh(z, None, args.resolution)
        anim = model.animator(mesh, z)
        h, w = tex.shape[:2]
        px = np.clip((mesh.uvs[:, 0] * (w - 1)).astype(int), 0, w - 1)
        py = np.clip(((1 - mesh.uvs[:, 1]) * (h - 1)).astype(int), 0, h - 1)
        vcol = tex[py, px]
        for c, e in enumerate(exprs):
            v = anim.vertices(parse_expression(e))
            f = mesh.faces
            fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
            fn /= np.linalg.norm(fn, axis=1, keepdims=True) + 1e-12
            front = fn[:, 2] > 0
            depth = v[f].mean(1)[:, 2]
            order = np.argsort(depth[front])
            ff = f[front][order]
            shade = (0.25 + 0.75 * np.clip(fn[front][order] @ light, 0, 1))[:, None]
            col = np.clip(vcol[ff].mean(1) * shade, 0, 1)
            ax = axes[r, c]
            ax.add_collection(PolyCollection(v[ff][:, :, :2], facecolors=col, edgecolors="none", linewidths=0, antialiaseds=False))
            ax.set_xlim(-11, 11); ax.set_ylim(-14, 14); ax.set_aspect("equal"); ax.axis("off")
            ax.set_title(e, fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
