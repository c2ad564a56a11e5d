"""Mesh and distance-field helpers on plain numpy arrays: normals, test shapes, grids, IoU."""
from __future__ import annotations

import numpy as np

from core.meshops import face_incidence, grid_points, vertex_normals  # noqa: F401  (re-exported)


def uv_sphere(radius: float = 10.0, rings: int = 48, segments: int = 96,
              centre=(0.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sphere with an equirectangular uv layout: vertices (V,3), faces (F,3) CCW outward, uvs."""
    theta = np.linspace(0, np.pi, rings + 1)            # from +y down
    phi = np.linspace(-np.pi, np.pi, segments + 1)      # seam duplicated for the uvs
    t, p = np.meshgrid(theta, phi, indexing="ij")
    verts = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], -1) * radius
    verts = verts.reshape(-1, 3) + np.asarray(centre)
    uvs = np.stack([(p + np.pi) / (2 * np.pi), 1 - t / np.pi], -1).reshape(-1, 2)
    i, j = np.meshgrid(np.arange(rings), np.arange(segments), indexing="ij")
    a = (i * (segments + 1) + j).ravel()
    b, c, d = a + segments + 1, a + 1, a + segments + 2
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([c, b, d], 1)])
    return verts.astype(np.float32), faces.astype(np.int32), uvs.astype(np.float32)


def sphere_sdf_grid(radius: float = 10.0, resolution: int = 64, margin: float = 1.25,
                    centre=(0.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact sphere distance on a grid: (grid [z,y,x], lo, hi)."""
    c = np.asarray(centre, np.float32)
    lo, hi = c - radius * margin, c + radius * margin
    p = grid_points(lo, hi, resolution)
    return (np.linalg.norm(p - c, axis=-1) - radius).astype(np.float32), lo, hi


# -- a procedural head: the stand-in avatar while no trained face model is installed ----------

def uv_grid_from_mesh(vertices: np.ndarray, uvs: np.ndarray, lo, hi,
                      resolution: int = 64) -> np.ndarray:
    """(R,R,R,2) float32 uv of the nearest mesh vertex at each node: lets the SDF path show
    the mesh's texture (the field itself carries no uv)."""
    from scipy.spatial import cKDTree

    pts = grid_points(lo, hi, resolution).reshape(-1, 3)
    _, idx = cKDTree(vertices).query(pts, workers=-1)
    return np.asarray(uvs, np.float32)[idx].reshape(resolution, resolution, resolution, 2)


def silhouette_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks, or of two RGBA images' alpha > 127."""
    if a.ndim == 3:
        a = a[..., 3] > 127
    if b.ndim == 3:
        b = b[..., 3] > 127
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0
