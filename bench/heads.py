#!/usr/bin/env python3
"""Complete-head benchmark: does MediaPipe read our renders as a face whose eyes and jaw move
(iris landmarks under eyeLookOut_L / eyeLookIn_R, jawOpen blendshape at jawOpen = 0.8), how fast
the mesh view draws with eyes, teeth and hair at 512x512, slider -> frame latency, and how long
a new identity takes to be ready, appearance change -> frame, and the texture code's held-out-half
prediction (eval-texture, needs ../shared/faces68). Prints figures per section, then one JSON line.

Sections are plain functions returning a dict (run one with --section NAME); add new ones to
SECTIONS.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.expressions import EXPRESSION_NAMES, parse_expression  # noqa: E402
from core.render import OrbitCamera, Renderer, headless_context, lighting_preset  # noqa: E402
from core.render.scene import VIEWPORT_MAX_TRIANGLES, load_scene  # noqa: E402

SIZE = 512


class HeadView:
    """The default avatar (mean identity, its hair, eyes, mouth) in a headless renderer."""

    def __init__(self, size: int = SIZE, max_triangles: int | None = VIEWPORT_MAX_TRIANGLES,
                 samples: int = 0) -> None:
        from core.head.hair import pose_hair

        from core.avatar import default_avatar
        from core.facemodel import FaceModel

        self.size = size
        self.scene = load_scene(default_avatar(FaceModel.load()), max_triangles=max_triangles)
        self.r = Renderer(headless_context(), samples=samples)
        s = self.scene
        self.r.set_mesh(s.vertices, s.faces, s.uvs)
        if s.texture is not None:
            self.r.set_texture(np.asarray(s.texture, np.uint8))
        self.head = s.head()
        self.r.set_parts("head", self.head.parts)
        self.hair = s.hair()
        self._pose_hair = pose_hair
        if self.hair is not None and getattr(self.hair, "empty", False):
            self.hair = None
        if self.hair is not None:
            self.r.set_hair(self.hair)
        self.light = lighting_preset("studio")

    def pose(self, weights: np.ndarray) -> None:
        self.r.update_vertices(self.scene.animator(weights))
        verts, carves = self.head.pose(weights)
        self.r.update_parts("head", verts)
        self.r.set_carves(carves)
        if self.hair is not None:
            self.r.update_hair(*self._pose_hair(self.hair, weights))

    def camera(self, yaw: float = 0.0, pitch: float = 0.0, zoom: float = 1.0) -> OrbitCamera:
        cam = OrbitCamera(yaw=yaw, pitch=pitch).frame(*self.r.bounds("mesh"), margin=0.9)
        cam.zoom(zoom)
        return cam

    def image(self, weights: np.ndarray, cam: OrbitCamera, view: str = "textured") -> np.ndarray:
        self.pose(weights)
        return self.r.render_image(self.size, self.size, cam, view=view, lighting=self.light)[..., :3]


def mediapipe_check(view: HeadView | None = None) -> dict:
    """MediaPipe's face landmarker on frontal renders: iris centres (landmarks 468 and 473)
    with eyeLookOut_L = 1 and eyeLookIn_R = 1 against neutral (both turn the eyes toward the
    subject's left = image right, so x should grow), and its jawOpen blendshape at jawOpen 0.8."""
    from core.tracking import FaceTracker
    from core.tracking.tracker import MEDIAPIPE_BLENDSHAPES

    view = view or HeadView()
    cam = view.camera(0.0, 0.0, zoom=1.3)
    shots = {"neutral": "", "eyeLookOut_L": "eyeLookOut_L=1", "eyeLookIn_R": "eyeLookIn_R=1",
             "jawOpen": "jawOpen=0.8"}
    out: dict = {}
    with FaceTracker(num_faces=1) as tracker:
        faces = {}
        for name, expr in shots.items():
            w = parse_expression(expr) if expr else np.zeros(len(EXPRESSION_NAMES), np.float32)
            rgb = view.image(w, cam)
            found = tracker.detect(np.ascontiguousarray(rgb[..., ::-1]))
            faces[name] = found[0] if found else None
        out["detected"] = {k: f is not None for k, f in faces.items()}
        if all(out["detected"].values()):
            lm0 = faces["neutral"].landmarks
            # the subject's left eye is on the image's right in a frontal render
            left, right = (468, 473) if lm0[468, 0] > lm0[473, 0] else (473, 468)
            dl = faces["eyeLookOut_L"].landmarks[left, :2] - lm0[left, :2]
            dr = faces["eyeLookIn_R"].landmarks[right, :2] - lm0[right, :2]
            jaw = faces["jawOpen"].blendshapes[MEDIAPIPE_BLENDSHAPES.index("jawOpen")]
            jaw0 = faces["neutral"].blendshapes[MEDIAPIPE_BLENDSHAPES.index("jawOpen")]
            eye_w = float(np.linalg.norm(lm0[33, :2] - lm0[133, :2]))   # one eye's corner to corner
            out.update({
                "iris_left_dx_px": round(float(dl[0]), 2), "iris_left_dy_px": round(float(dl[1]), 2),
                "iris_right_dx_px": round(float(dr[0]), 2), "iris_right_dy_px": round(float(dr[1]), 2),
                "eye_width_px": round(eye_w, 1),
                "iris_moves_right_way": bool(dl[0] > 0 and dr[0] > 0),
                "jawOpen_blendshape_at_0.8": round(float(jaw), 3),
                "jawOpen_blendshape_neutral": round(float(jaw0), 3),
                "eyeLookOut_L_blendshape": round(float(faces["eyeLookOut_L"].blendshapes[
                    MEDIAPIPE_BLENDSHAPES.index("eyeLookOutLeft")]), 3),
                "eyeLookIn_R_blendshape": round(float(faces["eyeLookIn_R"].blendshapes[
                    MEDIAPIPE_BLENDSHAPES.index("eyeLookInRight")]), 3),
            })
    print(f"[mediapipe] {out}")
    return out


def fps_check(view: HeadView | None = None, seconds: float = 3.0) -> dict:
    """Mesh view with eyes, teeth and hair at 512x512: frames with new weights every frame
    (skin + parts + hair upload), and slider -> frame read back latency."""
    view = view or HeadView()
    cam = view.camera(25.0, 8.0)
    ctx, r = view.r.ctx, view.r
    fbo = r._fbo(view.size, view.size, 0)
    rng = np.random.default_rng(0)
    mixes = [np.clip(rng.normal(0.0, 0.3, len(EXPRESSION_NAMES)), 0, 1).astype(np.float32) for _ in range(16)]
    view.pose(mixes[0])
    for _ in range(3):
        r.render(fbo, view.size, view.size, cam, view="textured", lighting=view.light)
    ctx.finish()

    def frames(fn) -> np.ndarray:
        times, start, i = [], time.perf_counter(), 0
        while i < 20 or time.perf_counter() - start < seconds:
            t = time.perf_counter()
            fn(i)
            times.append((time.perf_counter() - t) * 1000)
            i += 1
        return np.array(times)

    def frame(i):
        view.pose(mixes[i % len(mixes)])
        r.render(fbo, view.size, view.size, cam, view="textured", lighting=view.light)
        ctx.finish()

    def slider(i):
        view.pose(mixes[i % len(mixes)])
        r.render_image(view.size, view.size, cam, view="textured", lighting=view.light)

    def pose_only(i):
        view.head.pose(mixes[i % len(mixes)])

    ft, lat, pt = frames(frame), frames(slider), frames(pose_only)
    # What the eyes and mouth add to a frame, interleaved with frames without them so a busy
    # machine slows both alike.
    draw = r._draw_parts
    with_p, without_p = [], []
    for i in range(2 * max(10, int(seconds * 4))):
        r._draw_parts = draw if i % 2 == 0 else (lambda *a: None)
        t = time.perf_counter()
        frame(i)
        (with_p if i % 2 == 0 else without_p).append((time.perf_counter() - t) * 1000)
    r._draw_parts = draw
    tris = len(view.scene.faces), view.head.triangles, (0 if view.hair is None else len(view.hair.faces))
    out = {"mesh_parts_fps": round(1000.0 / float(np.median(ft)), 1),
           "slider_to_frame_ms_median": round(float(np.median(lat)), 2),
           "slider_to_frame_ms_p95": round(float(np.percentile(lat, 95)), 2),
           "head_parts_pose_ms": round(float(np.median(pt)), 3),
           "head_parts_frame_ms": round(float(np.median(with_p) - np.median(without_p)), 2),
           "triangles_skin_parts_hair": list(tris)}
    print(f"[fps] {out}")
    return out


def identity_check(count: int = 3) -> dict:
    """A new identity: mesh extraction at the viewport budget + animator + eyes and mouth + hair
    (the style's template is built once per process, as in the app)."""
    from core.facemodel import FaceModel
    from core.head.build import build_head_parts
    from core.head.hair import build_hair
    from core.head.settings import HairStyle

    model = FaceModel.load()
    rng = np.random.default_rng(1)
    style = HairStyle(style="long")
    mesh0 = model.extract_mesh(model.mean_identity(), None, resolution=128, max_triangles=VIEWPORT_MAX_TRIANGLES)
    build_hair(model, style, mesh0, model.animator(mesh0, model.mean_identity()))
    mesh_s, parts_s, hair_s = [], [], []
    for _ in range(count):
        z = model.sample_identity(rng)
        t = time.perf_counter()
        mesh = model.extract_mesh(z, None, resolution=128, max_triangles=VIEWPORT_MAX_TRIANGLES)
        anim = model.animator(mesh, z)
        mesh_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        build_head_parts(z)
        parts_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        build_hair(model, style, mesh, anim)
        hair_s.append(time.perf_counter() - t)
    total = np.array(mesh_s) + np.array(parts_s) + np.array(hair_s)
    out = {"identity_mesh_s": round(float(np.median(mesh_s)), 3),
           "identity_head_parts_s": round(float(np.median(parts_s)), 3),
           "identity_hair_s": round(float(np.median(hair_s)), 3),
           "identity_ready_s": round(float(np.median(total)), 3), "target_s": 3.0}
    print(f"[identity] {out}")
    return out


def appearance_check(count: int = 20) -> dict:
    """Appearance slider -> frame: decode a new texture code at 1024^2, upload it, render the
    textured head at 512^2; beside it, the same frame without a texture change (baseline)."""
    from core.appearance import shared_model

    model = shared_model()
    view = HeadView()
    cam = view.camera(yaw=25.0)
    neutral = np.zeros(len(EXPRESSION_NAMES), np.float32)
    rng = np.random.default_rng(3)
    codes = [model.sample(rng) for _ in range(count)]
    base, full, decode = [], [], []
    view.image(neutral, cam)
    for code in codes:
        t = time.perf_counter()
        view.image(neutral, cam)
        base.append(time.perf_counter() - t)
        t = time.perf_counter()
        tex = model.decode(code)
        decode.append(time.perf_counter() - t)
        view.r.set_texture(tex, mipmaps=False)   # as the viewport does while a slider moves
        view.image(neutral, cam)
        full.append(time.perf_counter() - t)
        view.r.rebuild_mipmaps()                  # the viewport's timer, once the drag settles
    out = {"appearance_decode_ms": round(float(np.median(decode)) * 1e3, 1),
           "appearance_change_to_frame_ms": round(float(np.median(full)) * 1e3, 1),
           "appearance_change_to_frame_p95_ms": round(float(np.percentile(full, 95)) * 1e3, 1),
           "frame_without_change_ms": round(float(np.median(base)) * 1e3, 1),
           "components": model.num_components, "training_photos": model.meta.get("samples")}
    print(f"[appearance] {out}")
    return out


def texture_check() -> dict:
    """`main.py eval-texture` on ../shared/faces68 (cross-validated when the shipped model was
    trained on those photos): held-out-half PSNR / CIEDE2000 of the texture code, the mirror fill
    and the mean texture."""
    import contextlib
    import io
    from types import SimpleNamespace

    from core.commands.eval_texture import CACHE, run
    buf = io.StringIO()
    args = SimpleNamespace(faces=None, model=None, cache=str(CACHE), folds=5, limit=None, per_photo=False)
    with contextlib.redirect_stdout(buf):
        run(args)
    text = buf.getvalue()
    print(text, end="")
    out = json.loads(text.strip().splitlines()[-1])
    print(f"[texture] {out}")
    return out


SECTIONS = {"mediapipe": mediapipe_check, "fps": fps_check, "identity": identity_check,
            "appearance": appearance_check, "texture": texture_check}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--section", action="append", choices=sorted(SECTIONS),
                    help="run only this section (repeatable; default: all)")
    args = ap.parse_args()
    result: dict = {}
    for name in args.section or list(SECTIONS):
        t = time.perf_counter()
        result[name] = SECTIONS[name]()
        result[name]["seconds"] = round(time.perf_counter() - t, 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
