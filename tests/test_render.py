"""Renderer tests: headless (EGL), small images, each a few hundred ms at most."""
from __future__ import annotations

import numpy as np
import pytest

from core.render import OrbitCamera, Renderer, Lighting, headless_context, silhouette_iou, render_offscreen
from core.render.geometry import (sphere_sdf_grid, uv_grid_from_mesh, uv_sphere, vertex_normals,
                                  face_incidence)
from core.render.neural import evaluate_stages, generate_glsl, sphere_trace_numpy, stage_bounds


@pytest.fixture(scope="module")
def ctx():
    try:
        return headless_context()
    except Exception as exc:  # no EGL / GL driver on this machine
        pytest.skip(f"no headless OpenGL: {exc}")


@pytest.fixture
def renderer(ctx):
    r = Renderer(headless_context())   # current again, whatever an earlier test left current
    yield r
    r.release()


BOX = (np.full(3, -10.0), np.full(3, 10.0))


def front_camera(yaw=0.0, pitch=0.0) -> OrbitCamera:
    return OrbitCamera(yaw=yaw, pitch=pitch).frame(*BOX)


def pixel_rays(cam: OrbitCamera, w: int, h: int) -> np.ndarray:
    """Unit world ray directions through pixel centres, rows top to bottom, (h*w, 3)."""
    ys, xs = np.mgrid[0:h, 0:w]
    ndc = np.stack([(xs + 0.5) / w * 2 - 1, 1 - (ys + 0.5) / h * 2], -1).reshape(-1, 2)
    far = np.c_[ndc, np.ones((len(ndc), 2))] @ np.linalg.inv(cam.view_proj(w, h)).T
    d = far[:, :3] / far[:, 3:] - cam.eye
    return d / np.linalg.norm(d, axis=1, keepdims=True)


# -- geometry -----------------------------------------------------------------------------------

def test_vertex_normals_of_sphere_point_outward():
    v, f, _ = uv_sphere(5.0, 24, 48)
    for inc in (None, face_incidence(f, len(v))):
        n = vertex_normals(v, f, inc)
        ok = np.linalg.norm(v, axis=1) > 0
        cos = np.sum(n[ok] * v[ok] / np.linalg.norm(v[ok], axis=1, keepdims=True), axis=1)
        assert np.percentile(cos, 5) > 0.99


def test_camera_projection_centre_and_handedness():
    cam = front_camera()
    px = cam.project(np.array([[0, 0, 0], [5, 0, 0], [0, 5, 0]]), 100, 100)
    assert np.allclose(px[0, :2], 50)
    assert px[1, 0] > 50 and px[2, 1] < 50        # +x right, +y up (row index decreases)
    cam.orbit(90, 0)
    assert np.allclose(cam.eye[[1, 2]], 0, atol=1e-6) and cam.eye[0] > 0


# -- mesh vs SDF --------------------------------------------------------------------------------

@pytest.mark.parametrize("yaw,pitch", [(0, 0), (35, 20)])
def test_sphere_mesh_and_sdf_grid_silhouettes_agree(renderer, yaw, pitch):
    renderer.set_mesh(*uv_sphere(10.0, 96, 192))
    renderer.set_sdf_grid(*sphere_sdf_grid(10.0, 48))
    cam = front_camera(yaw, pitch)
    a = renderer.render_image(128, 128, cam, mode="mesh")
    b = renderer.render_image(128, 128, cam, mode="sdf")
    assert 0.2 < (a[..., 3] > 127).mean() < 0.6
    assert silhouette_iou(a, b) >= 0.98
    # and both match the analytic disc of the projected sphere
    rays = pixel_rays(cam, 128, 128)
    oc = cam.eye
    bq = rays @ oc
    disc = (bq ** 2 - (oc @ oc - 100.0)) > 0
    assert silhouette_iou(disc.reshape(128, 128), a) >= 0.97



