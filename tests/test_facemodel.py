"""Face model tests on the shipped weights (fast); FaceKit comparisons skip without ../shared."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

from core.expressions import EXPRESSION_NAMES, INDEX, weights_from_dict
from core.facemodel import Animator, FaceModel, Mesh
from core.facemodel.model import DEFAULT_PATH, ModelLoadError
from core.facemodel.shader_spec import evaluate_stages_numpy
from core.paths import MissingDataError, SHARED_DIR

FACEKIT = SHARED_DIR / "facekit" / "ict_facekit_light.npz"
needs_facekit = pytest.mark.skipif(not FACEKIT.exists(), reason=f"ICT FaceKit not found at {FACEKIT}")


@pytest.fixture(scope="module")
def model() -> FaceModel:
    return FaceModel.load()


@pytest.fixture(scope="module")
def mesh(model: FaceModel) -> Mesh:
    return model.extract_mesh(model.mean_identity(), None, 96)


def test_weights_load_without_pickle_and_are_small():
    blob = torch.load(DEFAULT_PATH, map_location="cpu", weights_only=True)
    assert blob["format"] == "likeness-facemodel-v1"
    assert DEFAULT_PATH.stat().st_size <= 20e6
    assert all(v.dtype in (torch.float16, torch.float32) for v in blob["state"].values())


def test_missing_and_damaged_model_files_give_clear_errors(tmp_path: Path):
    with pytest.raises(ModelLoadError, match="not found"):
        FaceModel.load(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(DEFAULT_PATH.read_bytes()[:5000])  # truncated
    with pytest.raises(ModelLoadError, match="not a readable face model"):
        FaceModel.load(bad)


def test_api_shapes(model: FaceModel, mesh: Mesh):
    assert model.expression_names == EXPRESSION_NAMES
    lo, hi = model.bounds
    assert lo.shape == hi.shape == (3,) and np.all(hi > lo)
    assert model.mean_identity().shape == (model.identity_dim,)
    assert mesh.vertices.dtype == np.float32 and mesh.faces.dtype == np.int32
    assert mesh.uvs.min() >= 0 and mesh.uvs.max() <= 1
    assert np.allclose(np.linalg.norm(mesh.normals, axis=1), 1, atol=1e-3)
    assert model.expression_code(np.zeros(53)).ndim == 1
    with pytest.raises(ValueError):
        model.sdf(np.zeros((1, 3)), model.mean_identity(), np.zeros(7))


def test_head_has_plausible_size_and_is_closed(mesh: Mesh):
    ext = mesh.vertices.max(0) - mesh.vertices.min(0)
    # cm: width (ears; the neck cut leaves no shoulders), height, depth
    assert 15 < ext[0] < 30 and 26 < ext[1] < 40 and 18 < ext[2] < 28
    # closed surface (UV-seam copies welded by position): every edge has two triangles
    _, weld = np.unique(mesh.vertices.round(5), axis=0, return_inverse=True)
    f = weld.ravel()[mesh.faces]
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    assert (counts == 2).mean() > 0.999


def test_sdf_sign_and_zero_level(model: FaceModel, mesh: Mesh):
    z = model.mean_identity()
    rng = np.random.default_rng(0)
    idx = rng.choice(len(mesh.vertices), 2000, replace=False)
    v, n = mesh.vertices[idx], mesh.normals[idx]
    assert np.percentile(np.abs(model.sdf(v, z)), 95) < 0.03           # on the surface: ~0 cm
    outside, inside = model.sdf(v + 0.3 * n, z), model.sdf(v - 0.3 * n, z)
    assert (outside > 0).mean() > 0.97 and (inside < 0).mean() > 0.9
    assert np.median(outside) == pytest.approx(0.3, abs=0.06)          # it is a distance in cm
    lo, hi = model.bounds
    far = model.sdf(np.stack([lo + 0.1, hi - 0.1]), z)
    center = model.sdf(np.array([[0.0, 2.0, 0.0]], np.float32), z)       # inside the skull
    assert np.all(far > 2.0) and center[0] < -3.0


def test_expression_moves_the_zero_level(model: FaceModel):
    z = model.mean_identity()
    jaw = weights_from_dict({"jawOpen": 1.0})
    lm0, lm1 = model.landmarks(z), model.landmarks(z, jaw)
    assert lm1[8, 1] < lm0[8, 1] - 1.0                     # chin (landmark 8) drops > 1 cm
    assert abs(lm1[27, 1] - lm0[27, 1]) < 0.1              # nose bridge stays
    assert np.percentile(np.abs(model.sdf(lm1, z, jaw)), 90) < 0.05


def test_identity_code_to_mesh_to_landmarks_round_trip(model: FaceModel):
    rng = np.random.default_rng(3)
    for _ in range(2):
        z = model.sample_identity(rng)
        m = model.extract_mesh(z, None, 96)
        lm = model.landmarks(z)
        assert lm.shape == (68, 3) and lm.dtype == np.float32
        d = np.linalg.norm(lm[:, None] - m.vertices[None], axis=-1).min(1)
        assert d.max() < 0.5                                   # every landmark lies on the mesh
        assert np.percentile(np.abs(model.sdf(lm, z)), 90) < 0.05
        # anatomy: eyes above the mouth, nose tip in front, left/right mirrored
        assert lm[36:48, 1].mean() > lm[30, 1] > lm[48:68, 1].mean()
        assert lm[30, 2] > lm[36:48, 2].max()
        assert lm[36, 0] * lm[45, 0] < 0
    assert np.abs(model.landmarks(model.sample_identity(rng)) - model.landmarks(model.mean_identity())).max() > 0.2


def test_same_template_point_same_uv_for_every_identity(model: FaceModel):
    rng = np.random.default_rng(5)
    z1, z2 = model.sample_identity(rng), model.sample_identity(rng)
    m1, m2 = model.extract_mesh(z1, None, 64), model.extract_mesh(z2, None, 64)
    assert np.abs(m1.vertices - m2.vertices).max() > 0.3       # different faces...
    assert np.array_equal(m1.uvs, m2.uvs)                       # ...one UV layout
    # pulling each face's surface points back lands on the same template point, hence same UV
    idx = rng.choice(len(m1.vertices), 500, replace=False)
    uv1 = model.uv_at(m1.vertices[idx], z1)
    uv2 = model.uv_at(m2.vertices[idx], z2)
    assert np.median(np.linalg.norm(uv1 - uv2, axis=1)) < 0.003
    assert np.median(np.linalg.norm(uv1 - m1.uvs[idx], axis=1)) < 0.01


def test_animator_matches_extraction_and_is_fast(model: FaceModel, mesh: Mesh):
    z = model.mean_identity()
    anim = model.animator(mesh, z)
    assert isinstance(anim, Animator)
    assert np.allclose(anim.vertices(np.zeros(53)), mesh.vertices, atol=1e-4)
    w = weights_from_dict({"jawOpen": 0.7, "eyeBlink_L": 1.0, "mouthSmile_R": 0.5})
    direct = model.extract_mesh(z, w, 96).vertices
    assert np.abs(anim.vertices(w) - direct).max() < 1e-3
    mt = anim.morph_targets()
    assert mt.shape == (53, len(mesh.vertices), 3)
    assert np.linalg.norm(mt[INDEX["jawOpen"]], axis=1).max() > 1.5   # the jaw really opens
    assert np.linalg.norm(mt[INDEX["eyeBlink_L"]], axis=1).max() > 0.4
    times = []
    for _ in range(20):
        t = time.perf_counter()
        anim.vertices(w)
        times.append(time.perf_counter() - t)
    assert np.median(times) < 0.010


def test_shader_stages_match_reference(model: FaceModel, mesh: Mesh):
    z = model.mean_identity()
    w = weights_from_dict({"jawOpen": 0.3})
    stages = model.shader_networks(z, w)
    assert [s["kind"] for s in stages] == ["warp", "sdf"]
    rng = np.random.default_rng(1)
    pts = mesh.vertices[rng.choice(len(mesh.vertices), 1000)] + rng.normal(0, 1.0, (1000, 3)).astype(np.float32)
    ref = evaluate_stages_numpy(stages, pts)
    uncut = evaluate_stages_numpy([*stages[:-1], {**stages[-1], "clip_plane": None}], pts)
    zt = torch.from_numpy(z)
    ct = torch.from_numpy(model.expression_code(w))
    with torch.no_grad():
        direct = model.net.shader_sdf_value(torch.from_numpy(pts), zt, ct).numpy()
    assert np.abs(uncut - direct).max() < 1e-3      # the net's networks; the stages add the neck cut
    assert (ref >= uncut - 1e-6).all()
    exact = model.sdf(pts, z, w)
    far = np.abs(exact) > 0.5
    assert (np.sign(ref[far]) == np.sign(exact[far])).mean() > 0.95   # a faithful rendering proxy


def test_sdf_grid_layout(model: FaceModel):
    g, lo, hi = model.sdf_grid(model.mean_identity(), None, 48)
    assert g.shape == (48, 48, 48) and g.dtype == np.float32
    assert g.min() < 0 < g.max()
    # [z, y, x]: the face looks to +z, so the front face of the grid is outside everywhere
    assert np.all(g[-1] > 0) and g[24, 24, 24] < 0


def test_missing_facekit_gives_clear_message(tmp_path: Path):
    from core.facekit import load_facekit
    with pytest.raises(MissingDataError, match="ICT FaceKit"):
        load_facekit(tmp_path / "nowhere.npz")
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, something=np.zeros(3))
    with pytest.raises(MissingDataError, match="missing"):
        load_facekit(wrong)
    from main import main
    assert main(["eval-face-model", "--facekit", str(tmp_path / "nowhere.npz"), "--samples", "1"]) == 2
    assert main(["train-face-model", "--facekit", str(tmp_path / "nowhere.npz"), "--minutes", "0"]) == 2


@needs_facekit
@pytest.mark.shared
def test_encoded_ict_identity_matches_ground_truth():
    from core.facekit import load_facekit
    from core.facemodel.data import FaceData
    from core.facemodel.evaluate import surface_distances
    model = FaceModel.load()
    data = FaceData(load_facekit())
    rng = np.random.default_rng(11)
    a = rng.standard_normal(100).astype(np.float32)
    e = weights_from_dict({"jawOpen": 0.4, "mouthSmile_L": 0.6, "eyeBlink_R": 0.8})
    gt = data.skin(a, e)
    m = model.extract_mesh(model.encode_ict(a), e, 128)
    d = surface_distances(data, gt, m.vertices, m.faces, rng, n=5000)
    assert d.mean() < 0.1 and np.percentile(d, 95) < 0.3          # cm
    lm_gt = gt[data.topo.landmarks]
    assert np.linalg.norm(model.landmarks(model.encode_ict(a), e) - lm_gt, axis=1).mean() < 0.15


def test_viewport_mesh_is_one_part_within_budget(model: FaceModel):
    """The interactive mesh: one connected head (no specks), decimated to its triangle budget,
    and still the same face as the full mesh (its vertices lie on the full surface)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    z = model.mean_identity()
    light = model.extract_mesh(z, None, 128, max_triangles=30_000)
    full = model.extract_mesh(z, None, 128)
    assert len(light.faces) <= 30_000 < len(full.faces)
    _, weld = np.unique(light.vertices.round(5), axis=0, return_inverse=True)
    f = weld.ravel()[light.faces]
    n = f.max() + 1
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]]])
    parts, _ = connected_components(coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)))
    assert parts == 1
    d, _ = cKDTree(full.vertices).query(light.vertices)
    assert np.median(d) < 0.1  # cm
    anim = model.animator(light, z)
    assert anim.vertices(np.zeros(53, np.float32)).shape == light.vertices.shape
