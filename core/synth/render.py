"""Rendering synthetic faces: one person set up on the GL context, then many shots of them."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.expressions import EXPRESSION_NAMES
from core.fer.crop import face_crop

from .faces import (
    FACE_FILL,
    SIZE,
    Backdrops,
    Identity,
    SynthFace,
    action_units,
    expression_weights,
    photo_tone,
    random_lighting,
)
from .wrinkles import add_wrinkles

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


def paint_brows_and_lids(tex: np.ndarray, lm_uv: np.ndarray, brows: tuple[float, float, float]) -> np.ndarray:
    """Darken brows (landmarks 17-26) and upper lid lines (36-39, 42-45) into a texture.

    The appearance model's textures carry almost no brows (they average out over the photos
    it was fitted to), yet at 48x48 the brows are most of what anger, sadness, fear and
    surprise show. Drawn in UV space they move with the mesh. `brows`: darkness 0..1,
    thickness (fraction of the brow's length), warmth."""
    h, w = tex.shape[:2]
    px = np.stack([lm_uv[:, 0] * w, (1 - lm_uv[:, 1]) * h], 1)
    # the brow landmarks trace the brows' upper edge: draw the hair a little below them
    eye_y = px[36:48, 1].mean()
    px[17:27, 1] += 0.22 * (eye_y - px[17:27, 1])
    dark, thick, warm = brows
    mask = np.zeros((h, w), np.float32)
    for a, b in ((17, 22), (22, 27)):
        pts = px[a:b]
        length = float(np.linalg.norm(pts[-1] - pts[0]))
        t = max(2, int(length * thick))
        inner = 0 if a == 22 else 4          # the brow is thickest at its inner end
        for k in range(4):
            tk = t if min(k, 3 - k) >= 1 or k == (3 if inner else 0) else max(2, int(t * 0.6))
            cv2.line(mask, tuple(int(v) for v in pts[k]), tuple(int(v) for v in pts[k + 1]), 1.0, tk, cv2.LINE_AA)
    for a, b in ((36, 40), (42, 46)):
        cv2.polylines(mask, [px[a:b].astype(np.int32)], False, 0.6, max(2, int(w / 300)), cv2.LINE_AA)
    mask = cv2.GaussianBlur(mask, (0, 0), w / 500) * dark
    col = np.array([0.35 + 0.1 * warm, 0.3, 0.27 - 0.05 * warm], np.float32)  # brow hair relative to skin
    out = tex.astype(np.float32) * (1 - mask[..., None] * (1 - col))
    return np.clip(out, 0, 255).astype(np.uint8)


@dataclass
class PersonParts:
    """A person's meshes, morph targets, hair, eyes and mouth and painted texture: the CPU half
    of setting a person up (~1-2 s), which may run on another thread while the renderer is busy
    with the previous person (nothing here touches the GL context)."""
    mesh: object
    anim: object
    head: object
    hair: object
    lm_index: np.ndarray
    texture: np.ndarray | None


def build_person(model, appearance_model, person: Identity) -> PersonParts:
    from scipy.spatial import cKDTree

    from core.head.build import build_head_parts
    from core.head.hair import build_hair

    mesh = model.extract_mesh(person.identity, None, resolution=96, max_triangles=20_000)
    anim = model.animator(mesh, person.identity)
    head = build_head_parts(person.identity, person.eyes)
    # In photos the eye opening is shadowed by the lids and lashes; the renderer has neither
    # lashes nor occlusion, so bare sclera shines as bright as lit skin and every eye
    # stares (neutral and sad faces read as fear or surprise at 48x48).
    for part in head.parts:
        if part.name.startswith("eye_"):
            part.colour = tuple(float(c) * person.eye_shade for c in part.colour)
    hair = build_hair(model, person.hair, mesh, anim)
    # the 68 landmarks ride on their nearest mesh vertices: posed with the mesh itself,
    # at no cost (the face model's landmark network takes ~50 ms a call here)
    lm_index = cKDTree(mesh.vertices).query(model.landmarks(person.identity, None))[1]
    tex = appearance_model.decode(person.appearance) if appearance_model is not None else None
    texture = None if tex is None else paint_brows_and_lids(tex, mesh.uvs[lm_index], person.brows)
    return PersonParts(mesh, anim, head, hair, lm_index, texture)


class PersonRenderer:
    """A synthetic person on a headless renderer: `shot(label, rng)` -> SynthFace. `parts`:
    made beforehand by build_person (e.g. on another thread), else built here."""

    def __init__(self, model, appearance_model, person: Identity, renderer, size: int = SIZE,
                 backdrops: Backdrops | None = None, parts: PersonParts | None = None):
        self.model, self.person, self.r, self.size = model, person, renderer, size
        self.backdrops = backdrops or Backdrops(np.random.default_rng(0), size)
        parts = parts or build_person(model, appearance_model, person)
        self.mesh, self.anim, self.head, self.hair = parts.mesh, parts.anim, parts.head, parts.hair
        self.lm_index, self.texture = parts.lm_index, parts.texture
        # posed = neutral + weights . targets, as einsum: BLAS's threaded gemv spin-waits against
        # the software rasteriser's threads (measured 15 ms a shot on the busy machine, 0.5 here)
        self._neutral = self.anim.neutral().reshape(-1)
        self._targets = self.anim.morph_targets().reshape(len(EXPRESSION_NAMES), -1)
        self.lids = self._neutral_lids()
        self.activate()

    def _neutral_lids(self) -> float:
        """This person's relaxed eyeBlink for neutral (core.synth.faces.neutral_lids)."""
        from core.expressions import _both, weights_from_dict

        from .faces import PROTOTYPES, neutral_lids
        proto = {k: v for k, v in PROTOTYPES["neutral"].items() if k != "eyeBlink"}
        w = weights_from_dict({k: v for n, x in proto.items() for k, v in _both(n, x).items()})
        wb = weights_from_dict({k: v for n, x in {**proto, "eyeBlink": 1.0}.items() for k, v in _both(n, x).items()})
        pose = lambda w: (self._neutral + w @ self._targets).reshape(-1, 3)[self.lm_index]
        return neutral_lids(pose(w), pose(wb))

    def activate(self) -> None:
        """Put this person on the renderer (several people can take turns on one context)."""
        r = self.r
        r.set_mesh(self.mesh.vertices, self.mesh.faces, self.mesh.uvs)
        if self.texture is not None:
            r.set_texture(self.texture)
        r.set_parts("head", self.head.parts)
        r.set_hair(None if self.hair.empty else self.hair)

    def shot(self, label: str, rng: np.random.Generator) -> SynthFace:
        from core.head.hair import pose_hair
        from core.render import OrbitCamera

        w, info = expression_weights(label, rng, self.lids)
        r = self.r
        posed = (self._neutral + np.einsum("i,ij->j", w, self._targets)).reshape(-1, 3)
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
        aus = action_units(w)
        rgba = np.array(rgba)                 # the read-back buffer is read-only
        add_wrinkles(rgba[..., :3], lm, aus)
        # in-plane roll: turn the picture (and its points) about the face centre
        centre = tuple(float(v) for v in lm.mean(0))
        m = cv2.getRotationMatrix2D(centre, float(roll), 1.0)
        rgba = cv2.warpAffine(rgba, m, (self.size, self.size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0))
        lm = lm @ m[:, :2].T + m[:, 2]
        bg = self.backdrops.background(rng).astype(np.float32)
        a = rgba[..., 3:4].astype(np.float32) * np.float32(1 / 255)
        img = bg + (rgba[..., :3].astype(np.float32) - bg) * a
        img, contrast = photo_tone(img, a, rng)
        sigma = float(rng.uniform(0, 1.2))
        if sigma > 0.3:
            img = cv2.GaussianBlur(img, (0, 0), sigma)
        img += self.backdrops.noise(rng, float(rng.uniform(0, 6)))
        img = np.clip(img, 0, 255).astype(np.uint8)
        if rng.random() < 0.5:      # JPEG-like loss, as in photos from the web
            _, enc = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 90))])
            img = cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1]
        crop, _ = face_crop(cv2.cvtColor(img, cv2.COLOR_RGB2BGR), crop_landmarks(lm))
        lo, hi = lm.min(0), lm.max(0)
        box = (float(lo[0]), float(lo[1] - 0.25 * (hi[1] - lo[1])), float(hi[0] - lo[0]), float(1.25 * (hi[1] - lo[1])))
        info.update({"yaw": float(yaw), "pitch": float(pitch), "roll": float(roll), "blur": sigma, "contrast": contrast,
                     "source": self.person.source, "hair": self.person.hair.style})
        return SynthFace(np.ascontiguousarray(img), crop, label, w, aus, box, lm, info)
