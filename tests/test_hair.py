"""Hair (core.head.hair): every style builds, renders on the skin, keeps the face free, follows
its length and hairline controls, stays outside the skin and exports with its texture."""
from __future__ import annotations

import numpy as np
import pytest

from core.head.settings import HAIR_STYLES, HairStyle

SIZE = 160
BLUE = (0.15, 0.3, 0.85)          # an unmistakable hair colour for pixel tests


@pytest.fixture(scope="module")
def head(face_model):
    """Mean face at a small resolution (fast), its animator and landmarks."""
    m = face_model
    mesh = m.extract_mesh(m.mean_identity(), resolution=64, max_triangles=12_000)
    return mesh, m.animator(mesh, m.mean_identity()), np.asarray(m.landmarks(m.mean_identity()), np.float32)


@pytest.fixture(scope="module")
def hairs(face_model, head):
    from core.head.hair import build_hair

    mesh, anim, _ = head
    return {s: build_hair(face_model, HairStyle(style=s, length=0.6, colour=BLUE), mesh, anim)
            for s in HAIR_STYLES}


def _render(head, hair, yaw: float, view: str = "textured", mode: str = "mesh", sdf=None):
    from core.head.hair import pose_hair
    from core.render import OrbitCamera, Renderer, headless_context

    mesh, anim, _ = head
    r = Renderer(headless_context())
    try:
        v = anim.vertices(np.zeros(53, np.float32))
        r.set_mesh(v, mesh.faces, mesh.uvs)
        if sdf is not None:
            r.set_sdf_grid(*sdf)
        if hair is not None and not hair.empty:
            r.set_hair(hair)
            r.update_hair(*pose_hair(hair))
        cam = OrbitCamera(yaw=yaw, pitch=0).frame(v.min(0), v.max(0), margin=0.9)
        return r.render_image(SIZE, SIZE, cam, view=view, mode=mode)[..., :3].astype(np.int16), cam
    finally:
        r.release()


def test_every_style_builds(hairs):
    assert hairs["bald"].empty
    for style in HAIR_STYLES[1:]:
        h = hairs[style]
        assert 2_000 < len(h.faces) <= 15_000, style          # viewport budget
        assert np.isfinite(h.vertices).all() and np.allclose(np.linalg.norm(h.tangents, axis=1), 1, atol=1e-3)
        assert abs(np.einsum("ij,ij->i", h.tangents, h.normals)).max() < 0.05, "tangents lie in the surface"
        assert h.uvs.shape == (len(h.vertices), 2) and 0 <= h.fade.min() and h.fade.max() <= 1


@pytest.mark.parametrize("style", HAIR_STYLES[1:])
def test_style_renders_hair_coloured_over_the_scalp(head, hairs, style):
    bald, _ = _render(head, None, 180)
    img, _ = _render(head, hairs[style], 180)            # from behind: the back of the scalp
    changed = np.abs(img - bald).sum(-1) > 40
    assert changed.mean() > 0.04, f"{style}: too little hair drawn"
    px = img[changed].astype(float)
    assert (px[:, 2] > px[:, 0] + 10).mean() > 0.8, f"{style}: the changed pixels are not hair-coloured"


def test_grey_renders_grey(face_model, head):
    from core.head.hair import build_hair

    mesh, anim, _ = head
    bald, _ = _render(head, None, 180)
    hair = build_hair(face_model, HairStyle(style="medium", colour=(0.7, 0.35, 0.1), grey=1.0), mesh, anim)
    img, _ = _render(head, hair, 180)
    px = img[np.abs(img - bald).sum(-1) > 40].astype(float)
    assert len(px) > 500
    sat = px.max(1) - px.min(1)
    assert np.median(sat) < 20 and np.median(px.mean(1)) > 90, "grey hair: bright, unsaturated"


@pytest.mark.parametrize("style", HAIR_STYLES[1:])
def test_hair_keeps_the_face_free(head, hairs, style):
    """Frontal render: eyes, nose and mouth look the same with and without hair."""
    _, _, lm = head
    bald, cam = _render(head, None, 0)
    img, _ = _render(head, hairs[style], 0)
    p = cam.project(lm[27:68], SIZE, SIZE)
    x0, y0 = np.floor(p[:, :2].min(0)).astype(int) - 2
    x1, y1 = np.ceil(p[:, :2].max(0)).astype(int) + 2
    diff = np.abs(img[y0:y1, x0:x1] - bald[y0:y1, x0:x1]).sum(-1) > 30
    assert diff.mean() < 0.01, f"{style} covers {diff.mean():.1%} of the face"


