"""The clean neck cut: one plane in template space below which the head is cut off.

The training skins close the ICT neck loop with a flat fan, and marching cubes turns that
fan's crease into saw teeth at the grid resolution. The model's surface is therefore cut by
a plane a little above the old cap: meshes are clipped exactly (the rim is the plane's
intersection with the smooth neck, a smooth curve) and closed by a flat cap; distance fields
take max(sdf, distance below the plane). The plane lives in template space, so every identity
and expression shares the same cut and mesh vertices keep their correspondence.
"""
from __future__ import annotations

import numpy as np

# Fitted to the old neck cap of the shipped model (y ~ -0.36 z - 16.6, a plane tilted down toward
# the chin) and raised 2.7 cm along its normal, clear of the old rim's highest point (+1.4 cm) and
# of the teeth marching cubes left along it (at +2 cm a rim still turns up to 29 degrees).
NECK_NORMAL = np.array([0.0, 0.938, 0.347], np.float64) / np.linalg.norm([0.0, 0.938, 0.347])
NECK_OFFSET = float(NECK_NORMAL @ np.array([0.0, -16.0, -1.67])) + 2.7
CAP_CHART = 63  # chart id of cap triangles (the six UV islands are 0..5)


def height(points: np.ndarray, normal: np.ndarray = NECK_NORMAL, offset: float = NECK_OFFSET) -> np.ndarray:
    """Signed height (cm) of template points above the cut plane: > 0 is kept."""
    return np.asarray(points, np.float64).reshape(-1, 3) @ np.asarray(normal, np.float64) - offset


