"""Symmetric painting through the shared UV layout's texel-to-texel mirror map.

The map comes from the mesh (core.fitting.texture.mirror_uvs: each vertex's mirror vertex's UV,
rasterised over the UV islands, as in observe_photo(...).mirror_uv). A mirrored dab is
*gathered*: each texel u near the mirror image of the dab takes the dab's strength at M(u), so
the mirrored dab has no holes even where the two sides' UV islands have different texel
densities.
"""
from __future__ import annotations

import cv2
import numpy as np

from .tiles import Rect, clip_rect


class MirrorMap:
    """Per texel of a size x size stack, the texel (row, column) of its mirror point."""

    def __init__(self, rows: np.ndarray, cols: np.ndarray, valid: np.ndarray) -> None:
        self.rows = rows.astype(np.int32)
        self.cols = cols.astype(np.int32)
        self.valid = valid.astype(bool)
        self.size = rows.shape[0]

    @classmethod
    def from_uv(cls, mirror_uv: np.ndarray, size: int, valid: np.ndarray | None = None) -> "MirrorMap":
        """(S', S', 2) mirror UVs (v up, row 0 = v 1) at any S'; `valid` (S', S') or (size, size)
        marks texels that have a mirror (default: texels whose mirror UV is not (0, 0))."""
        muv = np.asarray(mirror_uv, np.float32)
        if muv.ndim != 3 or muv.shape[2] != 2:
            raise ValueError(f"mirror UVs must be (S, S, 2), got {muv.shape}")
        if valid is None:
            valid = np.any(muv != 0, axis=-1)
        if muv.shape[:2] != (size, size):
            muv = cv2.resize(muv, (size, size), interpolation=cv2.INTER_NEAREST)
        valid = np.asarray(valid).astype(np.uint8)
        if valid.shape != (size, size):
            valid = cv2.resize(valid, (size, size), interpolation=cv2.INTER_NEAREST)
        # Texel of a UV as core.appearance.evaluate and the UV rasteriser use it: u * (S - 1).
        cols = np.clip(np.round(muv[..., 0] * (size - 1)), 0, size - 1)
        rows = np.clip(np.round((1.0 - muv[..., 1]) * (size - 1)), 0, size - 1)
        return cls(rows, cols, valid.astype(bool))

    @classmethod
    def from_indices(cls, index: np.ndarray, size: int) -> "MirrorMap":
        """(S'*S',) row-major texel indices of each texel's mirror at S' (negative: none)."""
        index = np.asarray(index, np.int64).reshape(-1)
        s = int(round(np.sqrt(index.size)))
        if s * s != index.size:
            raise ValueError(f"a mirror index map must have S*S entries, got {index.size}")
        idx = index.reshape(s, s)
        valid = idx >= 0
        r, c = np.divmod(np.maximum(idx, 0), s)
        if s != size:
            pick = (np.arange(size) * s) // size   # nearest source texel of each target texel
            r, c, valid = r[pick][:, pick], c[pick][:, pick], valid[pick][:, pick]
            r, c = (r * size) // s + size // (2 * s), (c * size) // s + size // (2 * s)
        return cls(r, c, valid)

    def mirror(self, rect: Rect, strength: np.ndarray):
        """The mirror image of a dab (rect, strength (h, w)): (rect', strength', rows', cols')
        where rows'/cols' are each target texel's mirror texel; None if nothing maps."""
        y0, y1, x0, x1 = rect
        nz = (strength > 0) & self.valid[y0:y1, x0:x1]
        if not nz.any():
            return None
        mr, mc = self.rows[y0:y1, x0:x1][nz], self.cols[y0:y1, x0:x1][nz]
        r2 = clip_rect((int(mr.min()) - 2, int(mr.max()) + 3, int(mc.min()) - 2, int(mc.max()) + 3), self.size)
        if r2 is None:
            return None
        a0, a1, b0, b1 = r2
        rows, cols = self.rows[a0:a1, b0:b1], self.cols[a0:a1, b0:b1]
        inside = self.valid[a0:a1, b0:b1] & (rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1)
        s2 = np.zeros(rows.shape, np.float32)
        s2[inside] = strength[rows[inside] - y0, cols[inside] - x0]
        if not (s2 > 0).any():
            return None
        return r2, s2, rows, cols
