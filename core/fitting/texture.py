"""Texture from a fitted photo, in the model's shared UV layout (docs/FACEMODEL.md).

1. Rasterise the fitted mesh in UV space: every texel gets its 3D point and normal in the
   photo's camera frame, and the UV of its mirror point (x -> -x in template space).
2. Project each texel into the photo; it takes the photo's colour where it is visible (depth
   test against the fitted surface), inside the face outline the landmarker found, weighted by
   how squarely the surface faces the camera.
3. Take out the photo's shading: divide by the fitted 2nd-order spherical-harmonic shading at
   the texel's normal (normalised to mean 1, so the skin keeps its colour).
4. Fill what the photo does not show: first the mirrored texel where that side was seen, then
   the default skin texture recoloured to the measured skin tone, its low frequencies pulled
   toward the photo near the boundary; all weights feathered so there are no seams.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import cKDTree

from core.appearance.model import to_linear as _to_linear, to_srgb as _to_srgb

from .camera import PinholeCamera
from .raster import camera_depth, rasterize, uv_clip

SH_C = np.array([0.886, 1.023, 1.023, 1.023, 0.858, 0.858, 0.248, 0.858, 0.429])


@dataclass
class ProjectedTexture:
    texture: np.ndarray       # (S, S, 3) uint8 RGB, row 0 = v 1
    weight: np.ndarray        # (S, S) float32: share of the photo in each texel (after mirroring)
    covered: np.ndarray       # (S, S) bool: texels the mesh occupies in UV space
    face_region: np.ndarray   # (S, S) bool: texels of the face (the part the photo can show)
    skin_tone: np.ndarray     # (3,) uint8 sRGB
    code: np.ndarray | None = None   # the fitted appearance (texture) code, when a model filled


def sh_shading(normals: np.ndarray, light: np.ndarray) -> np.ndarray:
    x, y, z = normals[..., 0], normals[..., 1], normals[..., 2]
    basis = np.stack([np.ones_like(x), y, z, x, x * y, y * z, 3 * z * z - 1, x * z, x * x - y * y], -1) * SH_C
    return basis @ light


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(a.astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def _normalized_blur(values: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Weighted low-pass: fills where weight is 0 from weighted neighbours (push-pull like)."""
    num = _blur(values * weight[..., None], sigma)
    den = _blur(weight, sigma)[..., None]
    return num / np.maximum(den, 1e-6)


def mirror_uvs(template: np.ndarray, uvs: np.ndarray) -> np.ndarray:
    """Per vertex, the UV of the vertex nearest its mirror image (x -> -x) in template space."""
    mirrored = template * np.array([-1.0, 1.0, 1.0], np.float32)
    _, idx = cKDTree(template).query(mirrored)
    return uvs[idx]


@dataclass
class PhotoObservation:
    """What a photo shows of the fitted face, per texel of the shared UV layout."""
    linear: np.ndarray        # (S, S, 3) float32 linear RGB, shading taken out where delit
    weight: np.ndarray        # (S, S) float32 in [0, 1]: visibility x view angle x face outline
    covered: np.ndarray       # (S, S) bool: texels the mesh occupies in UV space
    mirror_uv: np.ndarray     # (S, S, 2) UV of each texel's mirror point
    light: np.ndarray | None  # (9, 3) SH light used for delighting