def clip_mesh(vertices: np.ndarray, faces: np.ndarray, normal: np.ndarray = NECK_NORMAL,
              offset: float = NECK_OFFSET, eps: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Exact clip of a triangle mesh to the half-space height >= 0.

    Crossing edges get one new vertex each (shared by both triangles, so the rim stays welded);
    vertices within `eps` cm of the plane are snapped onto it, so the rim has no tiny edges whose
    direction a small warp could flip (and no slivers). Triangle
    orientation is kept. Unused vertices are dropped.
    """
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    n = np.asarray(normal, np.float64)
    d = v @ n - offset
    near = np.abs(d) < eps
    v = v.copy()
    v[near] -= d[near, None] * n            # onto the plane
    d[near] = 0.0
    df = d[f]
    keep = (df >= 0).all(1) & (df > 0).any(1)
    mixed = (df > 0).any(1) & (df < 0).any(1)
    out = [f[keep]]
    new_pts: list[np.ndarray] = []
    edge_vertex: dict[tuple[int, int], int] = {}

    def cut(a: int, b: int) -> int:
        key = (a, b) if a < b else (b, a)
        if key not in edge_vertex:
            t = d[key[0]] / (d[key[0]] - d[key[1]])
            p = v[key[0]] + t * (v[key[1]] - v[key[0]])
            edge_vertex[key] = len(v) + len(new_pts)
            new_pts.append(p - (p @ n - offset) * n)
        return edge_vertex[key]

    extra = []
    for tri in f[mixed]:
        poly = []
        for k in range(3):  # Sutherland-Hodgman against one plane
            a, b = int(tri[k]), int(tri[(k + 1) % 3])
            if d[a] >= 0:
                poly.append(a)
            if (d[a] > 0 and d[b] < 0) or (d[a] < 0 and d[b] > 0):
                poly.append(cut(a, b))
        for k in range(1, len(poly) - 1):
            extra.append((poly[0], poly[k], poly[k + 1]))
    if extra:
        out.append(np.asarray(extra, np.int64))
    allv = np.concatenate([v, np.asarray(new_pts).reshape(-1, 3)])
    faces_out = np.concatenate(out)
    used = np.unique(faces_out)
    remap = np.full(len(allv), -1, np.int64)
    remap[used] = np.arange(len(used))
    return allv[used].astype(np.float32), remap[faces_out]


def boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """Closed loops of boundary edges (edges with one triangle), each in the faces' winding order."""
    f = np.asarray(faces, np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    key = np.minimum(e[:, 0], e[:, 1]) * (f.max() + 1) + np.maximum(e[:, 0], e[:, 1])
    uniq, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
    bnd = e[cnt[inv] == 1]
    nxt = {int(a): int(b) for a, b in bnd}
    loops, seen = [], set()
    for start in nxt:
        if start in seen:
            continue
        loop, cur = [], start
        while cur not in seen and cur in nxt:
            seen.add(cur)
            loop.append(cur)
            cur = nxt[cur]
        if cur == start:
            loops.append(np.asarray(loop, np.int64))
    return loops


def turning_angles(points: np.ndarray, normal: np.ndarray = NECK_NORMAL) -> np.ndarray:
    """Degrees the closed polyline `points` (in order) turns at each vertex, seen along `normal`."""
    p = np.asarray(points, np.float64)
    n = np.asarray(normal, np.float64)
    e = np.roll(p, -1, 0) - p
    e -= (e @ n)[:, None] * n
    e /= np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    prev = np.roll(e, 1, 0)
    return np.degrees(np.arctan2(np.cross(prev, e) @ n, (prev * e).sum(1)))


RING_SCALES = (0.85, 0.65, 0.42, 0.2)  # inner rings of the cap, as fractions of the rim


def _zip(outer: np.ndarray, t_out: np.ndarray, inner: np.ndarray, t_in: np.ndarray) -> list[tuple]:
    """Triangles of the strip between two closed rings given by their vertex ids and angular
    parameters t in [0, 1) (both increasing), winding like the rim -> centre fan."""
    tris, i, j, n, m = [], 0, 0, len(outer), len(inner)
    while i < n or j < m:
        a, b = outer[i % n], outer[(i + 1) % n]
        c, d = inner[j % m], inner[(j + 1) % m]
        ta = t_out[i + 1] if i + 1 < n else 1.0 + t_out[0]
        tb = t_in[j + 1] if j + 1 < m else 1.0 + t_in[0]
        if j >= m or (i < n and ta <= tb):
            tris.append((c, b, a))
            i += 1
        else:
            tris.append((c, d, a))
            j += 1
    return tris


def cap_mesh(vertices: np.ndarray, loop: np.ndarray, normal: np.ndarray = NECK_NORMAL
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A flat cap (in the cut plane) closing the rim `loop` (boundary winding of the kept surface).

    Concentric rings scaled toward the rim's centroid, coarser inward, and a centre vertex:
    returns (new vertices (M, 3), faces (F, 3) indexing the rim's vertices and the new ones
    numbered from len(vertices), facing down, and weights (M, R) that interpolate anything
    defined on the rim (the warp fields) smoothly over the cap: inverse squared distance).
    Raises ValueError when the rim is not star-shaped about its centroid.
    """
    v = np.asarray(vertices, np.float64)
    rim = v[loop]
    centre = rim.mean(0)
    centre -= (centre @ normal - rim @ normal).mean() * normal
    seg = np.linalg.norm(np.roll(rim, -1, 0) - rim, axis=1)
    t_rim = np.concatenate([[0.0], np.cumsum(seg)[:-1]]) / seg.sum()
    new, faces = [], []
    outer, t_out, base = np.asarray(loop), t_rim, len(v)
    for k, s in enumerate(RING_SCALES):
        m = max(8, len(loop) >> (k + 1))
        pick = np.searchsorted(t_rim, np.arange(m) / m).clip(0, len(loop) - 1)
        pick = np.unique(pick)
        ring = centre + s * (rim[pick] - centre)
        ids = base + len(new) + np.arange(len(pick))
        new += list(ring)
        faces += _zip(outer, t_out, ids, t_rim[pick])
        outer, t_out = ids, t_rim[pick]
    c = base + len(new)
    new.append(centre)
    faces += [(c, outer[(i + 1) % len(outer)], outer[i]) for i in range(len(outer))]
    new = np.asarray(new)
    faces = np.asarray(faces, np.int64)
    allv = np.concatenate([v, new])
    fn = np.cross(allv[faces[:, 1]] - allv[faces[:, 0]], allv[faces[:, 2]] - allv[faces[:, 0]])
    area = np.linalg.norm(fn, axis=1)
    if not (fn @ np.asarray(normal) <= 1e-9 * area.max()).all():
        raise ValueError("neck rim is not star-shaped about its centre")
    d2 = ((new[:, None, :] - rim[None]) ** 2).sum(-1)
    w = 1.0 / np.maximum(d2, 1e-6) ** 1.5
    return new.astype(np.float32), faces, (w / w.sum(1, keepdims=True)).astype(np.float32)
