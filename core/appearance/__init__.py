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
    """The texture an avatar shows: its explicit texture (a projected photo, a loaded painting)
    when it has one, else what its appearance code decodes to (None: the mean appearance). Without
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


__all__ = ["AppearanceModel", "AppearanceModelError", "shared_model", "avatar_texture"]
