"""The appearance (texture) space: a texture code with a Gaussian prior, learned from real photos.

`model.py` (AppearanceModel: decode / encode / sample), `samples.py` (photos -> UV observations),
`train.py` (PCA with missing data), `evaluate.py` (held-out-half prediction, `eval-texture`).
"""
from __future__ import annotations

import logging

import numpy as np

from .model import AppearanceModel, AppearanceModelError, shared_model

log = logging.getLogger(__name__)
_warned = False


def avatar_texture(avatar, size: int = 1024) -> np.ndarray:
    """The texture an avatar shows: its base texture (below) with its paint layers (core.paint)
    composited over it, at the paint resolution; the base itself when it has no paint."""
    from core.paint.avatar import painted_texture
    return painted_texture(avatar, base_texture(avatar, size))


def base_texture(avatar, size: int = 1024) -> np.ndarray:
    """The texture under the paint: the avatar's explicit texture (a projected photo) when it has
    one, else what its appearance code decodes to (None: the mean appearance). Without
    a readable appearance model the default skin is used, and the reason logged once."""
    global _warned
    if getattr(avatar, "texture", None) is not None:
        return avatar.texture
    try:
        return shared_model().decode(getattr(avatar, "appearance", None), size)
    except AppearanceModelError as exc:
        if not _warned:
            log.warning("%s; showing the default skin", exc)
            _warned = True
        from core.avatar import default_texture
        return default_texture()


__all__ = ["AppearanceModel", "AppearanceModelError", "shared_model", "avatar_texture", "base_texture"]