def test_hair_stays_outside_the_skin(face_model, head, hairs):
    from core.head.hair import build_hair, template_skin_sdf

    for style in HAIR_STYLES[1:]:
        h = hairs[style]
        d = face_model.sdf(h.vertices, face_model.mean_identity())
        assert np.percentile(d, 1) > -0.05 and d.min() > -0.3, style
    # Another identity: the hair re-anchored to its head stays outside it.
    z = face_model.sample_identity(np.random.default_rng(5), temperature=1.0)
    mesh = face_model.extract_mesh(z, resolution=64, max_triangles=12_000)
    h = build_hair(face_model, HairStyle(style="short"), mesh, face_model.animator(mesh, z))
    d = face_model.sdf(h.vertices, z)
    assert np.percentile(d, 1) > -0.05 and d.min() > -0.3
    assert template_skin_sdf(face_model)(h.vertices[:1]).shape == (1,)


def test_length_and_hairline_controls(face_model, head):
    from core.head.hair import build_hair

    mesh, anim, _ = head

    def hair(**kw):
        return build_hair(face_model, HairStyle(**kw), mesh, anim).vertices

    assert hair(style="long", length=1.0)[:, 1].min() < hair(style="long", length=0.0)[:, 1].min() - 5
    short0, short1 = hair(style="short", length=0.0), hair(style="short", length=1.0)
    assert short1[:, 1].max() > short0[:, 1].max() + 0.5                 # thicker on top

    def front_line(v):   # lowest hair over the middle of the forehead
        front = (np.abs(v[:, 0]) < 2.5) & (v[:, 2] > 6)
        return v[front, 1].min()

    low, high = hair(style="short", hairline=-1.0), hair(style="short", hairline=1.0)
    assert front_line(high) > front_line(low) + 2.0
    tied = hair(style="tied", length=1.0)
    assert tied[:, 2].min() < mesh.vertices[:, 2].min() - 3, "a ponytail hangs behind the head"


def test_expressions_move_the_hairline_not_the_tail(face_model, head, hairs):
    from core.expressions import INDEX

    h = hairs["short"]
    w = np.zeros(53, np.float32)
    w[INDEX["browInnerUp_L"]] = w[INDEX["browInnerUp_R"]] = 1.0
    moved = np.linalg.norm(h.posed(w) - h.vertices, axis=1)
    assert moved.max() > 0.05, "raised brows carry the hairline"
    w[:] = 0
    w[INDEX["jawOpen"]] = 1.0
    assert np.linalg.norm(h.posed(w) - h.vertices, axis=1)[h.vertices[:, 1] > 8].max() < 0.05


def test_sdf_view_draws_hair(head, hairs, face_model):
    grid = face_model.sdf_grid(face_model.mean_identity(), None, resolution=48)
    bald, _ = _render(head, None, 150, mode="sdf", sdf=grid)
    img, _ = _render(head, hairs["long"], 150, mode="sdf", sdf=grid)
    changed = np.abs(img - bald).sum(-1) > 40
    assert changed.mean() > 0.05
    assert (img[changed][:, 2] > img[changed][:, 0] + 10).mean() > 0.8


def test_pose_turns_hair_with_the_head(hairs):
    from core.head.hair import pose_hair

    h = hairs["short"]
    v, n, t = pose_hair(h, None, np.array([30.0, 0.0, 0.0]))
    assert not np.allclose(v, h.vertices)
    # Rigid: distances between vertices are kept, normals stay unit.
    i, j = 0, len(v) // 2
    assert np.isclose(np.linalg.norm(v[i] - v[j]), np.linalg.norm(h.vertices[i] - h.vertices[j]), atol=1e-3)
    assert np.allclose(np.linalg.norm(n, axis=1), 1, atol=1e-3)


