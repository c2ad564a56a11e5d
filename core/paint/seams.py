"""Seam padding: texels outside the UV islands take the colour of their nearest island texel,
up to N texels out, so bilinear filtering and mip-maps at island borders never pull in
unpainted colour (ArmorPaint's dilate pass, Blender's bleed margin).

Padding is applied to the composite, not to the layers: layers keep exactly what was painted
(PSD and PNG exports stay clean), and the flattened texture the renderer and exports use is
always padded, whatever the base or the blend modes do at the border. The nearest-texel map is
computed once per island mask (a distance transform); padding a rectangle is then one gather
from the raw composite of that rectangle grown by N, so the incremental result is exactly the
full-image one.
"""
from __future__ import annotations

import cv2
import numpy as np

from .tiles import Rect

MAX_PADDING = 16


class Padding:
    """For texels outside `covered` within `depth` texels: the offset (dy, dx) to the nearest
    covered texel."""

    def __init__(self, covered: np.ndarray, depth: int) -> None:
        covered = np.asarray(covered, bool)
        self.depth = int(np.clip(depth, 0, MAX_PADDING))
        s = covered.shape[0]
        self.padded = np.zeros(covered.shape, bool)
        self.dy = np.zeros(covered.shape, np.int8)
        self.dx = np.zeros(covered.shape, np.int8)
        if self.depth == 0 or covered.all() or not covered.any():
            return
        dist, labels = cv2.distanceTransformWithLabels((~covered).astype(np.uint8), cv2.DIST_L2, 5,
                                                       labelType=cv2.DIST_LABEL_PIXEL)
        ys, xs = np.nonzero(covered)
        lut = np.zeros(labels.max() + 1, np.int64)
        lut[labels[ys, xs]] = ys * s + xs
        src = lut[labels]
        rows, cols = np.divmod(src, s)
        dy = rows - np.arange(s)[:, None]
        dx = cols - np.arange(s)[None, :]
        self.padded = ~covered & (dist <= self.depth) & (np.abs(dy) <= self.depth) & (np.abs(dx) <= self.depth)
        self.dy[self.padded] = dy[self.padded]
        self.dx[self.padded] = dx[self.padded]

    def any_in(self, rect: Rect) -> bool:
        y0, y1, x0, x1 = rect
        return self.depth > 0 and bool(self.padded[y0:y1, x0:x1].any())

    def apply(self, raw: np.ndarray, grown: Rect, rect: Rect) -> np.ndarray:
        """The padded colours of `rect` from `raw`, the raw composite of `grown` (which must
        contain `rect` grown by the depth, clipped to the image)."""
        y0, y1, x0, x1 = rect
        gy, gx = y0 - grown[0], x0 - grown[2]
        out = raw[gy:gy + y1 - y0, gx:gx + x1 - x0].copy()
        ys, xs = np.nonzero(self.padded[y0:y1, x0:x1])
        if ys.size:
            sy = ys + gy + self.dy[y0:y1, x0:x1][ys, xs]
            sx = xs + gx + self.dx[y0:y1, x0:x1][ys, xs]
            out[ys, xs] = raw[sy, sx]
        return out
