"""Rendering synthetic faces: one person set up on the GL context, then many shots of them."""
from __future__ import annotations

import cv2
import numpy as np

from core.fer.crop import face_crop

from .faces import FACE_FILL, SIZE, Identity, SynthFace, action_units, background, expression_weights, random_lighting

# 68-point (Multi-PIE) landmarks standing in for the MediaPipe points core.fer.crop aligns on
_MP_FROM_68 = {33: 36, 133: 39, 362: 42, 263: 45, 13: 62, 14: 66}


def crop_landmarks(lm68: np.ndarray) -> np.ndarray:
    """A (478, 2) array holding the points face_crop reads, taken from 68 landmarks."""
    out = np.zeros((478, 2), np.float32)
    for mp, i in _MP_FROM_68.items():
        out[mp] = lm68[i, :2]
    return out


def project(points: np.ndarray, camera, width: int, height: int) -> np.ndarray:
    """(N, 3) world points -> (N, 2) pixels, row 0 at the top."""
    vp = camera.projection_matrix(width / height) @ camera.view_matrix()
    p = np.c_[points, np.ones(len(points))] @ vp.T
    ndc = p[:, :2] / p[:, 3:4]
    return np.stack([(ndc[:, 0] * 0.5 + 0.5) * width, (0.5 - ndc[:, 1] * 0.5) * height], 1).astype(np.float32)


class PersonRenderer:
    """A synthetic person on a headless renderer: `shot(label, rng)` -> SynthFace."""

    def __init__(self, model, appearance_model, person: Identity, renderer, size: int = SIZE):
        from core.head.build import build_head_parts
        from core.head.hair import build_hair

        self.model, self.person, self.r, self.size = model, person, renderer, size
        mesh = model.extract_mesh(person.identity, None, resolution=96, max_triangles=20_000)
        self.anim = model.animator(mesh, person.identity)
        self.head = build_head_parts(person.identity, person.eyes)
        self.hair = build_hair(model, person.hair, mesh, self.anim)
        r = self.r
        r.set_mesh(mesh.vertices, mesh.faces, mesh.uvs)
        tex = appearance_model.decode(person.appearance) if appearance_model is not None else None
        if tex is not None:
            r.set_texture(tex)
        r.set_parts("head", self.head.parts)
        r.set_hair(None if self.hair.empty else self.hair)
        # the 68 landmarks ride on their nearest mesh vertices: posed with the mesh itself,
        # at no cost (the face model's landmark network takes ~50 ms a call here)
        from scipy.spatial import cKDTree
        rest = model.landmarks(person.identity, None)
        self.lm_index = cKDTree(mesh.vertices).query(rest)[1]

    def shot(self, label: str, rng: np.random.Generator) -> SynthFace:
        from core.head.hair import pose_hair
        from core.render import OrbitCamera

        w, info = expression_weights(label, rng)
        r = self.r
        posed = self.anim.vertices(w)
        r.update_vertices(posed)
        verts, carves = self.head.pose(w)
        r.update_parts("head", verts)
        r.set_carves(carves)
        if not self.hair.empty:
            r.update_hair(*pose_hair(self.hair, w))
        lm3 = np.asarray(posed, np.float64)[self.lm_index]
        yaw, pitch, roll = rng.uniform(-30, 30), rng.uniform(-15, 15), rng.uniform(-12, 12)
        # aim at the face (the landmarks), distance set so the face fills FACE_FILL x zoom
        cam = OrbitCamera(yaw=float(yaw), pitch=float(pitch))
        cam.target = lm3.mean(0).astype(np.float64)
        width_cm = float(np.ptp(lm3[:, 0])) * 1.15
        fill = FACE_FILL * rng.uniform(0.75, 1.2)
        cam.distance = width_cm / fill / (2 * np.tan(np.radians(cam.fov) / 2))
        light = random_lighting(rng)
        rgba = r.render_image(self.size, self.size, cam, view="textured", lighting=light)
        lm = project(lm3, cam, self.size, self.size)
        # in-plane roll: turn the picture (and its points) about the face centre
        centre = tuple(float(v) for v in lm.mean(0))
        m = cv2.getRotationMatrix2D(centre, float(roll), 1.0)
        rgba = cv2.warpAffine(rgba, m, (self.size, self.size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0))
        lm = lm @ m[:, :2].T + m[:, 2]
        bg = background(rng, self.size).astype(np.float32)
        a = rgba[..., 3:4].astype(np.float32) / 255.0
        img = rgba[..., :3].astype(np.float32) * a + bg * (1 - a)
        sigma = float(rng.uniform(0, 1.2))
        if sigma > 0.3:
            img = cv2.GaussianBlur(img, (0, 0), sigma)
        img += rng.normal(0, rng.uniform(0, 6), img.shape).astype(np.float32)
        img = np.clip(img, 0, 255).astype(np.uint8)
        if rng.random() < 0.5:      # JPEG-like loss, as in photos from the web
            ok, enc = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 90))])
            img = cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1]
        crop, _ = face_crop(cv2.cvtColor(img, cv2.COLOR_RGB2BGR), crop_landmarks(lm))
        lo, hi = lm.min(0), lm.max(0)
        box = (float(lo[0]), float(lo[1] - 0.25 * (hi[1] - lo[1])), float(hi[0] - lo[0]), float(1.25 * (hi[1] - lo[1])))
        info.update({"yaw": float(yaw), "pitch": float(pitch), "roll": float(roll), "blur": sigma,
                     "source": self.person.source, "hair": self.person.hair.style})
        return SynthFace(np.ascontiguousarray(img), crop, label, w, action_units(w), box, lm, info)
