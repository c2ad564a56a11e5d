"""Export: OBJ + MTL + PNG and GLB with 53 ARKit-named morph targets, re-imported with trimesh
and checked against the glTF JSON and binary chunk."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import trimesh

from core.export import read_glb_json, write_glb, write_obj
from core.expressions import EXPRESSION_NAMES, INDEX


def _accessor(path, gltf, index) -> np.ndarray:
    """Decode one float/uint accessor from the GLB's binary chunk."""
    data = path.read_bytes()
    json_len = struct.unpack_from("<I", data, 12)[0]
    bin_start = 20 + json_len + 8
    acc = gltf["accessors"][index]
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3}[acc["type"]]
    dtype = np.float32 if acc["componentType"] == 5126 else np.uint32

    def view(bv_index, dt, n, offset=0):
        bv = gltf["bufferViews"][bv_index]
        return np.frombuffer(data, dt, n, bin_start + bv["byteOffset"] + offset)

    if "bufferView" in acc:
        out = view(acc["bufferView"], dtype, acc["count"] * width, acc.get("byteOffset", 0)).copy()
    else:
        out = np.zeros(acc["count"] * width, dtype)  # glTF: no bufferView means zeros
    out = out.reshape(acc["count"], width)
    if "sparse" in acc:
        sp = acc["sparse"]
        idx = view(sp["indices"]["bufferView"], np.uint32, sp["count"])
        out[idx] = view(sp["values"]["bufferView"], dtype, sp["count"] * width).reshape(-1, width)
    return out


@pytest.fixture
def small_mesh():
    m = trimesh.creation.icosphere(subdivisions=2, radius=8.0)
    v = m.vertices.astype(np.float32)
    uv = (v[:, :2] / 16 + 0.5).astype(np.float32)
    rng = np.random.default_rng(0)
    targets = rng.normal(scale=0.3, size=(53, len(v), 3)).astype(np.float32)
    targets[0, 10:] = 0          # a local expression: stored as a sparse accessor
    targets[1] = 0               # an expression that moves nothing
    texture = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return v, m.faces.astype(np.int32), uv, targets, texture


def test_glb_morph_targets_round_trip(tmp_path, small_mesh):
    v, f, uv, targets, texture = small_mesh
    weights = np.zeros(53, np.float32)
    weights[INDEX["jawOpen"]] = 0.7
    path = write_glb(tmp_path / "a.glb", v, f, uv, None, targets, EXPRESSION_NAMES, weights, texture,
                     target_normals=True)
    scene = trimesh.load(path)
    geom = next(iter(scene.geometry.values()))
    assert len(geom.vertices) == len(v) and len(geom.faces) == len(f)
    np.testing.assert_allclose(geom.vertices, v * 0.01, atol=1e-6)  # cm -> m
    gltf = read_glb_json(path)
    mesh = gltf["meshes"][0]
    prim = mesh["primitives"][0]
    assert mesh["extras"]["targetNames"] == list(EXPRESSION_NAMES)
    assert len(prim["targets"]) == 53 and mesh["weights"][INDEX["jawOpen"]] == pytest.approx(0.7)
    assert "sparse" in gltf["accessors"][prim["targets"][0]["POSITION"]]
    assert "sparse" not in gltf["accessors"][prim["targets"][2]["POSITION"]]
    for k in (0, 1, INDEX["jawOpen"], 52):
        t = prim["targets"][k]
        assert set(t) == {"POSITION", "NORMAL"}
        pos = _accessor(path, gltf, t["POSITION"])
        np.testing.assert_allclose(pos, targets[k] * 0.01, atol=1e-7)
        acc = gltf["accessors"][t["POSITION"]]
        np.testing.assert_allclose(acc["min"], pos.min(0), rtol=1e-6)
        np.testing.assert_allclose(acc["max"], pos.max(0), rtol=1e-6)
    # texture embedded as PNG, uv flipped to glTF's top-left origin
    assert gltf["images"][0]["mimeType"] == "image/png"
    assert gltf["materials"][0]["pbrMetallicRoughness"]["baseColorTexture"] == {"index": 0}
    np.testing.assert_allclose(_accessor(path, gltf, prim["attributes"]["TEXCOORD_0"])[:, 1], 1 - uv[:, 1], atol=1e-6)
    assert geom.visual.material.baseColorTexture.size == (32, 32)


def test_glb_is_valid_binary_layout(tmp_path, small_mesh):
    v, f, uv, targets, texture = small_mesh
    path = write_glb(tmp_path / "b.glb", v, f, uv, None, targets, EXPRESSION_NAMES, None, None)
    assert set(read_glb_json(path)["meshes"][0]["primitives"][0]["targets"][5]) == {"POSITION"}
    data = path.read_bytes()
    magic, version, total = struct.unpack_from("<4sII", data)
    assert (magic, version, total) == (b"glTF", 2, len(data))
    json_len, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON" and json_len % 4 == 0
    bin_len, bkind = struct.unpack_from("<I4s", data, 20 + json_len)
    assert bkind == b"BIN\0" and bin_len % 4 == 0 and 28 + json_len + bin_len == len(data)
    gltf = json.loads(data[20:20 + json_len])
    assert gltf["buffers"][0]["byteLength"] == bin_len
    for bv in gltf["bufferViews"]:
        assert bv["byteOffset"] % 4 == 0 and bv["byteOffset"] + bv["byteLength"] <= bin_len
    assert "images" not in gltf


