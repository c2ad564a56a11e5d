"""Ambient occlusion per vertex (core/render/occlusion.py): cavities are found and drawn darker."""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from core.render.camera import OrbitCamera
from core.render.geometry import uv_sphere, vertex_normals
from core.render.occlusion import mesh_occlusion, vertex_occlusion
from core.render.renderer import Renderer, headless_context
from core.render.scene import VIEWPORT_MAX_TRIANGLES, load_scene, show_scene


def test_a_convex_sphere_is_open_everywhere_and_the_inside_of_a_bowl_is_not():
    v, f, _ = uv_sphere(10.0, 24, 48)
    occ = vertex_occlusion(v, f, vertex_normals(v, f), directions=32, size=128)
    assert occ.min() > 0.95, occ.min()
    # the same sphere seen from inside (normals flipped): every direction hits the shell
    inside = vertex_occlusion(v, f[:, ::-1], -vertex_normals(v, f), directions=32, size=128)
    assert np.percentile(inside, 95) < 0.1, np.percentile(inside, 95)   # (the poles' normals are degenerate)


def test_the_nostrils_are_occluded_and_render_darker_than_without():
    scene = load_scene(resolution=96, max_triangles=VIEWPORT_MAX_TRIANGLES)
    occ = scene.occlusion()
    assert occ.shape == (len(scene.vertices),) and mesh_occlusion(scene.vertices, scene.faces) is occ  # kept per topology
    lm = scene.landmarks()
    tree = cKDTree(scene.vertices)
    nostrils = np.concatenate([tree.query_ball_point(lm[k], 0.6) for k in (31, 35)])
    tip = tree.query_ball_point(lm[30], 0.6)
    assert occ[nostrils].min() < 0.8 and occ[tip].mean() > 0.95, (occ[nostrils].min(), occ[tip].mean())
    # under the nose, seen from below: the cavity's pixels get darker with the occlusion on
    r = Renderer(headless_context())
    try:
        show_scene(r, scene)
        cam = OrbitCamera(yaw=0, pitch=-35).frame(*r.bounds("mesh"), margin=0.9)
        cam.distance, cam.target = 28.0, lm[33].astype(np.float64)
        with_occ = r.render_image(256, 256, cam, view="shaded")[..., :3].astype(float)
        r.set_occlusion(None)
        without = r.render_image(256, 256, cam, view="shaded")[..., :3].astype(float)
    finally:
        r.release()
    deep = nostrils[occ[nostrils] < 0.9]
    px = cam.project(scene.vertices[deep], 256, 256)
    rows, cols = np.clip(px[:, 1].astype(int), 0, 255), np.clip(px[:, 0].astype(int), 0, 255)
    darker = without[rows, cols].mean() - with_occ[rows, cols].mean()
    assert darker > 10, darker
    # open skin far from any cavity is unchanged
    assert np.abs(with_occ - without).mean() < 3.0
