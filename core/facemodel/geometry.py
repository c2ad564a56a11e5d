"""Exact point-to-mesh distances for evaluation (KD-tree candidates + point-triangle tests)."""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def closest_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Closest point to p on triangle (a, b, c), all (..., 3) (Ericson, Real-Time Collision Detection 5.1.5)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    bp = p - b
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    cp = p - c
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    denom = va + vb + vc
    denom = np.where(np.abs(denom) < 1e-20, 1e-20, denom)
    v = vb / denom
    w = vc / denom
    out = a + ab * v[..., None] + ac * w[..., None]  # interior
    eps = 1e-20
    # edge regions
    t_bc = (d4 - d3) / np.where((d4 - d3) + (d5 - d6) == 0, eps, (d4 - d3) + (d5 - d6))
    on_bc = (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0)
    out = np.where(on_bc[..., None], b + (c - b) * t_bc[..., None], out)
    t_ac = d2 / np.where(d2 - d6 == 0, eps, d2 - d6)
    on_ac = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
    out = np.where(on_ac[..., None], a + ac * t_ac[..., None], out)
    t_ab = d1 / np.where(d1 - d3 == 0, eps, d1 - d3)
    on_ab = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
    out = np.where(on_ab[..., None], a + ab * t_ab[..., None], out)
    # vertex regions
    out = np.where(((d6 >= 0) & (d5 <= d6))[..., None], c, out)
    out = np.where(((d3 >= 0) & (d4 <= d3))[..., None], b, out)
    out = np.where(((d1 <= 0) & (d2 <= 0))[..., None], a, out)
    return out


class MeshDistance:
    """Distance from query points to a triangle mesh; also which triangle is closest.

    Candidates: triangles around the k nearest vertices, plus triangles owning the k nearest of
    points spread over every triangle (so long thin triangles such as cap fans are found too).
    """

    WIDTH = 12  # triangles kept per vertex (fan apexes are covered by the triangle samples)

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, k: int = 8, spacing: float = 0.4):
        self.v = np.asarray(vertices, np.float64)
        self.f = np.asarray(faces, np.int64)
        self.k = k
        self.tree = cKDTree(self.v)
        order = np.argsort(self.f.ravel(), kind="stable")
        counts = np.bincount(self.f.ravel(), minlength=len(self.v))
        start = np.r_[0, np.cumsum(counts)[:-1]]
        rank = np.arange(len(order)) - np.repeat(start, counts)
        keep = rank < self.WIDTH
        self.adj = -np.ones((len(self.v), self.WIDTH), np.int64)
        self.adj[self.f.ravel()[order][keep], rank[keep]] = (order // 3)[keep]
        # points over each triangle: an n x n barycentric lattice, n from its longest edge
        t = self.v[self.f]
        longest = np.max(np.linalg.norm(t - np.roll(t, 1, axis=1), axis=2), axis=1)
        n = np.clip(np.ceil(longest / spacing).astype(int), 1, 16)
        pts, owner = [t.mean(1)], [np.arange(len(self.f))]
        for m in np.unique(n[n > 1]):
            sel = np.flatnonzero(n == m)
            i, j = np.meshgrid(np.arange(m + 1), np.arange(m + 1), indexing="ij")
            ok = i + j <= m
            b = np.stack([i[ok], j[ok], m - i[ok] - j[ok]], 1) / m
            pts.append(np.einsum("bk,tkd->tbd", b, t[sel]).reshape(-1, 3))
            owner.append(np.repeat(sel, len(b)))
        self.owner = np.concatenate(owner)
        self.samples = cKDTree(np.concatenate(pts))

    def query(self, p: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(distance (N,), closest point (N, 3), triangle index (N,))."""
        p = np.asarray(p, np.float64)
        _, nv = self.tree.query(p, k=self.k, workers=2)
        _, ns = self.samples.query(p, k=self.k, workers=2)
        dist, close, tri = np.empty(len(p)), np.empty((len(p), 3)), np.empty(len(p), np.int64)
        for s in range(0, len(p), chunk):
            q = p[s:s + chunk]
            cand = np.concatenate([self.adj[nv[s:s + chunk]].reshape(len(q), -1),
                                   self.owner[ns[s:s + chunk]]], 1)
            valid = cand >= 0
            cf = self.f[np.where(valid, cand, 0)]
            cp = closest_on_triangles(q[:, None], self.v[cf[..., 0]], self.v[cf[..., 1]], self.v[cf[..., 2]])
            d = np.where(valid, np.linalg.norm(cp - q[:, None], axis=-1), np.inf)
            j = d.argmin(1)
            r = np.arange(len(q))
            dist[s:s + chunk], close[s:s + chunk], tri[s:s + chunk] = d[r, j], cp[r, j], cand[r, j]
        return dist, close, tri


def barycentric(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentric coordinates (N, 3) of points p in triangles (a, b, c)."""
    v0, v1, v2 = b - a, c - a, p - a
    d00, d01, d11 = (v0 * v0).sum(-1), (v0 * v1).sum(-1), (v1 * v1).sum(-1)
    d20, d21 = (v2 * v0).sum(-1), (v2 * v1).sum(-1)
    den = d00 * d11 - d01 * d01
    den = np.where(np.abs(den) < 1e-20, 1e-20, den)
    v = (d11 * d20 - d01 * d21) / den
    w = (d00 * d21 - d01 * d20) / den
    return np.stack([1 - v - w, v, w], -1)
