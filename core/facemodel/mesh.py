"""Meshes extracted from the face model, and the per-vertex animator for live sliders."""
from __future__ import annotations

from dataclasses import dataclass

import mcubes
import numpy as np

from core.meshops import signed_volume


@dataclass
class Mesh:
    """A triangle mesh with per-vertex UVs and normals.

    Vertices are split along UV seams so per-vertex UVs interpolate correctly; split copies share
    position and normal. The optional fields let the model animate the mesh without re-solving
    where each vertex sits in template space.
    """
    vertices: np.ndarray           # (V, 3) float32, cm
    faces: np.ndarray              # (F, 3) int32, counter-clockwise seen from outside
    uvs: np.ndarray                # (V, 2) float32 in [0, 1]^2 (see docs/FACEMODEL.md)
    normals: np.ndarray            # (V, 3) float32, unit, outward
    template: np.ndarray | None = None     # (V, 3) template-space position of each vertex
    expression: np.ndarray | None = None   # (53,) weights the mesh was extracted at

    def __post_init__(self) -> None:
        self.vertices = np.ascontiguousarray(self.vertices, np.float32)
        self.faces = np.ascontiguousarray(self.faces, np.int32)
        self.uvs = np.ascontiguousarray(self.uvs, np.float32)
        self.normals = np.ascontiguousarray(self.normals, np.float32)


class Animator:
    """Vertices of one extracted mesh under any expression: neutral + weights @ offsets.

    The expression field is linear in the 53 weights, so this is exact with respect to the model
    and one (53 x 3V) matmul per frame.
    """

    def __init__(self, neutral: np.ndarray, offsets: np.ndarray):
        self._neutral = np.ascontiguousarray(neutral, np.float32).reshape(-1)
        self._offsets = np.ascontiguousarray(offsets, np.float32).reshape(offsets.shape[0], -1)
        self._num_vertices = neutral.shape[0]

    @property
    def num_vertices(self) -> int:
        return self._num_vertices

    def neutral(self) -> np.ndarray:
        """(V, 3) vertices at zero weights: the base mesh the morph targets apply to."""
        return self._neutral.reshape(-1, 3).copy()

    def vertices(self, expression: np.ndarray) -> np.ndarray:
        w = np.asarray(expression, np.float32).reshape(-1)
        if w.shape[0] != self._offsets.shape[0]:
            raise ValueError(f"expected {self._offsets.shape[0]} expression weights, got {w.shape[0]}")
        # einsum's own loop, not BLAS: a threaded OpenBLAS gemv of this size spends 2-8 ms of
        # CPU per frame waking its threads (0.4 ms here), most of all beside llvmpipe's threads.
        return (self._neutral + np.einsum("e,ev->v", w, self._offsets)).reshape(-1, 3)

    def morph_targets(self) -> np.ndarray:
        """(53, V, 3) vertex offsets for one-hot weights (relative to neutral())."""
        return self._offsets.reshape(self._offsets.shape[0], -1, 3).copy()


def marching_cubes(grid: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zero level of a [z, y, x] grid spanning the box lo..hi; faces outward (negative inside)."""
    verts, faces = mcubes.marching_cubes(np.ascontiguousarray(grid, np.float64), 0.0)
    shape = np.array(grid.shape, np.float64)
    zyx = verts / (shape - 1)
    xyz = lo + zyx[:, ::-1] * (hi - lo)
    faces = faces.astype(np.int64)
    if len(faces) and signed_volume(xyz, faces) < 0:
        faces = faces[:, ::-1]
    return xyz.astype(np.float32), faces


def split_seams(faces: np.ndarray, tri_chart: np.ndarray, num_vertices: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One vertex copy per (vertex, UV chart) used: (source vertex, chart of each copy, new faces)."""
    key = faces.astype(np.int64) * 64 + tri_chart[:, None]
    uniq, inv = np.unique(key.ravel(), return_inverse=True)
    return uniq // 64, uniq % 64, inv.reshape(faces.shape).astype(np.int32)
