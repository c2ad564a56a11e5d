"""Measurements behind tests/test_paint_transfer.py, run in a fresh interpreter (see there).

Paints on the shared UV layout through the 3D projection brush, renders the painted texture on
other identities and expressions, and finds the marks in the pixels. Prints one JSON object:

- `transfer`: {case: [pixel distance of each mark from its projected landmark]} for ten sampled
  identities and the seven expression presets (inf: mark not found within 20 px);
- `symmetry`: distances of the mirrored marks from the mirrored landmarks;
- `seam`: the number of UV islands the cross-seam stroke painted, and the lowest "green" value
  along its centre line in two renders (0 or less: a gap or a line).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.appearance import base_texture  # noqa: E402
from core.avatar import Avatar  # noqa: E402
from core.expressions import PRESETS, parse_expression  # noqa: E402
from core.facemodel import FaceModel  # noqa: E402
from core.head.settings import HairStyle  # noqa: E402
from core.paint import BrushSettings, LayerStack, begin_stroke  # noqa: E402
from core.paint.avatar import default_coverage  # noqa: E402
from core.paint.layout import uv_layout  # noqa: E402
from core.paint.projection import PickRenderer, blocks, build_texel_map, footprint  # noqa: E402
from core.render.camera import OrbitCamera  # noqa: E402
from core.render.renderer import Renderer, headless_context  # noqa: E402
from core.render.scene import VIEWPORT_MAX_TRIANGLES, load_scene, show_scene  # noqa: E402

W = 512                  # the render size
S = 1024                 # texture size
RES = 128                # the viewport's mesh
MARKED = [30, 8, 19, 24, 48, 54, 36, 45, 33, 57, 21, 22]   # nose, chin, brows, mouth, eyes
MIRROR = {19: 24, 48: 54, 36: 45, 31: 35}                   # 68-point mirror pairs (left -> right)
GREEN = (0, 255, 0)


def greenness(img: np.ndarray) -> np.ndarray:
    """How much greener than red and blue each pixel is (shading keeps the hue)."""
    rgb = img[..., :3].astype(np.int32)
    return rgb[..., 1] - np.maximum(rgb[..., 0], rgb[..., 2])


def mark_errors(img: np.ndarray, expected: np.ndarray) -> list[float]:
    """Distance from each expected pixel (n, 2) to the nearest green blob's centroid."""
    g = greenness(img)
    rgb = img[..., :3].astype(np.int32)
    mask = ((g > 25) & (rgb[..., 1] > 1.4 * np.maximum(rgb[..., 0], rgb[..., 2]))).astype(np.uint8)
    n, _, _, cent = cv2.connectedComponentsWithStats(mask)
    out = []
    for e in expected:
        d = np.linalg.norm(cent[1:] - e[None, :2], axis=1) if n > 1 else np.array([np.inf])
        out.append(float(d.min()) if d.min() < 20 else float("inf"))
    return out


def paint_dabs(stack: LayerStack, pick, tm, vertices, eye, points, radius_px: float, **stroke_kw) -> None:
    """One stroke of dabs at screen `points`, as the 3D viewport paints them."""
    s = begin_stroke(stack, 0, "brush", BrushSettings(size=8, hardness=1.0, colour=GREEN), **stroke_kw)
    prev = None
    for x, y, joined in points:
        fp = footprint(pick, tm, vertices, eye, float(x), float(y), radius_px, 1.0,
                       start=prev if joined else None)
        prev = (float(x), float(y))
        if fp is None:
            raise SystemExit(f"nothing to paint under pixel ({x:.0f}, {y:.0f})")
        for y0, x0, block in blocks(*fp, stack.size):
            s.apply(y0, x0, block)
    s.end()