def test_glb_rejects_mismatched_targets(tmp_path, small_mesh):
    v, f, uv, targets, _ = small_mesh
    with pytest.raises(ValueError, match="morph targets"):
        write_glb(tmp_path / "c.glb", v, f, uv, None, targets[:, :10], EXPRESSION_NAMES)


def test_obj_round_trip(tmp_path, small_mesh):
    v, f, uv, _, texture = small_mesh
    files = write_obj(tmp_path / "head.obj", v, f, uv, None, texture, name="Ada")
    assert [p.name for p in files] == ["head.obj", "head.mtl", "head.png"]
    assert "map_Kd head.png" in (tmp_path / "head.mtl").read_text()
    m = trimesh.load(tmp_path / "head.obj", process=False)
    assert len(m.vertices) == len(v) and len(m.faces) == len(f)
    np.testing.assert_allclose(m.vertices, v, atol=1e-5)
    np.testing.assert_allclose(m.visual.uv, uv, atol=1e-5)


# --- with the real face model ---------------------------------------------------------------------

def test_export_avatar_glb_and_obj(tmp_path, face_model):
    from core.avatar import default_avatar
    from core.export import export_avatar
    from core.expressions import parse_expression

    avatar = default_avatar(face_model)
    avatar.set_expression(parse_expression("surprised"))
    mesh = face_model.extract_mesh(avatar.identity, None, resolution=128)
    anim = face_model.animator(mesh, avatar.identity)
    steps = []
    glb = export_avatar(avatar, tmp_path / "head.glb", face_model, mesh=mesh,
                        progress=lambda f, s: steps.append(f))[0]
    assert steps[-1] == 1.0
    geom = next(iter(trimesh.load(glb).geometry.values()))
    # the skin's mouth cap (inside the head parts' carves) is left out
    assert len(geom.vertices) <= len(mesh.vertices) and 0.97 * len(mesh.faces) < len(geom.faces) <= len(mesh.faces)
    gltf = read_glb_json(glb)
    prim = gltf["meshes"][0]["primitives"][0]
    assert gltf["meshes"][0]["extras"]["targetNames"] == list(EXPRESSION_NAMES)
    assert len(prim["targets"]) == 53
    jaw = _accessor(glb, gltf, prim["targets"][INDEX["jawOpen"]]["POSITION"])
    np.testing.assert_allclose(jaw, anim.morph_targets()[INDEX["jawOpen"]] * 0.01, atol=1e-6)
    assert np.abs(jaw).max() > 0  # jawOpen really moves vertices
    assert gltf["meshes"][0]["weights"][INDEX["jawOpen"]] == pytest.approx(0.5)

    obj_files = export_avatar(avatar, tmp_path / "head.obj", face_model, mesh=mesh)
    loaded = trimesh.load(obj_files[0], process=False)   # skin + part objects (eyes, teeth, hair)
    m = loaded if isinstance(loaded, trimesh.Trimesh) else max(loaded.geometry.values(), key=lambda g: len(g.vertices))
    assert 0.97 * len(mesh.faces) < len(m.faces) <= len(mesh.faces)   # less the mouth cap
    from scipy.spatial import cKDTree

    gap, _ = cKDTree(anim.vertices(avatar.expression)).query(m.vertices)   # unused ones dropped
    assert len(m.vertices) > 0.97 * len(mesh.vertices) and gap.max() < 1e-4


def test_export_command(tmp_path, face_model, capsys):
    import main
    from core.avatar import Avatar
    from core.project import save_project

    out = tmp_path / "head.glb"
    assert main.main(["export", "default", "--out", str(out)]) == 0
    assert len(read_glb_json(out)["meshes"][0]["primitives"][0]["targets"]) == 53
    assert main.main(["export", "default", "--out", str(tmp_path / "head.fbx")]) == 2
    assert ".glb or .obj" in capsys.readouterr().err
    bad = tmp_path / "bad.likeness"
    bad.write_text("not a project")
    assert main.main(["export", str(bad), "--out", str(tmp_path / "x.obj")]) == 2
    assert "not a zip" in capsys.readouterr().err
    proj = save_project(Avatar(face_model.mean_identity(), texture=np.full((8, 8, 3), 200, np.uint8)),
                        tmp_path / "p.likeness")
    assert main.main(["export", str(proj), "--out", str(tmp_path / "p.obj"), "--expression", "happy"]) == 0
    assert (tmp_path / "p.png").exists() and (tmp_path / "p.mtl").exists()
