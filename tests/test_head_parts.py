"""Eyes and mouth interior (core/head): fitted placement, gaze and jaw motion, what the renders
show (sclera near the eye landmarks, covered by a blink; teeth in an open mouth), the SDF view,
head pose, OBJ/GLB export (+ the Khronos validator when installed)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from core.expressions import EXPRESSION_NAMES, parse_expression
from core.head.build import build_head_parts
from core.head.rig import HEAD_PARTS_FILE, HeadRig, HeadRigError

INDEX = {n: i for i, n in enumerate(EXPRESSION_NAMES)}
REPO = Path(__file__).resolve().parents[1]


def _w(text: str = "") -> np.ndarray:
    return parse_expression(text) if text else np.zeros(len(EXPRESSION_NAMES), np.float32)


@pytest.fixture(scope="module")
def head():
    return build_head_parts(None)


def _cornea_dir(head, weights, side):
    part = head.part(f"eye_{side}")
    v = part.posed(weights)
    from core.head.eyes import EYE_SETBACK_CM

    rig = HeadRig.load()
    centre = np.array([rig.params(None)[f"eye{side}_{k}"] for k in "xyz"])
    centre = centre - EYE_SETBACK_CM * np.asarray(rig.eye_shape[side]["axis"])
    d = v - centre
    apex = d[np.argmax(np.linalg.norm(d, axis=1))]        # the cornea stands out of the ball
    return apex / np.linalg.norm(apex)


def test_rig_file_and_damage(tmp_path):
    rig = HeadRig.load()
    p = rig.params(None)
    assert 1.0 < p["eyeL_radius"] < 2.0 and p["eyeL_x"] > 0 > p["eyeR_x"]      # +x is the subject's left
    assert p["upper_edge_y"] > p["lower_root_y"] and p["upper_front_z"] > p["upper_back_z"]
    assert HEAD_PARTS_FILE.stat().st_size < 200_000
    bad = tmp_path / "head_parts.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(HeadRigError, match="damaged.*fit_head_parts"):
        HeadRig.load(bad)
    with pytest.raises(HeadRigError, match="not found"):
        HeadRig.load(tmp_path / "missing.npz")


def test_identity_moves_parts():
    from core.facemodel import FaceModel

    model = FaceModel.load()
    z = model.encode_ict(np.full(10, 1.5))
    a, b = build_head_parts(None), build_head_parts(z)
    shift = np.linalg.norm(a.part("eye_L").vertices.mean(0) - b.part("eye_L").vertices.mean(0))
    assert 0.01 < shift < 2.0                                 # cm: placed per identity


def test_gaze_turns_the_eyes_by_the_fitted_angle(head):
    rig = HeadRig.load()
    rest = _cornea_dir(head, _w(), "L")
    out = _cornea_dir(head, _w("eyeLookOut_L=1"), "L")
    angle = np.degrees(np.arccos(np.clip(rest @ out, -1, 1)))
    assert angle == pytest.approx(rig.gaze_deg["out"], abs=1.5)
    assert out[0] > rest[0]                                   # the left eye looks to +x (outward)
    up = _cornea_dir(head, _w("eyeLookUp_R=0.5"), "R")
    assert up[1] > _cornea_dir(head, _w(), "R")[1]
    inward = _cornea_dir(head, _w("eyeLookIn_R=1"), "R")
    assert inward[0] > _cornea_dir(head, _w(), "R")[0]        # the right eye's inside is +x
    # the other eye and the mouth do not move
    np.testing.assert_array_equal(head.part("eye_R").posed(_w("eyeLookOut_L=1")), head.part("eye_R").vertices)
    np.testing.assert_array_equal(head.part("teeth").posed(_w("eyeLookOut_L=1")), head.part("teeth").vertices)
    # morph targets (export) agree with the rig at weight 1
    eye = head.part("eye_L")
    k = eye.morph_names.index("eyeLookOut_L")
    np.testing.assert_allclose(eye.vertices + eye.morph_targets[k], eye.posed(_w("eyeLookOut_L=1")), atol=1e-4)


def test_jaw_moves_lower_teeth_by_the_fitted_amount(head):
    rig = HeadRig.load()
    teeth = head.part("teeth")
    rest = teeth.vertices
    opened = teeth.posed(_w("jawOpen=1"))
    move = np.linalg.norm(opened - rest, axis=1)
    lower = move > 1e-4
    assert 0.4 < lower.mean() < 0.6                           # the lower set moves, the upper stays
    # ICT's lower teeth move 30.8 mm on average at jawOpen = 1 (model card); ours are the same
    # rigid motion on our own teeth
    ict_mm = rig.meta["fit"]["jaw"]["jawOpen"]["motion_mm"]
    assert move[lower].mean() * 10 == pytest.approx(ict_mm, rel=0.15)
    c = rest[lower].mean(0)
    expected = (rig.jaw_affine(_w("jawOpen=1")) @ np.r_[c, 1.0])[:3]
    np.testing.assert_allclose(opened[lower].mean(0), expected, atol=1e-3)
    assert opened[lower].mean(0)[1] < c[1] - 2.0              # down by > 2 cm
    left = teeth.posed(_w("jawLeft=1"))[lower].mean(0) - c
    assert left[0] > 0.3                                      # jawLeft: toward the subject's left
    fwd = teeth.posed(_w("jawForward=1"))[lower].mean(0) - c
    assert fwd[2] > 0.5
    # half a weight is half the offset (linear, as the skin's blendshapes)
    half = teeth.posed(_w("jawOpen=0.5"))
    np.testing.assert_allclose(half - rest, 0.5 * (opened - rest), atol=1e-5)
    # the tongue and the lower cavity follow the jaw
    assert np.abs(head.part("tongue").posed(_w("jawOpen=1")) - head.part("tongue").vertices).max() > 1.0


def test_head_pose_turns_parts_with_the_skin(head):
    from core.tracking.puppet import posed_head

    pose = np.array([20.0, -5.0, 3.0], np.float32)
    verts, carves = head.pose(_w("jawOpen=0.3"), pose)
    for part, v in zip(head.parts, verts):
        np.testing.assert_allclose(v, posed_head(part.posed(_w("jawOpen=0.3")), pose), atol=1e-5)
    assert carves.shape[1:] == (4, 4) and len(carves) == len(head.carves)


# --- renders ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def view():
    """Renderer with the default avatar's skin (no hair) and head parts, frontal camera."""
    from types import SimpleNamespace

    from core.facemodel import FaceModel
    from core.render import OrbitCamera, Renderer, headless_context
    from core.render.scene import VIEWPORT_MAX_TRIANGLES

    model = FaceModel.load()
    z = model.mean_identity()
    mesh = model.extract_mesh(z, None, resolution=96, max_triangles=VIEWPORT_MAX_TRIANGLES)
    anim = model.animator(mesh, z)
    scene = SimpleNamespace(animator=anim.vertices, sdf=lambda w: model.sdf_grid(z, w, resolution=96))
    hp = build_head_parts(z)
    r = Renderer(headless_context())
    r.set_mesh(anim.neutral(), mesh.faces, mesh.uvs)
    r.set_parts("head", hp.parts)
    cam = OrbitCamera(yaw=0.0, pitch=0.0).frame(*r.bounds("mesh"), margin=0.9)
    cam.zoom(1.3)
    yield scene, hp, r, cam
    r.release()


