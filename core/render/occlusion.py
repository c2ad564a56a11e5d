"""Ambient occlusion per vertex: how much of the sky above each vertex the mesh itself hides.

Cavities (nostrils, the mouth corners, the folds of the ear, under the chin) otherwise catch
as much ambient and fill light as an open cheek and read as bright patches. The mesh is drawn
from `directions` directions spread over the sphere (orthographic depth maps on the headless
GL context); a vertex is lit from a direction when no surface lies in front of it there. Its
occlusion is the cosine-weighted share of the directions above its surface that reach it.
Computed once per mesh (the rest pose); expressions keep it.
"""
from __future__ import annotations

import numpy as np

from core.fitting.raster import rasterize

MAP_SIZE = 256          # depth-map pixels a side
DIRECTIONS = 48


def sphere_directions(n: int) -> np.ndarray:
    """(n, 3) unit vectors spread evenly over the sphere (Fibonacci lattice)."""
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    phi = np.pi * (1.0 + 5 ** 0.5) * i
    r = np.sqrt(1.0 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], 1)


def _frame(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = np.array([0.0, 1.0, 0.0]) if abs(d[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    right = np.cross(helper, d)
    right /= np.linalg.norm(right)
    return right, np.cross(d, right)


def vertex_occlusion(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray,
                     directions: int = DIRECTIONS, size: int = MAP_SIZE) -> np.ndarray:
    """(V,) float32 in [0, 1]: 1 = the whole hemisphere above the vertex is open, 0 = closed."""
    v = np.asarray(vertices, np.float64)
    n = np.asarray(normals, np.float64)
    centre = 0.5 * (v.min(0) + v.max(0))
    p = v - centre
    radius = float(np.linalg.norm(p, axis=1).max()) * 1.02
    pixel = 2.0 * radius / size
    # a vertex counts as seen when it is within a few pixels' depth of the nearest surface:
    # the surface around it spans that much depth across a pixel on a slope
    tolerance = 2.5 * pixel
    lit = np.zeros(len(v))
    total = np.zeros(len(v))
    f = np.asarray(faces, np.int32)
    for d in sphere_directions(directions):
        cos = n @ d
        up = cos > 0.0
        if not up.any():
            continue
        right, upv = _frame(d)
        x, y, z = p @ right / radius, p @ upv / radius, p @ d / radius   # z: toward the viewer
        clip = np.stack([x, y, -z, np.ones_like(x)], 1).astype(np.float32)
        depth, covered = rasterize(clip, f, z[:, None].astype(np.float32), size, size)
        col = np.clip(((x + 1) * 0.5 * size).astype(np.int64), 0, size - 1)
        row = np.clip(((1 - y) * 0.5 * size).astype(np.int64), 0, size - 1)
        front = depth[row, col, 0] * radius
        seen = ~covered[row, col] | (z * radius >= front - tolerance)
        lit[up] += cos[up] * seen[up]
        total[up] += cos[up]
    return np.where(total > 0, lit / np.maximum(total, 1e-9), 1.0).astype(np.float32)


_CACHE: dict[bytes, np.ndarray] = {}


def mesh_occlusion(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray | None = None) -> np.ndarray:
    """vertex_occlusion, kept per topology: every identity of the face model shares the template's
    triangles, and the cavities sit at the same vertices, so a new identity (or a new frame)
    reuses the first one's occlusion instead of drawing 48 depth maps again."""
    import hashlib

    from core.meshops import vertex_normals

    f = np.ascontiguousarray(faces, np.int32)
    key = hashlib.sha1(f.tobytes()).digest() + len(vertices).to_bytes(8, "little")
    if key not in _CACHE:
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        n = vertex_normals(np.asarray(vertices, np.float32), f) if normals is None else normals
        _CACHE[key] = vertex_occlusion(vertices, f, n)
    return _CACHE[key]
