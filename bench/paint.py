#!/usr/bin/env python3
"""Texture painting benchmark, headless (core/paint): dab cost at 2048^2 with 4 layers (the
dirty-tile composite included), undo/redo of a 500-dab stroke, memory per undo step, save and
open of a 4-layer project, PSD export and import. Baselines measured in the same run: a full
recomposite per dab, and whole-layer-copy undo. Prints figures, then one JSON line.

The GUI's pointer -> pixels-on-screen latency (viewport and UV canvas) adds its texture upload
and redraw to the dab figures here; it is measured where the GUI painting lives.
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

from core.avatar import Avatar, default_texture  # noqa: E402
from core.paint import BrushSettings, LayerStack, MirrorMap, begin_stroke  # noqa: E402
from core.paint.avatar import attach_paint, default_coverage  # noqa: E402


def ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def islands(size: int) -> np.ndarray:
    """The shared layout's UV islands when the appearance model is readable, else two discs."""
    cov = default_coverage()
    if cov is not None:
        import cv2
        return cv2.resize(cov.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST).astype(bool)
    yy, xx = np.mgrid[0:size, 0:size]
    return ((xx - 0.3 * size) ** 2 + (yy - 0.5 * size) ** 2 < (0.28 * size) ** 2) | \
           ((xx - 0.75 * size) ** 2 + (yy - 0.5 * size) ** 2 < (0.2 * size) ** 2)


CPU: list[float] = []   # CPU ms of the last stroke's dabs (wall time is inflated on a busy machine)


def stroke(stack: LayerStack, layer: int, brush: BrushSettings, pts: np.ndarray, **kw):
    """Paint a path dab by dab (one dab per point); per-dab wall ms including the composite update."""
    s = begin_stroke(stack, layer, "brush", brush, **kw)
    times = []
    CPU.clear()
    for x, y in pts:
        t, c = time.perf_counter(), time.process_time()
        s.dab(float(x), float(y))
        stack.refresh()          # the dab's tiles and the seam padding beside them
        times.append(ms(t))
        CPU.append((time.process_time() - c) * 1000)
    return s.end(), np.array(times)


def path(n: int, size: int, seed: int, span: float = 0.5) -> np.ndarray:
    """A wavy line of n dab positions across `span` of the texture."""
    t = np.linspace(0, 1, n)
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 6)
    x = size * (0.25 + span * t)
    y = size * (0.5 + 0.15 * np.sin(6 * t + phase))
    return np.stack([x, y], 1)