def _render(view, text="", mode="mesh", size=256):
    scene, hp, r, cam = view
    w = _w(text)
    r.update_vertices(scene.animator(w))
    verts, carves = hp.pose(w)
    r.update_parts("head", verts)
    r.set_carves(carves)
    return r.render_image(size, size, cam, mode=mode, view="textured")[..., :3].astype(np.int32)


def _project(view, points, size=256):
    _, _, _, cam = view
    m = cam.projection_matrix(1.0) @ cam.view_matrix()
    p = np.c_[points, np.ones(len(points))] @ m.T
    ndc = p[:, :2] / p[:, 3:]
    return np.c_[(ndc[:, 0] + 1) / 2 * size, (1 - ndc[:, 1]) / 2 * size]


def _region(view, landmarks, pad, size=256):
    xy = _project(view, landmarks, size)
    x0, y0 = np.floor(xy.min(0) - pad).astype(int)
    x1, y1 = np.ceil(xy.max(0) + pad).astype(int)
    return slice(max(y0, 0), y1), slice(max(x0, 0), x1)


def _whitish(img, lo=150):
    return (img.min(-1) > lo) & (img.max(-1) - img.min(-1) < 60)


def _landmarks(view, text=""):
    from core.facemodel import FaceModel

    model = FaceModel.load()
    return np.asarray(model.landmarks(model.mean_identity(), _w(text)), np.float32)