def main() -> None:
    model = FaceModel.load()
    ident = model.mean_identity()
    src = Avatar(ident)
    mesh = model.extract_mesh(ident, None, RES, max_triangles=VIEWPORT_MAX_TRIANGLES)
    scene = load_scene(src, resolution=RES, max_triangles=VIEWPORT_MAX_TRIANGLES)
    ctx = headless_context()
    picker = PickRenderer(ctx)
    picker.set_mesh(scene.vertices, scene.faces, scene.uvs)
    tm = build_texel_map(scene.vertices, scene.faces, scene.uvs, S)
    base = base_texture(src, S)
    renderer = Renderer(headless_context())
    front = OrbitCamera(yaw=0, pitch=0).frame(scene.vertices.min(0), scene.vertices.max(0), margin=0.9)
    pick = picker.render(scene.vertices, front, W, W)
    result: dict = {}

    # -- a mark at each landmark, painted once, seen on other identities and expressions
    stack = LayerStack(S, base=base, coverage=default_coverage())
    stack.add_layer()
    px = front.project(scene.landmarks(), W, W)
    paint_dabs(stack, pick, tm, scene.vertices, front.eye, [(*px[k, :2], False) for k in MARKED], 2.5)
    texture = stack.composite()
    rng = np.random.default_rng(5)
    cases = [(f"identity {i}", model.sample_identity(rng), np.zeros(53, np.float32)) for i in range(10)]
    cases += [(name, ident, parse_expression(name)) for name in PRESETS]
    result["transfer"] = {}
    for name, identity, weights in cases:
        sc = load_scene(Avatar(identity, weights), resolution=RES, max_triangles=VIEWPORT_MAX_TRIANGLES)
        sc.texture = texture
        show_scene(renderer, sc)
        img = renderer.render_image(W, W, front, view="textured")
        result["transfer"][name] = mark_errors(img, front.project(sc.landmarks(), W, W)[MARKED])

    # -- symmetry: a mark at each left landmark also lands on its right partner
    mirror = uv_layout(mesh, S).mirror
    stack = LayerStack(S, base=base, coverage=default_coverage())
    stack.add_layer()
    paint_dabs(stack, pick, tm, scene.vertices, front.eye, [(*px[k, :2], False) for k in MIRROR], 2.5,
               symmetry=mirror)
    sc = load_scene(Avatar(model.sample_identity(np.random.default_rng(11))), resolution=RES,
                    max_triangles=VIEWPORT_MAX_TRIANGLES)
    sc.texture = stack.composite()
    show_scene(renderer, sc)
    img = renderer.render_image(W, W, front, view="textured")
    result["symmetry"] = mark_errors(img, front.project(sc.landmarks(), W, W)[list(MIRROR.values())])

    # -- a stroke from the cheek over the seam in front of the ear (two UV islands), bald head
    bald = load_scene(src, resolution=RES, max_triangles=VIEWPORT_MAX_TRIANGLES, hair=HairStyle(style="bald"))
    side = OrbitCamera(yaw=70, pitch=0).frame(bald.vertices.min(0), bald.vertices.max(0), margin=0.9)
    spick = picker.render(bald.vertices, side, W, W)
    a, b = np.array([7.6, 0.3, 6.5]), np.array([7.6, 0.3, -1.0])     # cm: cheek -> ear
    pa, pb = side.project(np.array([a, b]), W, W)[:, :2]
    stack = LayerStack(S, base=base, coverage=default_coverage())
    stack.add_layer()
    paint_dabs(stack, spick, tm, bald.vertices, side.eye,
               [(*(pa + t * (pb - pa)), i > 0) for i, t in enumerate(np.linspace(0, 1, 40))], 6.0)
    painted = (stack.layers[0].to_array()[..., 3] > 0).astype(np.uint8)
    bald.texture = stack.composite()
    show_scene(renderer, bald)
    far = OrbitCamera(yaw=55, pitch=0, distance=side.distance * 2.5, target=side.target)
    lows = {}
    for name, cam in (("painting view", side), ("far, turned", far)):
        img = renderer.render_image(W, W, cam, view="textured")
        qa, qb = cam.project(np.array([a, b]), W, W)[:, :2]
        g = greenness(img)
        line = [qa + t * (qb - qa) for t in np.linspace(0.1, 0.9, 200)]
        lows[name] = int(min(g[int(round(y)), int(round(x))] for x, y in line))
    result["seam"] = {"islands": int(cv2.connectedComponents(painted)[0] - 1), "lowest_green": lows}
    renderer.release()
    picker.release()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