def test_field_pose_moves_sdf_like_posed_mesh(renderer):
    """A rigid pose of the baked field (a puppeteered head turn) draws where the same pose of
    the mesh's vertices does, and differs from the unposed field."""
    from core.tracking.pose import rotation_matrix
    v, f, uv = uv_sphere(10.0, 96, 192)
    pivot = np.array([0.0, -8.0, -5.0])
    m = np.eye(4)
    m[:3, :3] = rotation_matrix(40.0, 20.0, 10.0)
    m[:3, 3] = pivot - m[:3, :3] @ pivot
    renderer.set_mesh((v @ m[:3, :3].T + m[:3, 3]).astype(np.float32), f, uv)
    renderer.set_sdf_grid(*sphere_sdf_grid(10.0, 48))
    cam = OrbitCamera(yaw=10.0, pitch=5.0).frame(np.full(3, -20.0), np.full(3, 20.0))
    mesh = renderer.render_image(128, 128, cam, mode="mesh")
    rest = renderer.render_image(128, 128, cam, mode="sdf")
    renderer.set_field_pose(m)
    posed = renderer.render_image(128, 128, cam, mode="sdf")
    renderer.set_field_pose(None)
    assert silhouette_iou(mesh, posed) >= 0.97
    assert silhouette_iou(mesh, rest) < 0.8

def test_sdf_mode_writes_depth_like_mesh(renderer):
    renderer.set_mesh(*uv_sphere(10.0, 96, 192))
    renderer.set_sdf_grid(*sphere_sdf_grid(10.0, 48))
    cam = front_camera(20, 10)
    _, za = renderer.render_image(96, 96, cam, mode="mesh", depth=True)
    _, zb = renderer.render_image(96, 96, cam, mode="sdf", depth=True)
    both = (za < 1) & (zb < 1)
    assert both.sum() > 1000
    assert np.median(np.abs(za[both] - zb[both])) < 2e-4


# -- views --------------------------------------------------------------------------------------

def test_textured_view_samples_texture(renderer):
    v, f, uv = uv_sphere(10.0, 48, 96)
    renderer.set_mesh(v, f, uv)
    tex = np.zeros((64, 64, 3), np.uint8)
    tex[:32] = (230, 20, 20)    # top of the image = v near 1 = top of the sphere
    tex[32:] = (20, 20, 230)
    renderer.set_texture(tex)
    cam = front_camera()
    img = renderer.render_image(96, 96, cam, view="textured").astype(int)
    top, bottom = img[30, 48], img[66, 48]
    assert top[0] > top[2] + 60 and bottom[2] > bottom[0] + 60
    # a different texture changes the pixels; the shaded view ignores the texture
    renderer.set_texture(np.full((8, 8, 3), (20, 200, 20), np.uint8))
    img2 = renderer.render_image(96, 96, cam, view="textured").astype(int)
    assert img2[30, 48, 1] > img2[30, 48, 0] + 60
    s1 = renderer.render_image(96, 96, cam, view="shaded")
    renderer.set_texture(tex)
    assert np.array_equal(s1, renderer.render_image(96, 96, cam, view="shaded"))


def test_textured_sdf_uses_uv_grid(renderer):
    v, f, uv = uv_sphere(10.0, 48, 96)
    grid, lo, hi = sphere_sdf_grid(10.0, 40)
    renderer.set_sdf_grid(grid, lo, hi, uv_grid_from_mesh(v, uv, lo, hi, 40))
    tex = np.zeros((64, 64, 3), np.uint8)
    tex[:32] = (230, 20, 20)
    tex[32:] = (20, 20, 230)
    renderer.set_texture(tex)
    img = renderer.render_image(96, 96, front_camera(), mode="sdf", view="textured").astype(int)
    assert img[30, 48, 0] > img[30, 48, 2] + 60 and img[66, 48, 2] > img[66, 48, 0] + 60


@pytest.mark.parametrize("mode", ["mesh", "sdf"])
def test_normals_view_encodes_world_normals(renderer, mode):
    renderer.set_mesh(*uv_sphere(10.0, 96, 192))
    renderer.set_sdf_grid(*sphere_sdf_grid(10.0, 48))
    cam = front_camera(30, 15)
    w = 96
    img = renderer.render_image(w, w, cam, mode=mode, view="normals")
    rays = pixel_rays(cam, w, w)
    bq = rays @ cam.eye
    disc = bq ** 2 - (cam.eye @ cam.eye - 100.0)
    inside = (disc > 4.0) & (img[..., 3].ravel() > 127)     # away from the rim
    t = -bq[inside] - np.sqrt(disc[inside])
    n_true = (cam.eye + rays[inside] * t[:, None]) / 10.0
    n_img = img[..., :3].reshape(-1, 3)[inside] / 255.0 * 2 - 1
    n_img /= np.linalg.norm(n_img, axis=1, keepdims=True)
    angle = np.degrees(np.arccos(np.clip(np.sum(n_img * n_true, 1), -1, 1)))
    assert inside.sum() > 1500 and np.mean(angle) < 3.0 and np.max(angle) < 10.0


