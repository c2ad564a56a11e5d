"""Photo -> avatar: read, detect, fit, texture, and the side-by-side overlay of the fit."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from core.avatar import Avatar

from .fit import MP_FACE_OVAL, FaceFitter, FitCancelled, FitError, FitOptions, FitResult
from .photo import PhotoError, load_photo
from .texture import ProjectedTexture, project_texture

_FITTER: FaceFitter | None = None


def shared_fitter() -> FaceFitter:
    """One fitter per process (loading the model and precomputing fields takes ~1 s)."""
    global _FITTER
    if _FITTER is None:
        _FITTER = FaceFitter()
    return _FITTER


def _appearance_model():
    """The shipped texture model, or None (mirror + default skin fill) when it cannot be read."""
    from core.appearance import AppearanceModelError, shared_model
    try:
        return shared_model()
    except AppearanceModelError as exc:
        import logging
        logging.getLogger(__name__).warning("%s; unseen skin is filled by mirroring instead", exc)
        return None


@dataclass
class PhotoAvatar:
    avatar: Avatar
    fit: FitResult
    image: np.ndarray                 # the photo as fitted (RGB, upright, maybe reduced)
    scale: float                      # fitted pixels per original pixel
    texture: ProjectedTexture
    faces: list                       # all detected faces, largest first
    face_index: int                   # which one was fitted
    mesh: object                      # the fitted mesh (core.facemodel.mesh.Mesh)


DETECT_MAX_SIDE = 4096    # faces are looked for on at most this many pixels on the long side


def detail_image(source, scale: float) -> np.ndarray | None:
    """The photo at up to DETECT_MAX_SIDE pixels when its fitting copy (`scale` < 1) was reduced,
    so small faces in big photos are detected on their own pixels; None when not needed."""
    if source is None or scale >= 1.0:
        return None
    try:
        image, _ = load_photo(source, max_side=DETECT_MAX_SIDE)
    except PhotoError:
        return None
    return image


def detect_faces(photo, fitter: FaceFitter | None = None, source=None, tracker=None,
                 method: str = "blazeface") -> tuple[np.ndarray, float, list]:
    """(image, scale, faces largest first) for a path, bytes or array, or for an already read
    (image, scale) with its `source` (a path, bytes or array: a reduced photo is then searched
    at a higher resolution). Raises PhotoError/FitError."""
    if isinstance(photo, tuple):
        image, scale = photo
    else:
        (image, scale), source = load_photo(photo), photo
    detail = detail_image(source, scale) if method == "blazeface" else None
    faces = (fitter or shared_fitter()).detect(image, tracker, method=method, detail=detail)
    return image, scale, faces


def reconstruct(photo: str | os.PathLike | bytes | np.ndarray, *, face_index: int = 0,
                pins: dict[int, tuple[float, float]] | None = None, fitter: FaceFitter | None = None,
                options: FitOptions | None = None, texture_size: int = 1024, name: str | None = None,
                detected: tuple[np.ndarray, float, list] | None = None, initial: FitResult | None = None,
                progress: Callable[[float, str], None] | None = None,
                cancel: Callable[[], bool] | None = None) -> PhotoAvatar:
    """Fit face `face_index` (0 = largest) of the photo and build its avatar.

    `pins` are user-placed positions of Multi-PIE landmarks (fitted-image pixels) for a refit;
    `detected` reuses an earlier detect_faces() result, `initial` an earlier fit as the start.
    Raises PhotoError / FitError with readable messages, FitCancelled when `cancel()` said so.
    """
    fitter = fitter or shared_fitter()
    report = progress or (lambda f, s: None)
    report(0.0, "reading the photo")
    image, scale, faces = detected or detect_faces(photo, fitter)
    if not 0 <= face_index < len(faces):
        raise FitError(f"face {face_index + 1} was asked for, but the photo has {len(faces)} face(s)")
    face = faces[face_index]
    fit = fitter.fit(image, face, pins=pins, options=options, initial=initial,
                     progress=lambda f, s: report(0.05 + 0.8 * f, s), cancel=cancel)
    if cancel and cancel():
        raise FitCancelled()
    report(0.88, "projecting the texture")
    from core.render.renderer import default_texture
    mesh = fitter.model.extract_mesh(fit.identity, fit.expression, resolution=128)
    outline = face.landmarks[list(MP_FACE_OVAL), :2]
    tex = project_texture(image, fit.camera, mesh, outline, default_texture(), light=fit.lighting,
                          size=texture_size, appearance=_appearance_model())
    if name is None:
        name = Path(photo).stem if isinstance(photo, (str, os.PathLike)) else "From photo"
    avatar = Avatar(fit.identity, fit.expression, texture=tex.texture, name=name, appearance=tex.code)
    avatar.set_dirty(True)   # a new, unsaved document
    report(1.0, "done")
    return PhotoAvatar(avatar, fit, image, scale, tex, faces, face_index, mesh)


def render_fit(result: PhotoAvatar, view: str = "textured") -> np.ndarray:
    """(H, W, 4) render of the fitted avatar with the photo's camera (alpha = coverage)."""
    from core.render import Renderer, headless_context
    fit, mesh = result.fit, result.mesh
    w, h = fit.image_size
    vc = fit.camera.to_camera(mesh.vertices).astype(np.float32)
    r = Renderer(headless_context(), samples=4)
    try:
        r.set_mesh(vc, mesh.faces, mesh.uvs)
        r.set_texture(result.avatar.texture)
        return r.render_image(w, h, fit.camera.render_camera(), view=view, show_points=False)
    finally:
        r.release()


def overlay_image(result: PhotoAvatar, alpha: float = 0.6) -> np.ndarray:
    """Side by side: the photo with the fitted 68 landmarks (pins in yellow) | the fitted,
    textured avatar blended over the photo. (H, 2W, 3) uint8 RGB."""
    img = result.image
    left = img.copy()
    size = max(1, round(max(img.shape[:2]) / 300))
    for k, (x, y) in enumerate(result.fit.landmarks68):
        col = (255, 220, 0) if k in result.fit.pins else (0, 255, 90)
        cv2.circle(left, (int(round(x)), int(round(y))), size + 1, col, -1, cv2.LINE_AA)
    rend = render_fit(result, "shaded")
    a = rend[..., 3:4].astype(np.float32) / 255.0 * alpha
    right = (img.astype(np.float32) * (1 - a) + rend[..., :3].astype(np.float32) * a).astype(np.uint8)
    return np.concatenate([left, right], 1)