def observe_photo(image_rgb: np.ndarray, camera: PinholeCamera, mesh, face_outline: np.ndarray | None,
                  light: np.ndarray | None = None, size: int = 1024, delight: bool = True) -> PhotoObservation:
    """Project the photo onto `mesh` (the fitted face, with uvs, normals and template points)
    seen by `camera`: colour and confidence of every texel, no fill. `face_outline` (N, 2)
    pixels bounds what may be projected (None: everything visible); `light` (9, 3) linear-RGB
    SH coefficients of the photo's light (fitted here on the face when None)."""
    h, w = image_rgb.shape[:2]
    vc = camera.to_camera(mesh.vertices).astype(np.float32)
    nc = (mesh.normals @ np.asarray(camera.rotation, np.float32).T).astype(np.float32)
    zbuf = camera_depth(camera, vc, mesh.faces)

    clip = uv_clip(mesh.uvs)
    pos, covered = rasterize(clip, mesh.faces, vc, size, size)
    nrm, _ = rasterize(clip, mesh.faces, nc, size, size)
    muv, _ = rasterize(clip, mesh.faces, mirror_uvs(mesh.template, mesh.uvs), size, size)
    nrm /= np.maximum(np.linalg.norm(nrm, axis=-1, keepdims=True), 1e-6)

    # --- visibility and view-angle weight of each texel in the photo
    depth = np.maximum(-pos[..., 2], 1e-3)
    cx, cy = camera.center
    px = (cx + camera.focal * pos[..., 0] / depth).astype(np.float32)
    py = (cy - camera.focal * pos[..., 1] / depth).astype(np.float32)
    inside = covered & (px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)
    zi = zbuf[np.clip(py.round().astype(int), 0, h - 1), np.clip(px.round().astype(int), 0, w - 1)]
    visible = inside & (np.abs(zi - pos[..., 2]) < 0.25)
    view = -pos / np.maximum(np.linalg.norm(pos, axis=-1, keepdims=True), 1e-6)
    cos = (nrm * view).sum(-1)
    weight = np.clip((cos - 0.25) / 0.45, 0.0, 1.0) * visible
    if face_outline is not None and len(face_outline) >= 3:
        mask = np.zeros((h, w), np.uint8)
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(face_outline).astype(np.int32)), 255)
        erode = max(2, int(0.03 * np.ptp(face_outline[:, 0])))
        mask = cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=erode)
        soft = _blur(mask.astype(np.float32) / 255.0, erode)
        weight *= cv2.remap(soft, px, py, cv2.INTER_LINEAR, borderValue=0)

    photo = cv2.remap(image_rgb.astype(np.float32) / 255.0, px, py, cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE)
    lin = _to_linear(photo)

    # --- take out the shading
    good = weight > 0.5
    if delight and good.sum() > 200:
        if light is None:
            light = _fit_light(lin[good], nrm[good])
        shade = np.maximum(sh_shading(nrm, light), 1e-3)                      # (S, S, 3)
        mean = (shade[good] * weight[good, None]).sum(0) / weight[good].sum()
        ratio = np.clip(shade / mean, 0.35, 3.0)
        lin = lin / ratio
    else:
        light = None
    return PhotoObservation(np.clip(lin, 0.0, 1.0).astype(np.float32), weight.astype(np.float32),
                            covered, muv.astype(np.float32), light)


