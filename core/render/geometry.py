"""Mesh and distance-field helpers on plain numpy arrays: normals, test shapes, grids, IoU."""
from __future__ import annotations

import numpy as np


def face_incidence(faces: np.ndarray, num_vertices: int):
    """Sparse (V,F) matrix with a 1 where vertex v is a corner of face f; build it once per
    topology so the per-frame scatter-add of face normals is one sparse product."""
    import scipy.sparse as sp

    f = np.asarray(faces)
    rows = f.ravel()
    cols = np.repeat(np.arange(len(f)), 3)
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                         shape=(num_vertices, len(f)))


def vertex_normals(vertices: np.ndarray, faces: np.ndarray, incidence=None) -> np.ndarray:
    """Area-weighted unit vertex normals, (V,3) float32, fully vectorised.

    The unnormalised cross product of a face is 2x its area times its normal, so summing it
    into the face's corners weights by area for free. Pass `incidence` (face_incidence) when
    the topology is fixed and the vertices change every frame: it makes the sum ~10x faster.
    """
    v = np.asarray(vertices, np.float32)
    f = np.asarray(faces)
    a = v[f[:, 0]]
    e1 = v[f[:, 1]] - a
    e2 = v[f[:, 2]] - a
    # Written out: np.cross is several times slower on (F,3) arrays.
    fn = np.empty_like(e1)
    fn[:, 0] = e1[:, 1] * e2[:, 2] - e1[:, 2] * e2[:, 1]
    fn[:, 1] = e1[:, 2] * e2[:, 0] - e1[:, 0] * e2[:, 2]
    fn[:, 2] = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    if incidence is not None:
        out = np.asarray(incidence @ fn, np.float32)
    else:
        idx = f.ravel()
        out = np.empty((len(v), 3), np.float32)
        for k in range(3):
            out[:, k] = np.bincount(idx, weights=np.repeat(fn[:, k], 3), minlength=len(v))
    out /= np.maximum(np.sqrt(np.einsum("ij,ij->i", out, out))[:, None], 1e-12)
    return out


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


def grid_points(lo, hi, resolution: int) -> np.ndarray:
    """(R,R,R,3) node positions indexed [z,y,x], nodes at lo + (hi-lo)*i/(R-1)."""
    axes = [np.linspace(lo[k], hi[k], resolution, dtype=np.float32) for k in range(3)]
    z, y, x = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    return np.stack([x, y, z], -1)


def sphere_sdf_grid(radius: float = 10.0, resolution: int = 64, margin: float = 1.25,
                    centre=(0.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact sphere distance on a grid: (grid [z,y,x], lo, hi)."""
    c = np.asarray(centre, np.float32)
    lo, hi = c - radius * margin, c + radius * margin
    p = grid_points(lo, hi, resolution)
    return (np.linalg.norm(p - c, axis=-1) - radius).astype(np.float32), lo, hi


# -- a procedural head: the stand-in avatar while no trained face model is installed ----------

def _ellipsoid(p: np.ndarray, centre, radii) -> np.ndarray:
    # Quilez's gradient-normalised ellipsoid bound: close to exact near the surface.
    q = (p - np.asarray(centre, np.float32)) / np.asarray(radii, np.float32)
    k0 = np.linalg.norm(q, axis=-1)
    k1 = np.linalg.norm(q / np.asarray(radii, np.float32), axis=-1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-6)


def _smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def head_sdf(p: np.ndarray) -> np.ndarray:
    """Signed distance (cm, negative inside) of a stylised head ~25 cm tall, face toward +z."""
    d = _ellipsoid(p, (0, 2.5, -1.0), (8.0, 10.0, 9.5))          # cranium
    d = _smin(d, _ellipsoid(p, (0, -4.0, 1.5), (6.3, 7.0, 7.0)), 3.0)   # cheeks and jaw
    d = _smin(d, _ellipsoid(p, (0, -9.0, 3.0), (3.2, 2.2, 3.5)), 2.0)   # chin
    d = _smin(d, _ellipsoid(p, (0, 0.0, 8.2), (1.2, 2.6, 1.6)), 1.0)    # nose
    for s in (-1, 1):
        d = _smin(d, _ellipsoid(p, (s * 7.9, 0.5, -1.0), (1.0, 3.0, 1.8)), 0.8)   # ears
        d = _smin(d, _ellipsoid(p, (s * 3.6, 4.6, 5.8), (2.6, 0.8, 1.5)), 1.0)    # brows
        d = np.maximum(d, -_ellipsoid(p, (s * 3.0, 2.8, 7.6), (1.7, 1.0, 1.2)))   # eye sockets
        d = np.minimum(d, np.linalg.norm(p - np.array([s * 3.0, 2.7, 5.6], np.float32),
                                         axis=-1) - 1.45)                       # eyeballs
    d = _smin(d, _ellipsoid(p, (0, -4.9, 7.2), (2.6, 0.7, 1.0)), 0.6)   # lips
    neck = np.maximum(np.hypot(p[..., 0] / 5.4, (p[..., 2] + 1.5) / 5.4) * 5.4 - 5.4,
                      np.abs(p[..., 1] + 15.0) - 5.5)
    return _smin(d, neck, 2.0).astype(np.float32)


HEAD_LO = np.array([-11.0, -21.0, -12.0], np.float32)
HEAD_HI = np.array([11.0, 14.0, 12.0], np.float32)


def head_sdf_grid(resolution: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return head_sdf(grid_points(HEAD_LO, HEAD_HI, resolution)), HEAD_LO.copy(), HEAD_HI.copy()


def cylindrical_uvs(vertices: np.ndarray) -> np.ndarray:
    """u from the angle around +y (0.5 at the front, +z), v from height over the head box."""
    v = np.asarray(vertices, np.float32)
    u = np.arctan2(v[:, 0], v[:, 2]) / (2 * np.pi) + 0.5
    h = (v[:, 1] - HEAD_LO[1]) / (HEAD_HI[1] - HEAD_LO[1])
    return np.stack([u, h], 1).astype(np.float32)


def mesh_from_grid(grid: np.ndarray, lo, hi, level: float = 0.0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes of an SDF grid [z,y,x] -> vertices (cm), faces CCW seen from outside."""
    from skimage.measure import marching_cubes

    res = np.array(grid.shape[::-1], np.float64)  # x, y, z counts
    spacing = (np.asarray(hi, np.float64) - lo) / (res - 1)
    verts, faces, _, _ = marching_cubes(grid, level, spacing=tuple(spacing[::-1]))
    verts = verts[:, ::-1] + np.asarray(lo)          # (z,y,x) -> (x,y,z)
    faces = faces[:, ::-1]                           # axis swap flips the winding back
    return verts.astype(np.float32), np.ascontiguousarray(faces, dtype=np.int32)


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
