"""Blend modes and compositing onto an opaque backdrop, as the W3C Compositing and Blending
Level 1 spec defines them (the same formulas Photoshop, Krita and browsers use).

All functions take float32 colours in [0, 1] with the channel last. The backdrop (base texture
plus the layers below) is always opaque, so source-over with blending reduces to
    C = (1 - a) * Cb + a * B(Cb, Cs)
where a is the layer texel's alpha x layer opacity x layer mask.
"""
from __future__ import annotations

import numpy as np

BLEND_MODES = ("normal", "multiply", "screen", "overlay", "soft light", "colour")


def _normal(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    return cs


def _multiply(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    return cb * cs


def _screen(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    return cb + cs - cb * cs


def _hard_light(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    return np.where(cs <= 0.5, _multiply(cb, 2 * cs), _screen(cb, 2 * cs - 1))


def _overlay(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    return _hard_light(cs, cb)   # overlay is hard light with the layers swapped


def _soft_light(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    d = np.where(cb <= 0.25, ((16 * cb - 12) * cb + 4) * cb, np.sqrt(cb))
    return np.where(cs <= 0.5, cb - (1 - 2 * cs) * cb * (1 - cb), cb + (2 * cs - 1) * (d - cb))


def _lum(c: np.ndarray) -> np.ndarray:
    return (0.3 * c[..., 0] + 0.59 * c[..., 1] + 0.11 * c[..., 2])[..., None]


def _clip_colour(c: np.ndarray) -> np.ndarray:
    lum = _lum(c)
    n = c.min(axis=-1, keepdims=True)
    x = c.max(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(n < 0, lum + (c - lum) * lum / (lum - n), c)
        c = np.where(x > 1, lum + (c - lum) * (1 - lum) / (x - lum), c)
    return c


def _colour(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    """Non-separable Color: the layer's hue and saturation with the backdrop's luminosity."""
    return _clip_colour(cs + (_lum(cb) - _lum(cs)))


_FUNCS = {"normal": _normal, "multiply": _multiply, "screen": _screen, "overlay": _overlay,
          "soft light": _soft_light, "colour": _colour}


def blend(mode: str, cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    """B(Cb, Cs) of a mode in BLEND_MODES ('color' is accepted for 'colour')."""
    return _FUNCS[normalise_mode(mode)](cb, cs).astype(np.float32, copy=False)


def normalise_mode(mode: str) -> str:
    m = str(mode).strip().lower().replace("_", " ").replace("-", " ")
    m = {"color": "colour", "softlight": "soft light"}.get(m, m)
    if m not in _FUNCS:
        raise ValueError(f"unknown blend mode {mode!r}; use one of: {', '.join(BLEND_MODES)}")
    return m


def composite_over(cb: np.ndarray, cs: np.ndarray, alpha: np.ndarray, mode: str) -> np.ndarray:
    """Blend a layer (colour cs, coverage alpha (..., 1)) onto an opaque backdrop cb."""
    if mode == "normal":
        return cb + alpha * (cs - cb)
    return cb + alpha * (blend(mode, cb, cs) - cb)