def test_eyes_visible_and_closed_by_blink(view):
    lm = _landmarks(view)
    eyes = [_region(view, lm[36:42], 2), _region(view, lm[42:48], 2)]
    open_img = _render(view)
    shut = _render(view, "eyeBlink_L=1,eyeBlink_R=1")
    for ys, xs in eyes:
        white_open = _whitish(open_img[ys, xs]).sum()
        white_shut = _whitish(shut[ys, xs]).sum()
        dark_iris = (open_img[ys, xs].max(-1) < 90).sum()
        assert white_open >= 15, white_open                    # sclera beside the iris
        assert dark_iris >= 10                                  # iris + pupil
        assert white_shut <= 0.2 * white_open, (white_shut, white_open)


def test_open_mouth_shows_teeth(view):
    lm_open = _landmarks(view, "jawOpen=0.8")
    ys, xs = _region(view, lm_open[48:68], 3)
    closed = _render(view)[ys, xs]
    opened = _render(view, "jawOpen=0.8")[ys, xs]
    teeth_open, teeth_closed = _whitish(opened, 140).sum(), _whitish(closed, 140).sum()
    assert teeth_open >= 12 and teeth_open > 3 * teeth_closed + 5, (teeth_open, teeth_closed)
    dark = (opened.max(-1) < 50).sum()                          # the cavity
    assert dark >= 20, dark


def test_sdf_view_shows_eyes_and_mouth(view):
    scene, hp, r, cam = view
    r.set_sdf_grid(*scene.sdf(_w("jawOpen=0.8")))
    lm = _landmarks(view)
    img = _render(view, "jawOpen=0.8", mode="sdf")
    ys, xs = _region(view, lm[36:42], 2)
    assert _whitish(img[ys, xs]).sum() >= 15
    ys, xs = _region(view, _landmarks(view, "jawOpen=0.8")[48:68], 3)
    assert (img[ys, xs].max(-1) < 50).sum() >= 20                # the dark cavity, not the field's cap


# --- export -------------------------------------------------------------------------------------

def _validator() -> Path | None:
    """The Khronos glTF validator installed with npm (in .cache/gltf or globally), or None."""
    if shutil.which("node") is None:
        return None
    for base in (REPO / ".cache" / "gltf" / "node_modules", Path("/usr/lib/node_modules"),
                 Path("/usr/local/lib/node_modules")):
        if (base / "gltf-validator" / "package.json").exists():
            return base / "gltf-validator"
    return None


def validate_glb(path: Path) -> dict:
    """Run the Khronos validator on a GLB; its issues summary (numErrors, messages...)."""
    script = ("const v=require(process.argv[1]);const fs=require('fs');"
              "v.validateBytes(new Uint8Array(fs.readFileSync(process.argv[2]))).then(r=>"
              "console.log(JSON.stringify(r.issues))).catch(e=>{console.error(String(e));process.exit(1)})")
    out = subprocess.run(["node", "-e", script, str(_validator()), str(path)], capture_output=True,
                         text=True, timeout=120, check=True)
    return json.loads(out.stdout)