def test_wireframe_draws_edges(renderer):
    renderer.set_mesh(*uv_sphere(10.0, 8, 16))   # coarse: big faces, visible edges
    cam = front_camera(20, 10)
    shaded = renderer.render_image(128, 128, cam, view="shaded")
    wire = renderer.render_image(128, 128, cam, view="wireframe")
    mask = shaded[..., 3] > 127
    dark_s = (shaded[..., :3].max(-1) < 60) & mask
    dark_w = (wire[..., :3].max(-1) < 60) & mask
    assert np.array_equal(mask, wire[..., 3] > 127)
    assert dark_w.sum() > 0.05 * mask.sum() > dark_s.sum()
    assert dark_w.sum() < 0.5 * mask.sum()           # lines, not filled faces


def test_lighting_modes_and_background(renderer):
    renderer.set_mesh(*uv_sphere(10.0, 48, 96))
    cam = front_camera()
    a = renderer.render_image(64, 64, cam, lighting=Lighting.studio(), background=(1, 0, 0))
    b = renderer.render_image(64, 64, cam, lighting=Lighting.image_based(), background=(0, 0, 1))
    assert tuple(a[0, 0, :3]) == (255, 0, 0) and a[0, 0, 3] == 0
    assert tuple(b[0, 0, :3]) == (0, 0, 255)
    for img in (a, b):
        lit = img[..., :3][img[..., 3] > 127].astype(int)
        assert lit.mean() > 60 and lit.std() > 10      # lit, with shading variation
    assert np.abs(a[32, 32, :3].astype(int) - b[32, 32, :3]).max() > 3


def test_update_vertices_moves_mesh_in_place(renderer):
    v, f, uv = uv_sphere(6.0, 32, 64)
    renderer.set_mesh(v, f, uv)
    buf = renderer._mesh["pos"]
    cam = front_camera()
    a = renderer.render_image(96, 96, cam)
    renderer.update_vertices(v + np.array([6.0, 0, 0], np.float32))
    assert renderer._mesh["pos"] is buf                 # written, not re-allocated
    b = renderer.render_image(96, 96, cam)
    cx = lambda img: np.nonzero(img[..., 3] > 127)[1].mean()
    assert cx(b) - cx(a) > 10
    with pytest.raises(ValueError):
        renderer.update_vertices(v[:10])


def test_points_overlay_lands_on_projected_pixels(renderer):
    renderer.set_mesh(*uv_sphere(10.0, 32, 64))
    pts = np.array([[0, 0, 10.0], [12, 8, 0], [-12, -8, 3]], np.float32)
    renderer.set_points(pts, colour=(0.0, 1.0, 0.0), size=7)
    cam = front_camera(25, 10)
    img = renderer.render_image(128, 128, cam).astype(int)
    for x, y, _ in cam.project(pts, 128, 128):
        p = img[int(y), int(x)]
        assert p[1] > 200 and p[0] < 80, p
    img2 = renderer.render_image(128, 128, cam, show_points=False).astype(int)
    x, y, _ = cam.project(pts[:1], 128, 128)[0]
    assert img2[int(y), int(x), 1] < 200


