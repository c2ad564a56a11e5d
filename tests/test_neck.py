"""The clean neck cut (core.facemodel.neck): a smooth rim in meshes, SDF views and exports, the
same template-space cut for every identity and expression."""
from __future__ import annotations

import numpy as np
import pytest

from core.facemodel import FaceModel, neck
from core.facemodel.mesh import marching_cubes

MAX_TURN_DEG = 35.0


@pytest.fixture(scope="module")
def model() -> FaceModel:
    return FaceModel.load()


def _weld(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge UV-seam copies (same position) so the mesh's topology shows."""
    uniq, inv = np.unique(np.round(vertices, 5), axis=0, return_inverse=True)
    return uniq, inv.reshape(-1)[faces]


def _rim(mesh) -> np.ndarray:
    """The neck rim of an extracted mesh, as posed vertices in loop order: the boundary of the
    skin once the cap (triangles lying in the cut plane in template space) is removed."""
    t, f = _weld(mesh.template, mesh.faces)
    cap = (np.abs(neck.height(t))[f] < 1e-3).all(1)
    loops = neck.boundary_loops(f[~cap])
    assert len(loops) == 1, f"the neck rim must be one closed loop, got {len(loops)}"
    # the posed position of each welded template vertex
    _, first = np.unique(np.round(mesh.template, 5), axis=0, return_index=True)
    return mesh.vertices[first][loops[0]]


def _max_turn(points: np.ndarray) -> float:
    c = points.mean(0)
    normal = np.linalg.svd(points - c)[2][2]
    return float(np.abs(neck.turning_angles(points, normal)).max())


@pytest.mark.parametrize("resolution,max_triangles", [(96, None), (128, 30_000)])
def test_mesh_rim_is_one_smooth_closed_loop(model, resolution, max_triangles):
    rng = np.random.default_rng(3)
    w = np.zeros(53, np.float32)
    w[[0, 24]] = 0.7
    for z, e in ((model.mean_identity(), None), (model.sample_identity(rng), w)):
        mesh = model.extract_mesh(z, e, resolution, max_triangles)
        rim = _rim(mesh)
        assert len(rim) > 100
        assert _max_turn(rim) < MAX_TURN_DEG
        # closed (cap included): every welded edge has two triangles
        _, f = _weld(mesh.vertices, mesh.faces)
        assert not neck.boundary_loops(f)


def test_old_saw_toothed_cut_fails_the_same_bound(model):
    """The metric catches the teeth: the uncut marching-cubes surface cut through its old
    flat cap turns by far more than the bound."""
    vt, faces = marching_cubes(model._template_grid(96), *model.bounds)
    v, f = neck.clip_mesh(vt, faces, offset=neck.NECK_OFFSET - 2.0)
    loops = neck.boundary_loops(f)
    worst = max(np.abs(neck.turning_angles(v[l])).max() for l in loops)
    assert worst > MAX_TURN_DEG


def test_cut_is_the_same_in_template_space_for_every_face(model):
    rng = np.random.default_rng(5)
    a = model.extract_mesh(model.mean_identity(), None, 64)
    b = model.extract_mesh(model.sample_identity(rng), rng.uniform(0, 1, 53).astype(np.float32), 64)
    np.testing.assert_array_equal(a.template, b.template)
    np.testing.assert_array_equal(a.faces, b.faces)
    assert neck.height(a.template).min() > -1e-3     # nothing below the plane
    anim = model.animator(b, model.mean_identity())
    assert anim.morph_targets().shape[1] == len(b.vertices)


def test_sdf_is_cut_by_the_same_plane(model):
    z = model.mean_identity()
    tm = model._template_mesh(64)
    lo = tm["vt"][np.argmin(neck.height(tm["vt"]))]          # a point on the cap
    below = lo - 1.0 * neck.NECK_NORMAL
    d = model.sdf(np.stack([below, lo + 0.5 * neck.NECK_NORMAL]), z, model.rest_expression)
    assert d[0] > 0.5                                      # outside: cut away
    stages = model.shader_networks(z)
    assert stages[-1]["clip_plane"][3] == pytest.approx(neck.NECK_OFFSET)


def _bottom_profile(img: np.ndarray) -> np.ndarray:
    """Row of the lowest foreground pixel of every column that has one (alpha > 127)."""
    fg = img[..., 3] > 127
    cols = np.flatnonzero(fg.any(0))
    rows = fg.shape[0] - 1 - np.argmax(fg[::-1, cols], axis=0)
    return rows.astype(np.float64)


@pytest.mark.parametrize("mode", ["sdf", "mesh"])
def test_rendered_bottom_edge_is_smooth(model, mode):
    """Seen from behind and below, the image's bottom edge is the neck rim: a smooth curve
    (second difference <= 2 px at 384^2), where the old cut's teeth (and a sharp-edged cut
    baked into the grid) reach 4-5 px."""
    from core.render import OrbitCamera
    from core.render.renderer import render_offscreen

    z = model.mean_identity()
    mesh = model.extract_mesh(z, None, 96)
    box = (mesh.vertices.min(0), mesh.vertices.max(0))
    cam = OrbitCamera(yaw=180, pitch=-30).frame(*box, margin=0.9)
    kw = dict(mesh=(mesh.vertices, mesh.faces, mesh.uvs)) if mode == "mesh" else \
        dict(sdf=model.sdf_grid(z, None, 96))
    img = render_offscreen(384, 384, cam, mode=mode, view="shaded", **kw)
    prof = _bottom_profile(img)
    p = prof[prof > prof.max() - 40][4:-4]     # the rim's columns, without its two corners
    assert len(p) > 100
    rough = np.abs(np.diff(p, 2))
    assert rough.max() <= 2.0, rough.max()