@pytest.mark.parametrize("suffix", [".glb", ".obj"])
def test_export_contains_hair_and_texture(face_model, tmp_path, suffix):
    from PIL import Image

    from core.avatar import Avatar
    from core.export import export_avatar, read_glb_json

    avatar = Avatar(face_model.mean_identity(), hair=HairStyle(style="long", colour=BLUE), name="hairy")
    files = export_avatar(avatar, tmp_path / f"a{suffix}", face_model, resolution=48)
    if suffix == ".glb":
        doc = read_glb_json(files[0])
        names = [m["name"] for m in doc["meshes"]]
        assert "hair" in names
        mat = next(m for m in doc["materials"] if m["name"] == "hair")
        assert mat["alphaMode"] == "MASK" and "baseColorTexture" in mat["pbrMetallicRoughness"]
        hair_mesh = doc["meshes"][names.index("hair")]
        assert "COLOR_0" in hair_mesh["primitives"][0]["attributes"]
        tex = doc["textures"][mat["pbrMetallicRoughness"]["baseColorTexture"]["index"]]
        assert doc["samplers"][tex["sampler"]]["wrapS"] == 10497        # the strands tile
        assert len(doc["images"]) >= 2
    else:
        obj = (tmp_path / "a.obj").read_text()
        assert "\no hair\n" in obj and "usemtl hair" in obj
        mtl = (tmp_path / "a.mtl").read_text()
        assert "newmtl hair" in mtl and "map_d a_hair.png" in mtl
        img = np.asarray(Image.open(tmp_path / "a_hair.png"))
        assert img.shape[2] == 4 and img[..., 2].mean() > img[..., 0].mean()   # blue hair, alpha


def test_bald_exports_no_hair(face_model, tmp_path):
    from core.avatar import Avatar
    from core.export import export_avatar, read_glb_json

    avatar = Avatar(face_model.mean_identity(), hair=HairStyle(style="bald"))
    files = export_avatar(avatar, tmp_path / "b.glb", face_model, resolution=48)
    assert "hair" not in [m["name"] for m in read_glb_json(files[0])["meshes"]]


def test_render_command_hair_option(tmp_path):
    from PIL import Image

    from main import main

    out = tmp_path / "h.png"
    assert main(["render", "--size", "64", "--resolution", "48", "--yaw", "180", "--samples", "0",
                 "--view", "textured", "--hair", "long,length=0.5,colour=#2050e0", "--out", str(out)]) == 0
    img = np.asarray(Image.open(out)).astype(int)
    assert ((img[..., 2] - img[..., 0]) > 30).mean() > 0.1
    assert main(["render", "--hair", "mohawk", "--out", str(tmp_path / "x.png")]) == 2
    assert main(["render", "--hair", "long,length=3", "--out", str(tmp_path / "x.png")]) == 2


def test_glb_with_hair_passes_the_khronos_validator(face_model, tmp_path):
    """Runs where the validator is installed (see tests/test_head_parts.py)."""
    parts_tests = pytest.importorskip("test_head_parts")
    if parts_tests._validator() is None:
        pytest.skip("Khronos glTF validator not installed")
    from core.avatar import Avatar
    from core.export import export_avatar

    avatar = Avatar(face_model.mean_identity(), hair=HairStyle(style="tied", length=0.8))
    issues = parts_tests.validate_glb(export_avatar(avatar, tmp_path / "t.glb", face_model, resolution=48)[0])
    assert issues["numErrors"] == 0, issues["messages"][:5]


def test_skin_under_the_hair_is_drawn_after_it_without_changing_the_picture(head, hairs):
    """core.render.draw_order: the scalp goes after the hair, the face before it; the order
    saves fragments, never changes pixels (every surface is opaque and depth tested)."""
    from core.head.hair import pose_hair
    from core.render import OrbitCamera, Renderer, headless_context

    mesh, anim, lm = head
    hair = hairs["long"]
    r = Renderer(headless_context())
    try:
        v = anim.vertices(np.zeros(53, np.float32))
        r.set_mesh(v, mesh.faces, mesh.uvs)
        r.set_hair(hair)
        r.update_hair(*pose_hair(hair))
        under = r._under_hair()
        centres = v[mesh.faces].mean(1)
        nose = np.linalg.norm(centres - lm[30], axis=1) < 1.5             # nose tip
        crown = centres[:, 1] > v[:, 1].max() - 2.0                     # top of the head
        assert under[crown].mean() > 0.9 and not under[nose].any()
        assert 0.15 < under.mean() < 0.7
        for yaw in (0, 35, 120, 180):
            cam = OrbitCamera(yaw=yaw, pitch=10).frame(v.min(0), v.max(0), margin=0.9)
            ordered = r.render_image(SIZE, SIZE, cam)
            r._hair_points = None                        # one skin draw before the hair
            r._mesh["under_hair"] = None
            plain = r.render_image(SIZE, SIZE, cam)
            r.set_hair(hair)
            r.update_hair(*pose_hair(hair))
            assert np.array_equal(ordered, plain), yaw
    finally:
        r.release()
