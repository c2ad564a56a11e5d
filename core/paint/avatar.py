"""The paint stack of an avatar, and the texture the avatar shows with it.

The Avatar document (core/avatar.py) knows nothing of painting; the stack is attached here
(a weak map, so a dropped avatar frees its layers). `painted_texture(avatar, base)` is what
`core.appearance.avatar_texture` returns: the base (explicit texture or decoded appearance
code) with the paint layers composited over it and seams padded, at the stack's resolution.
The renderer, OBJ/GLB export and `main.py texture --flatten` all go through it, so they agree.
"""
from __future__ import annotations

import logging
import weakref

import numpy as np

from .layers import LayerStack

log = logging.getLogger(__name__)
_stacks: "weakref.WeakKeyDictionary[object, LayerStack]" = weakref.WeakKeyDictionary()


def paint_of(avatar) -> LayerStack | None:
    """The avatar's paint stack, or None when it has never been painted (or there is no avatar:
    the headless renderer's default face)."""
    return None if avatar is None else _stacks.get(avatar)


def attach_paint(avatar, stack: LayerStack | None) -> None:
    """Give the avatar a paint stack (None removes it). The stack's base is set on first use."""
    if stack is None:
        _stacks.pop(avatar, None)
    else:
        _stacks[avatar] = stack


def ensure_paint(avatar, size: int = 2048) -> LayerStack:
    """The avatar's stack, created empty (with the UV islands for padding) when missing."""
    stack = paint_of(avatar)
    if stack is None:
        stack = LayerStack(size, coverage=default_coverage())
        attach_paint(avatar, stack)
    return stack


def painted_texture(avatar, base: np.ndarray) -> np.ndarray:
    """`base` with the avatar's paint over it: (S, S, 3) uint8 at the stack's resolution, or
    `base` itself when the avatar has no paint layers. Cheap when nothing changed (cached)."""
    stack = paint_of(avatar)
    if stack is None:
        return base
    if stack.coverage is None and not getattr(stack, "_coverage_tried", False):
        stack._coverage_tried = True
        stack.set_coverage(default_coverage())
    stack.set_base(base)   # even with no layers yet: painting starts over this base
    return stack.composite() if stack.layers else base


def default_coverage() -> np.ndarray | None:
    """The UV islands of the shared layout (the appearance model's covered texels), or None."""
    try:
        from core.appearance import shared_model
        return shared_model().covered
    except Exception as exc:   # no readable model: paint works, only padding and island fill are off
        log.info("no UV island mask (%s): seam padding and island fill are off", exc)
        return None
