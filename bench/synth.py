#!/usr/bin/env python3
"""Synthetic expression faces benchmark (`synth-fer`, core.synth): labelled faces per second end
to end (people built, shots rendered, crops aligned, pseudo-label check, images, labels, AUs and
boxes written), and as a baseline measured in the same run, bare frames per second of the same
renderer drawing one synthetic person at the same size (the ceiling a shot cannot beat).
Prints figures, then one JSON line. Quote the load average beside the figures (it is printed).

    nice -n 10 python bench/synth.py [--n 400]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def render_baseline(frames: int = 60) -> float:
    """Frames/s of render_image alone: one synthetic person, a fixed camera, 256x256."""
    from core.appearance import shared_model
    from core.facemodel import FaceModel
    from core.render import OrbitCamera, Renderer, headless_context
    from core.synth.faces import SIZE, random_identity
    from core.synth.render import PersonRenderer

    model, app = FaceModel.load(), shared_model()
    r = Renderer(headless_context())
    try:
        PersonRenderer(model, app, random_identity(model, app, np.random.default_rng(0)), r)
        cam = OrbitCamera()
        r.render_image(SIZE, SIZE, cam, view="textured")
        t = time.perf_counter()
        for _ in range(frames):
            r.render_image(SIZE, SIZE, cam, view="textured")
        return frames / (time.perf_counter() - t)
    finally:
        r.release()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400, help="faces to generate")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from core.synth.dataset import generate

    load_before = os.getloadavg()[0]
    fps = render_baseline()
    with tempfile.TemporaryDirectory() as tmp:
        real = Path(".cache/appearance/samples")
        rep = generate(args.n, Path(tmp) / "out", seed=args.seed, real_samples=real if real.is_dir() else None)
    load_after = os.getloadavg()[0]
    out = {"faces": rep["faces"], "people": rep["people"], "faces_per_second": rep["faces_per_second"],
           "loop_faces_per_second": rep["loop_faces_per_second"], "setup_seconds": rep["setup_seconds"],
           "render_only_fps": round(fps, 1), "ratio_to_render_only": round(rep["loop_faces_per_second"] / fps, 3),
           "kept": rep["kept"], "load_average": [round(load_before, 2), round(load_after, 2)]}
    print(f"synth-fer: {rep['faces']} faces, {rep['people']} people: {rep['faces_per_second']:.1f} faces/s end to "
          f"end, {rep['loop_faces_per_second']:.1f}/s after {rep['setup_seconds']:.0f} s loading models")
    print(f"baseline: render_image alone {fps:.1f} frames/s (a face costs {fps / rep['loop_faces_per_second']:.2f} "
          f"frames); load average {load_before:.2f} -> {load_after:.2f}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
