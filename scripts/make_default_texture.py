#!/usr/bin/env python3
"""Paint resources/textures/default_skin.png: the avatar's default UV texture, procedurally.

Skin tone with soft noise, lips / brows / eyes / mouth interior tinted at the UV positions of the
ICT landmark regions (lips 48-67, brows 17-26, eyes 36-47). Only those 2D positions are read from
FaceKit; the image is derived, nothing of FaceKit is stored. UV convention (docs/FACEMODEL.md):
u_model = u_ict / 2, v up, image row = (1 - v) * size.

    python scripts/make_default_texture.py [--facekit PATH] [--size 1024]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.facekit import load_facekit  # noqa: E402
from core.paths import RESOURCES  # noqa: E402

SKIN = (224, 172, 140)
LIP = (178, 86, 86)
BROW = (92, 64, 46)
SCLERA = (236, 232, 226)
IRIS = (86, 62, 44)
MOUTH = (70, 22, 26)


def landmark_uvs(fk) -> np.ndarray:
    """(68, 2) model-convention UV of each landmark vertex."""
    q, qu = fk.quads.ravel(), fk.quad_uvs.ravel()
    out = []
    for v in fk.landmarks68:
        j = np.flatnonzero(q == v)[0]
        u, w = fk.uvs[qu[j]]
        out.append((u / 2.0, w))
    return np.array(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--facekit")
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--out", default=str(RESOURCES / "textures" / "default_skin.png"))
    args = p.parse_args()
    n = args.size
    lm = landmark_uvs(load_facekit(args.facekit))
    px = np.stack([lm[:, 0] * n, (1 - lm[:, 1]) * n], 1)

    def poly(idx) -> list[tuple[float, float]]:
        return [tuple(px[i]) for i in idx]

    rng = np.random.default_rng(0)
    noise = rng.standard_normal((n // 8, n // 8))
    noise = np.array(Image.fromarray(((noise * 20) + 128).clip(0, 255).astype(np.uint8))
                     .resize((n, n), Image.BICUBIC).filter(ImageFilter.GaussianBlur(n / 256)), np.float32)
    base = np.array(SKIN, np.float32)[None, None] + (noise[..., None] - 128) * 0.25
    img = Image.fromarray(base.clip(0, 255).astype(np.uint8))

    def tint(shapes, color, blur: float, alpha: int = 255) -> None:
        mask = Image.new("L", (n, n), 0)
        d = ImageDraw.Draw(mask)
        for kind, pts, width in shapes:
            if kind == "poly":
                d.polygon(pts, fill=alpha)
            else:
                d.line(pts, fill=alpha, width=width, joint="curve")
        mask = mask.filter(ImageFilter.GaussianBlur(blur))
        img.paste(Image.new("RGB", (n, n), color), (0, 0), mask)

    s = n / 1024
    tint([("poly", poly(range(48, 60)), 0)], LIP, 3 * s, 230)                   # outer lip contour
    tint([("poly", poly(range(60, 68)), 0)], MOUTH, 2 * s)                      # mouth interior
    tint([("line", poly(range(17, 22)), int(9 * s)), ("line", poly(range(22, 27)), int(9 * s))],
         BROW, 3 * s, 220)
    for eye in (range(36, 42), range(42, 48)):
        e = px[list(eye)]
        tint([("poly", [tuple(x) for x in e], 0)], SCLERA, 1.5 * s)
        c = e.mean(0)
        r = 0.38 * np.linalg.norm(e[3] - e[0])
        tint([("poly", [tuple(c + r * np.array([np.cos(a), np.sin(a)]))
                        for a in np.linspace(0, 2 * np.pi, 32)], 0)], IRIS, 1.0 * s)
        tint([("poly", [tuple(c + 0.45 * r * np.array([np.cos(a), np.sin(a)]))
                        for a in np.linspace(0, 2 * np.pi, 24)], 0)], (15, 12, 12), 0.8 * s)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    img.save(args.out, optimize=True)
    print(f"wrote {args.out} ({n}x{n})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
