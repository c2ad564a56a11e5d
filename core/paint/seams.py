"""Seam padding: texels outside the UV islands take the colour of the nearest island texels,
N pixels deep, so bilinear filtering and mipmaps at island borders never pull in unpainted
colour (ArmorPaint's dilate pass, Blender's bleed margin).

Padding is applied to the composite, not to the layers: the layers keep exactly what was
painted (PSD and PNG exports stay clean), and the flattened texture the renderer and exports
use is always padded, whatever the base or the blend modes do at the border. The composite
is updated in dirty rectangles; `pad` on a rectangle grown by N + 1 texels gives exactly the
full-image result inside the original rectangle (each iteration spreads one texel).
"""
from __future__ import annotations

import cv2
import numpy as np

MAX_PADDING = 16


def pad(rgb: np.ndarray, covered: np.ndarray, iterations: int) -> np.ndarray:
    """(h, w, 3) float32 colours; texels not `covered` within `iterations` texels (8-neighbour
    steps) of covered ones get the mean of their already-filled neighbours. Returns a new array."""
    if iterations <= 0 or covered.all() or not covered.any():
        return rgb
    filled = covered.copy()
    weight = filled.astype(np.float32)
    col = rgb * weight[..., None]
    for _ in range(iterations):
        s = cv2.boxFilter(col, -1, (3, 3), normalize=False, borderType=cv2.BORDER_REPLICATE)
        c = cv2.boxFilter(weight, -1, (3, 3), normalize=False, borderType=cv2.BORDER_REPLICATE)
        new = ~filled & (c > 0)
        if not new.any():
            break
        col[new] = s[new] / c[new][:, None]
        weight[new] = 1.0
        filled |= new
    return np.where(filled[..., None], col, rgb)
