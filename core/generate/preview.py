"""Headless previews of avatars: one render, or a labelled contact sheet of candidates."""
from __future__ import annotations

import numpy as np


_MODEL = None


def _face_model():
    """One face model for previews: its template mesh and fields are cached on the instance,
    so every preview after the first only maps the template (load_scene loads a fresh model)."""
    global _MODEL
    if _MODEL is None:
        from core.facemodel import FaceModel
        _MODEL = FaceModel.load()
    return _MODEL


def _scene(avatar, resolution: int, face_model):
    from core.appearance import avatar_texture
    from core.head.hair import build_hair
    from core.render.scene import AvatarScene, _head_parts

    model = face_model or _face_model()
    identity = avatar.identity
    expression = np.asarray(avatar.expression, np.float32)
    mesh = model.extract_mesh(identity, expression=None, resolution=resolution, max_triangles=30000)
    anim = model.animator(mesh, identity)
    return AvatarScene(
        source="face model", vertices=np.asarray(anim.vertices(expression), np.float32),
        faces=np.asarray(mesh.faces, np.int32), uvs=np.asarray(mesh.uvs, np.float32),
        texture=avatar_texture(avatar), expression=expression, animator=anim.vertices,
        sdf=lambda: None, stages=lambda: None, landmarks=lambda: None,
        hair=lambda: build_hair(model, avatar.hair, mesh, anim),
        head=lambda: _head_parts(identity, avatar.eyes))


def render_avatar(avatar, size: int = 256, yaw: float = 20.0, pitch: float = 5.0,
                  resolution: int = 96, face_model=None) -> np.ndarray:
    """(size, size, 3) uint8 textured render with eyes, mouth and hair (own EGL context per thread)."""
    from core.render import OrbitCamera, Renderer, headless_context, lighting_preset
    from core.render.scene import show_scene

    scene = _scene(avatar, resolution, face_model)
    r = Renderer(headless_context(), samples=4)
    try:
        show_scene(r, scene)
        cam = OrbitCamera(yaw=yaw, pitch=pitch).frame(*r.bounds("mesh"), margin=0.9)
        img = r.render_image(size, size, cam, mode="mesh", view="textured",
                             background=(0.16, 0.17, 0.19), lighting=lighting_preset("studio"))
    finally:
        r.release()
    return np.ascontiguousarray(img[..., :3])


def contact_sheet(images: list[np.ndarray], labels: list[str] | None = None, columns: int = 4) -> np.ndarray:
    """Images side by side in rows, each with a small caption strip."""
    import cv2
    h, w = images[0].shape[:2]
    cols = min(columns, len(images))
    rows = (len(images) + cols - 1) // cols
    strip = 22
    sheet = np.full((rows * (h + strip), cols * w, 3), 30, np.uint8)
    for i, im in enumerate(images):
        y, x = (i // cols) * (h + strip), (i % cols) * w
        sheet[y:y + h, x:x + w] = im
        if labels:
            cv2.putText(sheet, labels[i][:40], (x + 4, y + h + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                        (230, 230, 230), 1, cv2.LINE_AA)
    return sheet
