#!/usr/bin/env python3
"""Renderer benchmark at 512x512, headless: mesh fps with per-frame vertex upload, slider
latency (weights -> animator -> normals -> upload -> render -> read), SDF-grid fps, neural
SDF frame time, and mesh-vs-SDF silhouette IoU. Prints figures, then one JSON line.

Renders the shipped default avatar (resources/models/face_model.pt).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.expressions import PRESETS, weights_from_dict  # noqa: E402
from core.render import OrbitCamera, Renderer, headless_context, silhouette_iou  # noqa: E402
from core.render.scene import VIEWPORT_MAX_TRIANGLES, load_scene  # noqa: E402


def timed_frames(fn, seconds: float, min_frames: int = 20) -> np.ndarray:
    """Call fn(i) repeatedly for about `seconds`; per-call wall times in ms."""
    times, start, i = [], time.perf_counter(), 0
    while i < min_frames or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t) * 1000)
        i += 1
    return np.array(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    ap.add_argument("--resolution", type=int, default=128, help="SDF grid resolution")
    ap.add_argument("--max-triangles", type=int, default=VIEWPORT_MAX_TRIANGLES,
                    help="mesh triangle budget (the viewport's by default)")
    ap.add_argument("--hair", default="long", help="hair style drawn with the head (bald: none)")
    args = ap.parse_args()
    size = args.size

    t = time.perf_counter()
    from core.head.hair import pose_hair
    from core.head.settings import HairStyle

    scene = load_scene(resolution=args.resolution, max_triangles=args.max_triangles,
                       hair=HairStyle(style=args.hair))
    print(f"scene: {scene.source}, {len(scene.vertices)} vertices, {len(scene.faces)} triangles "
          f"(loaded in {time.perf_counter() - t:.2f} s)")
    ctx = headless_context()
    print(f"GL: {ctx.info['GL_RENDERER']}")
    r = Renderer(ctx)
    r.set_mesh(scene.vertices, scene.faces, scene.uvs)
    if scene.texture is not None:
        r.set_texture(np.asarray(scene.texture, np.uint8))
    t = time.perf_counter()
    hair = scene.hair()
    hair_s = time.perf_counter() - t
    hair = None if hair is None or hair.empty else hair
    r.set_hair(hair)
    print(f"hair: {args.hair}, {0 if hair is None else len(hair.faces)} triangles (built in {hair_s:.2f} s)")

    t = time.perf_counter()
    head = scene.head()                     # eyes, teeth, gums, tongue, mouth cavity
    head_s = time.perf_counter() - t
    r.set_parts("head", head.parts)
    print(f"eyes + mouth: {head.triangles} triangles (built in {head_s:.3f} s)")

    def pose(w: np.ndarray) -> None:
        verts, carves = head.pose(w)
        r.update_parts("head", verts)
        r.set_carves(carves)
        if hair is not None:
            r.update_hair(*pose_hair(hair, w))
    grid, lo, hi = scene.sdf()
    r.set_sdf_grid(grid, lo, hi)
    cam = OrbitCamera(yaw=25, pitch=8).frame(*r.bounds("mesh"), margin=0.9)
    fbo = r._fbo(size, size, 0)

    # Weights sweeping the presets and a jaw cycle: every frame has new vertices.
    presets = [weights_from_dict(p) for p in PRESETS.values()]
    def weights(i: int) -> np.ndarray:
        w = presets[i % len(presets)].copy()
        w[26] = 0.5 + 0.5 * np.sin(i * 0.3)  # jawOpen
        return w

    poses = [scene.animator(weights(i)) for i in range(16)]
    t_anim = timed_frames(lambda i: scene.animator(weights(i)), 1.0)
    from core.render.geometry import vertex_normals
    inc = r._mesh["incidence"]
    t_norm = timed_frames(lambda i: vertex_normals(poses[i % 16], scene.faces, inc), 1.0)

    def mesh_frame(i: int) -> None:
        r.update_vertices(poses[i % len(poses)])
        pose(weights(i % len(poses)))
        r.render(fbo, size, size, cam, mode="mesh", view="textured")
        ctx.finish()

    mesh_frame(0)
    t_mesh = timed_frames(mesh_frame, args.seconds)

    def slider_frame(i: int) -> np.ndarray:
        r.update_vertices(scene.animator(weights(i)))
        pose(weights(i))
        return r.render_image(size, size, cam, mode="mesh", view="shaded")

    t_slider = timed_frames(slider_frame, args.seconds)

    def sdf_frame(i: int) -> None:
        r.render(fbo, size, size, cam, mode="sdf", view="shaded")
        ctx.finish()

    sdf_frame(0)
    t_sdf = timed_frames(sdf_frame, args.seconds)

    # Silhouette agreement of the two renderers of the same avatar (posed as the SDF grid).
    ious = []
    r.update_vertices(scene.vertices)
    pose(scene.expression)
    for yaw, pitch in ((0, 0), (25, 8), (70, 15), (-40, -10)):
        c = OrbitCamera(yaw=yaw, pitch=pitch).frame(*r.bounds("mesh"), margin=0.9)
        a = r.render_image(size, size, c, mode="mesh")
        b = r.render_image(size, size, c, mode="sdf")
        ious.append(silhouette_iou(a, b))

    neural_ms = None
    stages = scene.stages()
    if stages:
        r.set_neural(stages)
        n = 128
        c = OrbitCamera(yaw=25, pitch=8).frame(*r.bounds("mesh"), margin=0.9)
        r.render_image(n, n, c, mode="neural")
        neural_ms = float(np.median(timed_frames(lambda i: r.render_image(n, n, c, mode="neural"), 2.0, 3)))
    r.release()

    fps = lambda ms: 1000.0 / float(np.median(ms))
    result = {
        "source": scene.source, "size": size, "vertices": len(scene.vertices),
        "triangles": len(scene.faces), "grid": list(grid.shape), "hair": args.hair,
        "hair_triangles": 0 if hair is None else len(hair.faces), "hair_build_s": round(hair_s, 2),
        "head_parts_triangles": head.triangles, "head_parts_build_s": round(head_s, 3),
        "animator_ms": round(float(np.median(t_anim)), 2),
        "normals_ms": round(float(np.median(t_norm)), 2),
        "mesh_fps": round(fps(t_mesh), 1),
        "slider_ms_median": round(float(np.median(t_slider)), 1),
        "slider_ms_p95": round(float(np.percentile(t_slider, 95)), 1),
        "sdf_fps": round(fps(t_sdf), 1),
        "iou_mesh_sdf_min": round(min(ious), 4),
        "neural_ms_128": None if neural_ms is None else round(neural_ms, 1),
    }
    print(f"animator.vertices        {result['animator_ms']:8.2f} ms")
    print(f"vertex normals           {result['normals_ms']:8.2f} ms")
    print(f"mesh path (upload/frame) {result['mesh_fps']:8.1f} fps   (target >= 60)")
    print(f"slider -> new frame      {result['slider_ms_median']:8.1f} ms median, "
          f"{result['slider_ms_p95']:.1f} ms p95   (target <= 50)")
    print(f"SDF grid path            {result['sdf_fps']:8.1f} fps   (target >= 30)")
    print(f"mesh vs SDF IoU          {result['iou_mesh_sdf_min']:8.4f} min over 4 views "
          f"{[round(x, 4) for x in ious]}   (target >= 0.98)")
    if neural_ms is not None:
        print(f"neural SDF, 128x128      {neural_ms:8.1f} ms per frame")
    else:
        print("neural SDF               n/a (no networks without the face model)")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
