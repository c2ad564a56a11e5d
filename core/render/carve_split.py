"""Which skin triangles may reach a carve (core.head.parts.Carve: an ellipsoid where the skin
is hidden so the eyes and teeth show through).

The mesh view discards skin fragments inside the carves, and a fragment shader that can discard
costs a software rasteriser (llvmpipe) its early depth test and write for every fragment it
runs: measured ~4.6 ms CPU of 17 for the skin at 512^2. Only the triangles near the carves
need that program; the renderer draws the rest with one that never discards.
"""
from __future__ import annotations

import numpy as np


def carve_bound(matrices: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and radius of a sphere holding every carve, from (N,4,4) world -> unit-ball maps."""
    centres, radii = carve_spheres(matrices)
    c = centres.mean(axis=0)
    return c, float((np.linalg.norm(centres - c, axis=1) + radii).max())


def split_margin(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V,) per vertex: the longest edge of the triangles around it, x1.5 for expressions that
    stretch them. A triangle with a point inside a sphere has a vertex within radius + its own
    longest edge of the centre, so testing each vertex against radius + this margin finds it."""
    v = np.asarray(vertices, np.float32)
    tri = v[faces]
    longest = 1.5 * np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2).max(axis=1)
    margin = np.zeros(len(v), np.float32)
    np.maximum.at(margin, faces.ravel(), np.repeat(longest, 3).astype(np.float32))
    return margin


def carve_spheres(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,3) centres and (N,) radii (longest semi-axis) of each carve."""
    inv = np.linalg.inv(np.asarray(matrices, np.float64))
    return inv[:, :3, 3], np.linalg.norm(inv[:, :3, :3], axis=1).max(axis=1)


def face_columns(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three corner-index columns of (F,3) faces, contiguous (gathers run several times faster)."""
    return tuple(np.ascontiguousarray(faces[:, i]) for i in range(3))


def near_carve_faces(vertices: np.ndarray, corners: tuple[np.ndarray, ...], matrices: np.ndarray,
                     margin: np.ndarray) -> np.ndarray:
    """(F,) bool: triangles (`corners` from face_columns) that may reach a carve's bounding
    sphere (`margin` from split_margin). About 0.3 ms for the viewport's 24k triangles."""
    v = np.asarray(vertices, np.float32)
    centres, radii = carve_spheres(matrices)
    c = centres.astype(np.float32)
    # squared distances to every centre at once: |v|^2 - 2 v.c + |c|^2
    d2 = np.einsum("ij,ij->i", v, v)[:, None] - 2.0 * (v @ c.T) + np.einsum("ij,ij->i", c, c)[None]
    reach = radii.astype(np.float32)[None] + margin[:, None]
    near_v = (d2 < reach * reach).any(axis=1)
    a, b, c_ = corners
    return np.take(near_v, a) | np.take(near_v, b) | np.take(near_v, c_)