def project_texture(image_rgb: np.ndarray, camera: PinholeCamera, mesh, face_outline: np.ndarray | None,
                    base_texture: np.ndarray, light: np.ndarray | None = None, size: int = 1024,
                    delight: bool = True, appearance=None) -> ProjectedTexture:
    """Texture for `mesh` seen by `camera` in `image_rgb` (see observe_photo): the photo where
    it shows the face; elsewhere, with an `appearance` model (core.appearance.AppearanceModel),
    what the texture code fitted to the seen part decodes to, else the mirrored texel where that
    side was seen and the default skin `base_texture` recoloured to the photo's skin tone."""
    obs = observe_photo(image_rgb, camera, mesh, face_outline, light, size, delight)
    lin, weight, covered, muv = obs.linear, obs.weight, obs.covered, obs.mirror_uv
    fill_linear = code = None
    if appearance is not None:
        from core.appearance.samples import reduce_observation
        from core.appearance.model import mirror_index
        small_lin, small_w = reduce_observation(lin, weight * covered, appearance.size)
        small_muv = cv2.resize(muv, (appearance.size,) * 2, interpolation=cv2.INTER_NEAREST)
        code = appearance.encode_symmetric(small_lin, small_w, mirror_index(small_muv))
        fill_linear = appearance.decode_linear(code, size)
    face_region = _blur((weight > 0).astype(np.float32), 3) > 0.05
    good = weight > 0.5

    base = _to_linear(base_texture[..., :3].astype(np.float32) / 255.0)
    if base.shape[:2] != (size, size):
        base = cv2.resize(base, (size, size), interpolation=cv2.INTER_AREA)
    skin = good & _skin_like(lin)
    if skin.sum() < 100:
        skin = good
    tone = np.median(lin[skin], 0) if skin.any() else np.median(base[covered], 0)
    w_photo = _blur(weight, 1.5)
    if fill_linear is not None:
        fill = fill_linear if fill_linear.shape[:2] == (size, size) else cv2.resize(
            fill_linear, (size, size), interpolation=cv2.INTER_LINEAR)
        # the code explains the low frequencies; the photo's detail stays where it is seen
        diff = _normalized_blur(lin - fill, weight, size / 96)
        reach = np.clip(_blur(weight, size / 48) * 4.0, 0.0, 1.0)[..., None]
        fill = np.clip(fill + diff * reach, 0.0, 1.0)
        out = fill * (1 - w_photo[..., None]) + lin * w_photo[..., None]
        rgb = (np.clip(_to_srgb(out), 0, 1) * 255 + 0.5).astype(np.uint8)
        tone_srgb = (np.clip(_to_srgb(tone), 0, 1) * 255 + 0.5).astype(np.uint8)
        return ProjectedTexture(rgb, w_photo.astype(np.float32), covered, face_region, tone_srgb, code)

    # --- fill: recoloured default skin, mirrored photo, then the photo itself
    base_tone = np.median(base[skin], 0) if skin.any() else tone
    fill = base * (tone / np.maximum(base_tone, 1e-4))
    # low frequencies of the fill follow the photo near where the photo is (no tone step)
    diff = _normalized_blur(lin - fill, weight, size / 48)
    reach = np.clip(_blur(weight, size / 24) * 4.0, 0.0, 1.0)[..., None]
    fill = np.clip(fill + diff * reach, 0.0, 1.0)

    mirror, w_mirror = mirror_fill(lin, weight, muv, covered)
    out = fill * (1 - w_mirror[..., None]) + mirror * w_mirror[..., None]
    out = out * (1 - w_photo[..., None]) + lin * w_photo[..., None]
    rgb = (np.clip(_to_srgb(out), 0, 1) * 255 + 0.5).astype(np.uint8)
    tone_srgb = (np.clip(_to_srgb(tone), 0, 1) * 255 + 0.5).astype(np.uint8)
    return ProjectedTexture(rgb, np.maximum(w_photo, w_mirror).astype(np.float32), covered, face_region, tone_srgb)


def mirror_fill(lin: np.ndarray, weight: np.ndarray, mirror_uv: np.ndarray,
                covered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mirrored texel's colour and how much to trust it where the texel itself was not seen."""
    size = lin.shape[0]
    mx = np.clip(mirror_uv[..., 0] * (size - 1), 0, size - 1).astype(np.float32)
    my = np.clip((1 - mirror_uv[..., 1]) * (size - 1), 0, size - 1).astype(np.float32)
    mirror = cv2.remap(lin.astype(np.float32), mx, my, cv2.INTER_LINEAR)
    w_mirror = cv2.remap(weight.astype(np.float32), mx, my, cv2.INTER_LINEAR) * covered
    w_mirror = np.minimum(_blur(w_mirror, 2.0), 1.0) * (1.0 - np.minimum(_blur(weight, 2.0) * 2, 1.0))
    return mirror, w_mirror


def _skin_like(lin: np.ndarray) -> np.ndarray:
    """Texels whose colour is plausibly skin (excludes brows, eyes, lips' extremes, shadows)."""
    srgb = _to_srgb(lin)
    r, g, b = srgb[..., 0], srgb[..., 1], srgb[..., 2]
    lum = 0.3 * r + 0.59 * g + 0.11 * b
    return (lum > 0.15) & (lum < 0.97) & (r >= g * 0.9) & (r >= b * 0.9)


def _fit_light(colors: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """SH light (9, 3) that best explains `colors` as a constant albedo under it."""
    x, y, z = normals[:, 0], normals[:, 1], normals[:, 2]
    basis = np.stack([np.ones_like(x), y, z, x, x * y, y * z, 3 * z * z - 1, x * z, x * x - y * y], -1) * SH_C
    reg = 1e-2 * np.eye(9)
    return np.linalg.solve(basis.T @ basis + reg * len(basis), basis.T @ colors)