def test_export_with_parts(tmp_path, face_model):
    import trimesh

    from core.avatar import Avatar
    from core.export import export_avatar, read_glb_json

    avatar = Avatar(face_model.mean_identity(), name="Head")
    avatar.set_hair(style="bald")
    avatar.set_expression(parse_expression("jawOpen=0.4,eyeLookOut_L=0.5"))
    mesh = face_model.extract_mesh(avatar.identity, None, resolution=64)
    glb = export_avatar(avatar, tmp_path / "head.glb", face_model, mesh=mesh)[0]
    gltf = read_glb_json(glb)
    by_name = {m["name"]: m for m in gltf["meshes"]}
    for name in ("eye_L", "eye_R", "teeth", "gums", "tongue", "mouth_cavity"):
        assert name in by_name, name
    eye = by_name["eye_L"]
    assert eye["extras"]["targetNames"] == ["eyeLookUp_L", "eyeLookDown_L", "eyeLookIn_L", "eyeLookOut_L", "eyeBlink_L"]
    assert eye["weights"][3] == pytest.approx(0.5)
    teeth = by_name["teeth"]
    assert teeth["extras"]["targetNames"][0] == "jawOpen" and teeth["weights"][0] == pytest.approx(0.4)
    assert len(gltf["images"]) >= 3                               # skin + two eye textures
    scene = trimesh.load(glb)
    assert len(scene.geometry) >= 7
    obj = export_avatar(avatar, tmp_path / "head.obj", face_model, mesh=mesh)
    text = obj[0].read_text()
    assert "o eye_L" in text and "o teeth" in text and "usemtl mouth_cavity" in text
    assert (tmp_path / "head_eye_L.png").exists()
    if _validator() is None:
        pytest.skip("gltf-validator not installed (npm install gltf-validator in .cache/gltf)")
    issues = validate_glb(glb)
    assert issues["numErrors"] == 0, issues["messages"][:5]


# --- studio -------------------------------------------------------------------------------------

@pytest.mark.gui
def test_studio_builds_and_poses_head_parts(qtbot, face_model):
    """FaceSession builds the eyes and mouth off the GUI thread, re-poses them on every slider
    move and head turn (a few ms), rebuilds them when the eye settings change, and the viewport
    shows the eyes."""
    from app.main_window import MainWindow

    w = MainWindow(face_model)
    w.resize(900, 700)
    with qtbot.waitSignal(w.session.head_changed, timeout=120_000):
        w.show()
    qtbot.waitExposed(w)
    try:
        s = w.session
        qtbot.waitUntil(lambda: not s.busy, timeout=60_000)
        assert s.head is not None and {p.name for p in s.head.parts} >= {"eye_L", "eye_R", "teeth"}
        with qtbot.waitSignal(s.head_posed, timeout=5000) as posed:
            w.avatar.set_weight("jawOpen", 0.7)
        verts, carves = posed.args[0]
        teeth = s.head.part("teeth")
        np.testing.assert_allclose(verts[s.head.parts.index(teeth)], teeth.posed(w.avatar.expression), atol=1e-5)
        assert s.head_pose_ms < 50
        with qtbot.waitSignal(s.head_posed, timeout=5000) as posed:
            w.avatar.set_head_pose((20.0, 0.0, 0.0))
        assert not np.allclose(posed.args[0][0][0], verts[0])      # the eyes turned with the head
        old = s.head
        with qtbot.waitSignal(s.head_changed, timeout=30_000):
            w.avatar.set_eyes(iris_colour=(0.1, 0.3, 0.6))
        assert s.head is not old and s.head.part("eye_L").texture[38, 10, 2] > s.head.part("eye_L").texture[38, 10, 0]
        w.viewport.repaint()
        if w.viewport.renderer is not None:                       # GL initialised on this display
            assert "head" in w.viewport.renderer.part_groups()
    finally:
        w.avatar.set_dirty(False)
        w.close()
        w.runner.wait(30_000)
        w.deleteLater()