def build(size: int) -> LayerStack:
    rng = np.random.default_rng(0)
    st = LayerStack(size, base=default_texture(), coverage=islands(size), padding=4)
    # layer 0: an opaque photo-like layer (smooth colour + grain) at 50% multiply
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    photo = np.dstack([180 + 60 * xx, 140 + 50 * yy, 120 + 40 * xx * yy]) + rng.normal(0, 6, (size, size, 3))
    photo = np.dstack([np.clip(photo, 0, 255), np.full((size, size), 255)]).astype(np.uint8)
    st.add_layer("photo", pixels=photo, blend="multiply", opacity=0.5)
    st.add_layer("freckles", blend="normal")
    st.add_layer("tint", blend="overlay", opacity=0.7)
    st.add_layer("paint")
    for i, layer in ((0, 1), (1, 2), (2, 1)):
        stroke(st, layer, BrushSettings(size=60, colour=(120, 60, 40)), path(200, size, 10 + i))
    st.composite()
    return st


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048, choices=(1024, 2048, 4096))
    args = ap.parse_args()
    size = args.size
    res: dict = {"size": size, "layers": 4}

    t = time.perf_counter()
    st = build(size)
    res["build_s"] = round(ms(t) / 1000, 2)

    # --- dab cost (dab + dirty-tile composite), brush 48 and 200 texels, symmetry
    for dia in (48, 200):
        _, times = stroke(st, 3, BrushSettings(size=dia, hardness=0.5, colour=(200, 30, 30)),
                          path(300, size, dia))
        res[f"dab{dia}_ms_median"] = round(float(np.median(times)), 2)
        res[f"dab{dia}_ms_p95"] = round(float(np.percentile(times, 95)), 2)
        res[f"dab{dia}_cpu_ms_median"] = round(float(np.median(CPU)), 2)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    mirror = MirrorMap.from_uv(np.dstack([(size - 1 - xx) / (size - 1), 1 - yy / (size - 1)]), size)
    _, times = stroke(st, 3, BrushSettings(size=48, colour=(30, 30, 200)), path(300, size, 7, span=0.2),
                      symmetry=mirror)
    res["dab48_symmetry_ms_median"] = round(float(np.median(times)), 2)
    res["dab48_symmetry_ms_p95"] = round(float(np.percentile(times, 95)), 2)
    # baseline: recomposite the whole texture after each dab (no dirty tiles)
    ts = []
    for _ in range(3):
        t = time.perf_counter()
        st.flatten()
        ts.append(ms(t))
    res["baseline_full_composite_ms"] = round(float(np.median(ts)), 1)

    # --- undo / redo of a 500-dab stroke (+ composite refresh of what changed)
    step, _ = stroke(st, 3, BrushSettings(size=48, colour=(10, 160, 10)), path(500, size, 3, span=0.6))
    und, red, und_vis, red_vis = [], [], [], []
    for _ in range(5):
        t = time.perf_counter()
        st.undo()
        und.append(ms(t))
        st.composite()
        und_vis.append(ms(t))
        t = time.perf_counter()
        st.redo()
        red.append(ms(t))
        st.composite()
        red_vis.append(ms(t))
    res["undo500_ms"] = round(float(np.median(und)), 2)
    res["redo500_ms"] = round(float(np.median(red)), 2)
    res["undo500_with_composite_ms"] = round(float(np.median(und_vis)), 1)
    res["redo500_with_composite_ms"] = round(float(np.median(red_vis)), 1)
    res["stroke500_step_mb"] = round(step.nbytes / 2**20, 2)
    # baseline: whole-layer copies (ArmorPaint-style): restore a saved layer copy
    layer = st.layers[3]
    full = layer.to_array()
    t = time.perf_counter()
    saved = full.copy()
    from core.paint.tiles import TiledImage
    layer_copy = TiledImage.from_array(saved)
    res["baseline_fullcopy_undo_ms"] = round(ms(t), 1)
    res["baseline_fullcopy_step_mb"] = round(2 * full.nbytes / 2**20, 1)   # before + after
    del layer_copy, saved

    # --- memory per undo step: small and large stroke
    small, _ = stroke(st, 3, BrushSettings(size=12), path(20, size, 5, span=0.02))
    large, _ = stroke(st, 3, BrushSettings(size=300), path(200, size, 6, span=0.6))
    res["small_stroke_step_mb"] = round(small.nbytes / 2**20, 3)
    res["large_stroke_step_mb"] = round(large.nbytes / 2**20, 2)
    res["history_steps"] = len(st.history.done)
    res["history_mb"] = round(st.history.nbytes / 2**20, 1)

    # --- project save / open, PSD export / import
    from core.appearance import avatar_texture
    from core.paint.avatar import paint_of
    from core.paint.psd import export_psd, import_psd
    from core.project import load_project, save_project
    av = Avatar(np.zeros(16, np.float32), texture=default_texture(), name="bench")
    attach_paint(av, st)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "bench.likeness"
        t, c = time.perf_counter(), time.process_time()
        save_project(av, p)
        res["save_s"] = round(ms(t) / 1000, 2)
        res["save_cpu_s"] = round(time.process_time() - c, 2)
        res["project_mb"] = round(p.stat().st_size / 2**20, 1)
        t, c = time.perf_counter(), time.process_time()
        back = load_project(p)
        res["open_s"] = round(ms(t) / 1000, 2)
        res["open_cpu_s"] = round(time.process_time() - c, 2)
        t = time.perf_counter()
        avatar_texture(back)
        res["open_first_composite_s"] = round(ms(t) / 1000, 2)
        assert len(paint_of(back).layers) == 4
        t, c = time.perf_counter(), time.process_time()
        export_psd(st, Path(d) / "b.psd")
        res["psd_export_s"] = round(ms(t) / 1000, 2)
        res["psd_export_cpu_s"] = round(time.process_time() - c, 2)
        res["psd_mb"] = round((Path(d) / "b.psd").stat().st_size / 2**20, 1)
        st2 = LayerStack(size, base=default_texture())
        t = time.perf_counter()
        import_psd(st2, Path(d) / "b.psd")
        res["psd_import_s"] = round(ms(t) / 1000, 2)

    res["load_average"] = round(os.getloadavg()[0], 1)
    print(f"texture {size}^2, 4 layers (photo multiply, strokes, overlay, paint), padding on")
    for dia in (48, 200):
        print(f"dab {dia:3d} px + composite     {res[f'dab{dia}_ms_median']:7.2f} ms median, "
              f"{res[f'dab{dia}_ms_p95']:.2f} ms p95, CPU {res[f'dab{dia}_cpu_ms_median']:.2f} ms median   (budget 16 ms)")
    print(f"dab 48 px, symmetric       {res['dab48_symmetry_ms_median']:7.2f} ms median, "
          f"{res['dab48_symmetry_ms_p95']:.2f} ms p95")
    print(f"baseline full recomposite  {res['baseline_full_composite_ms']:7.1f} ms per dab")
    print(f"undo / redo 500-dab stroke {res['undo500_ms']:7.2f} / {res['redo500_ms']:.2f} ms "
          f"(+ composite: {res['undo500_with_composite_ms']:.1f} / {res['redo500_with_composite_ms']:.1f} ms)"
          f"   (target <= 20)")
    print(f"baseline whole-layer undo  {res['baseline_fullcopy_undo_ms']:7.1f} ms, "
          f"{res['baseline_fullcopy_step_mb']:.0f} MB per step")
    print(f"undo step: small / 500-dab / large stroke  {res['small_stroke_step_mb']:.3f} / "
          f"{res['stroke500_step_mb']:.2f} / {res['large_stroke_step_mb']:.2f} MB")
    print(f"  (CPU: save {res['save_cpu_s']:.2f} s, open {res['open_cpu_s']:.2f} s, PSD export "
          f"{res['psd_export_cpu_s']:.2f} s; load average {res['load_average']})")
    print(f"save / open project        {res['save_s']:.2f} / {res['open_s']:.2f} s "
          f"(+ first composite {res['open_first_composite_s']:.2f} s), {res['project_mb']} MB   (target <= 2 s)")
    print(f"PSD export / import        {res['psd_export_s']:.2f} / {res['psd_import_s']:.2f} s, "
          f"{res['psd_mb']} MB   (export target <= 3 s)")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