def test_bad_inputs_raise_clear_errors(renderer):
    with pytest.raises(ValueError, match="faces"):
        renderer.set_mesh(np.zeros((3, 3)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="out of range"):
        renderer.set_mesh(np.zeros((3, 3)), np.array([[0, 1, 5]]))
    renderer.set_mesh(*uv_sphere(5.0, 8, 16))
    with pytest.raises(ValueError, match="unknown view"):
        renderer.render_image(32, 32, front_camera(), view="xray")
    with pytest.raises(ValueError, match="wireframe"):
        renderer.render_image(32, 32, front_camera(), mode="sdf", view="wireframe")
    with pytest.raises(RuntimeError, match="set_sdf_grid"):
        renderer.render_image(32, 32, front_camera(), mode="sdf")
    with pytest.raises(ValueError, match="texture"):
        renderer.set_texture(np.zeros((4, 4), np.float32))


# -- neural SDF in GLSL vs numpy ----------------------------------------------------------------

def octahedron_stages(activation: str = "relu", seed: int = 0) -> list[dict]:
    """A warp stage (random, small) then an SDF stage that is an exact octahedron distance
    bound (|x|_1 - r)/sqrt(3) built from relu(+-x) units, plus random units with small
    weights so every feature, both activations and the warp matter."""
    rng = np.random.default_rng(seed)
    s, L = 1 / 15.0, 2
    n_in = 3 + 6 * L
    f32 = lambda a: np.asarray(a, np.float32)
    warp = {"kind": "warp", "in_offset": f32([0.5, -0.3, 0.2]), "in_scale": f32([s] * 3),
            "num_freqs": L, "activation": "softplus", "softplus_beta": 10.0,
            "layers": [(f32(rng.normal(0, 0.5, (16, n_in))), f32(rng.normal(0, 0.1, 16))),
                       (f32(rng.normal(0, 0.15, (3, 16))), f32(np.zeros(3)))]}
    w1 = np.zeros((10, n_in))
    for i in range(3):
        w1[2 * i, i], w1[2 * i + 1, i] = 1, -1
    w1[6:] = rng.normal(0, 0.3, (4, n_in))
    w2 = np.zeros((1, 10))
    w2[0, :6] = 1 / s / np.sqrt(3)
    w2[0, 6:] = rng.normal(0, 0.1, 4)
    sdf = {"kind": "sdf", "in_offset": f32([0, 0, 0]), "in_scale": f32([s] * 3), "num_freqs": L,
           "activation": activation, "softplus_beta": 200.0,
           "layers": [(f32(w1), f32(np.zeros(10))), (f32(w2), f32([-10 / np.sqrt(3)]))]}
    return [warp, sdf]


def test_evaluator_is_an_octahedron_when_warp_is_zero():
    stages = octahedron_stages()
    stages[0]["layers"][-1] = (np.zeros((3, 16), np.float32), np.zeros(3, np.float32))
    pts = np.random.default_rng(2).uniform(-12, 12, (500, 3))
    d = evaluate_stages(stages, pts)
    exact = (np.abs(pts).sum(1) - 10) / np.sqrt(3)
    assert np.corrcoef(d, exact)[0, 1] > 0.99


@pytest.mark.parametrize("activation", ["relu", "softplus"])
def test_neural_glsl_agrees_with_numpy(renderer, activation):
    stages = octahedron_stages(activation)
    assert "scene_sdf" in generate_glsl(stages)
    renderer.set_neural(stages)
    cam = OrbitCamera(yaw=30, pitch=20).frame(*BOX)
    w = 48
    img, z = renderer.render_image(w, w, cam, mode="neural", view="normals", depth=True)
    lo, hi = stage_bounds(stages)
    hit, t = sphere_trace_numpy(lambda p: evaluate_stages(stages, p), cam.eye, pixel_rays(cam, w, w),
                                lo, hi, cam.pixel_angle(w))
    mask = img[..., 3] > 127
    hit = hit.reshape(w, w)
    assert hit.sum() > 200
    assert (hit != mask).sum() <= 3                          # float32 vs float64 at the rim
    pts = cam.eye + pixel_rays(cam, w, w) * t[:, None]
    z_ref = cam.project(pts, w, w)[:, 2].reshape(w, w)
    both = hit & mask
    # same hit points: compare as distances along the ray (cm)
    assert np.median(np.abs(z_ref[both] - z[both])) < 1e-5
    # and the hits are on the network's zero set, within the tracer's tolerance
    tol = 0.2 * cam.pixel_angle(w) * t[both.ravel()]
    assert np.all(np.abs(evaluate_stages(stages, pts[both.ravel()])) < tol + 1e-3)


# -- one-shot helper and the command ------------------------------------------------------------

def test_render_offscreen_frames_the_object(ctx):
    img = render_offscreen(64, 48, mesh=uv_sphere(3.0, 16, 32))
    assert img.shape == (48, 64, 4)
    m = img[..., 3] > 127
    assert 0.1 < m.mean() < 0.8 and not m[0].any() and not m[:, 0].any()


def test_render_command_writes_png(ctx, tmp_path, capsys):
    from PIL import Image
    from main import main

    out = tmp_path / "face.png"
    assert main(["render", "--size", "80", "--resolution", "48", "--yaw", "10",
                 "--expression", "jawOpen=0.8", "--out", str(out)]) == 0
    img = np.asarray(Image.open(out))
    assert img.shape == (80, 80, 3)
    assert img.std() > 10                                     # something was drawn
    out2 = tmp_path / "sdf.png"
    assert main(["render", "--size", "64", "--resolution", "48", "--mode", "sdf",
                 "--view", "normals", "--transparent", "--out", str(out2)]) == 0
    assert np.asarray(Image.open(out2)).shape == (64, 64, 4)


@pytest.mark.parametrize("argv,message", [
    (["--expression", "jawOpen=abc"], "not a number"),
    (["--expression", "notAShape=1"], "unknown expression"),
    (["--mode", "sdf", "--view", "wireframe"], "wireframe"),
    (["--size", "4"], "--size"),
    (["--background", "mauve-ish"], "--background"),
    (["--avatar", "/nonexistent/a.likeness"], "not found"),
])
def test_render_command_bad_arguments(tmp_path, capsys, argv, message):
    from main import main

    rc = main(["render", "--out", str(tmp_path / "x.png"), "--size", "32", *argv])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and "Traceback" not in err


def test_render_command_rejects_non_png_and_unknown_view(tmp_path, capsys):
    from main import main

    assert main(["render", "--out", str(tmp_path / "x.jpg")]) == 2
    assert ".png" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["render", "--view", "xray", "--out", str(tmp_path / "x.png")])


def _uv_sphere(n: int = 48) -> tuple[np.ndarray, np.ndarray]:
    th, ph = np.meshgrid(np.linspace(0, np.pi, n), np.linspace(0, 2 * np.pi, 2 * n), indexing="ij")
    v = np.stack([np.sin(th) * np.cos(ph), np.cos(th), np.sin(th) * np.sin(ph)], -1).reshape(-1, 3)
    idx = np.arange(n * 2 * n).reshape(n, 2 * n)
    a, b, c, d = idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]
    f = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    return v.astype(np.float32), f.astype(np.int32)


def test_fxaa_smooths_silhouette_edges_only():
    """The FXAA pass leaves flat regions alone and blends where the object meets the background."""
    from core.render import OrbitCamera, Renderer, headless_context

    v, f = _uv_sphere()
    imgs = {}
    for aa in (False, True):
        r = Renderer(headless_context(), fxaa=aa, cull_back_faces=False)
        r.set_mesh(v, f)
        cam = OrbitCamera(yaw=0, pitch=0).frame(*r.bounds("mesh"), margin=0.8)
        imgs[aa] = r.render_image(128, 128, cam, view="shaded", show_points=False).astype(np.int32)
        if aa:   # filtered only inside the object's box (the rest is background): the same frame
            px = cam.project(v, 128, 128)
            box = (*px[:, :2].min(0), *px[:, :2].max(0))
            boxed = r.render_image(128, 128, cam, view="shaded", show_points=False, fxaa_box=box)
            assert (boxed.astype(np.int32) == imgs[aa]).all()
            empty = r.render_image(128, 128, cam, view="shaded", show_points=False, fxaa_box=(5, 5, 5, 5))
            assert (empty[..., 3] == 0).all()            # an empty box: background only
        r.release()
    plain, smooth = imgs[False], imgs[True]
    inside = plain[..., 3] > 0
    edge = np.zeros_like(inside)
    for ax in (0, 1):
        for k in (-1, 1):
            edge |= inside != np.roll(inside, k, ax)
    changed = np.abs(smooth[..., :3] - plain[..., :3]).max(-1) > 6
    assert changed[edge].mean() > 0.3                       # most silhouette pixels are blended
    assert changed[~edge].mean() < 0.02                     # flat shading and background are not
    assert (smooth[0, 0, :3] == plain[0, 0, :3]).all()
