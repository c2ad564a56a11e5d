"""Projection painting: a brush drawn on the 3D view paints every visible texel under it.

ArmorPaint's idea done on the CPU with one GL pass per view (software OpenGL here):

- `TexelMap` (once per mesh topology, off the GUI thread): the mesh drawn into UV space gives
  each covered texel its triangle and barycentrics, hence its rest-pose position; a k-d tree
  over those positions finds the texels near a point in space.
- `PickRenderer.render` (once per view: camera, pose or size changed): the posed mesh drawn from
  the camera; each pixel keeps the rest position and UV it shows, and the depth buffer.
- `footprint` (per dab): the brush is a sphere in space around the surface point under the
  pointer, its radius the brush's screen radius at that depth. Texels inside the sphere (found
  in rest space, so every UV island the sphere reaches is included: strokes cross seams) are
  posed with their barycentrics, projected, and kept if the depth buffer sees them and their
  triangle faces the camera. Strength falls off with the distance in space.
- `project_photo`: every visible texel takes the colour of a photo laid over the view.

Pixel coordinates: x right, y down (row index), as Qt and OrbitCamera.project use them.
Texel coordinates: the layer stack's (row 0 at the top; uv (0, 0) is the bottom-left corner).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .tiles import TILE

_SMALL = 1e-6


# ---------------------------------------------------------------------- texels of the mesh
@dataclass
class TexelMap:
    """Every texel the mesh covers in UV space: (row, col), its triangle and barycentrics."""
    size: int
    rows: np.ndarray        # (N,) int32
    cols: np.ndarray        # (N,) int32
    face: np.ndarray        # (N,) int32 triangle index
    bary: np.ndarray        # (N, 3) float32
    faces: np.ndarray       # (F, 3) int64 the mesh's triangles
    tree: object            # scipy cKDTree over the texels' rest positions (cm)
    rest: np.ndarray | None = None      # (N, 3) float32 rest positions
    corners: np.ndarray | None = None   # (N, 3) int32 the vertices of each texel's triangle
    index: np.ndarray | None = None     # (size, size) int32 texel -> entry (-1: not covered)

    def screen_box(self, vertices: np.ndarray, view_proj: np.ndarray, width: int, height: int,
                   rects, budget: int = 1000) -> tuple[int, int, int, int] | None:
        """Pixel box (x0, y0, x1, y1), y down, that texel `rects` (y0, y1, x0, x1) cover on
        screen (large rects are subsampled: a box, not an exact region); None if none is shown."""
        picks = []
        total = sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in rects)
        step = max(1, int(np.sqrt(total / budget)))      # one sampling step for all rects
        for y0, y1, x0, x1 in rects:
            sub = self.index[y0:y1:step, x0:x1:step]
            picks.append(sub[sub >= 0])
        idx = np.concatenate(picks) if picks else np.zeros(0, np.int64)
        if idx.size == 0:
            return None
        ok, sx, sy = _to_screen(self.points(vertices, idx), view_proj, width, height)
        if not ok.any():
            return None
        return int(sx.min()), int(sy.min()), int(np.ceil(sx.max())), int(np.ceil(sy.max()))

    def tile_boxes(self, vertices: np.ndarray, view_proj: np.ndarray, width: int, height: int,
                   tiles: np.ndarray, step: int = 4) -> np.ndarray:
        """Pixel boxes (k, 4) float (x0, y0, x1, y1; NaN: not shown) of the texel tiles
        `tiles` (k, 2) (tile row, column; TILE texels a side), from their covered texels every
        `step` texels: a view keeps them, so a stroke's screen box costs a few lookups."""
        tiles = np.asarray(tiles, np.int64).reshape(-1, 2)
        off = np.arange(0, TILE, step)
        rows = tiles[:, 0, None, None] * TILE + off[None, :, None] + np.zeros_like(off)[None, None, :]
        cols = tiles[:, 1, None, None] * TILE + off[None, None, :] + np.zeros_like(off)[None, :, None]
        inside = (rows < self.size) & (cols < self.size)
        idx = np.full(rows.shape, -1, np.int64)
        idx[inside] = self.index[rows[inside], cols[inside]]
        owner = np.broadcast_to(np.arange(len(tiles))[:, None, None], rows.shape)
        keep = idx >= 0
        idx, owner = idx[keep], owner[keep]
        out = np.full((len(tiles), 4), np.nan)
        if idx.size == 0:
            return out
        ok, sx, sy = _to_screen(self.points(vertices, idx), view_proj, width, height)
        owner = owner[ok]
        if owner.size == 0:
            return out
        lo = np.full((len(tiles), 2), np.inf)
        hi = np.full((len(tiles), 2), -np.inf)
        np.minimum.at(lo, owner, np.stack([sx, sy], 1))
        np.maximum.at(hi, owner, np.stack([sx, sy], 1))
        shown = np.isfinite(lo[:, 0])
        out[shown, :2], out[shown, 2:] = lo[shown], hi[shown]
        return out

    def points(self, vertices: np.ndarray, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """(n, 3) positions of texels `idx` on the mesh posed as `vertices` (V, 3)."""
        v = np.asarray(vertices, np.float32)
        f = self.corners[idx]
        b = self.bary[idx]
        return v[f[:, 0]] * b[:, 0:1] + v[f[:, 1]] * b[:, 1:2] + v[f[:, 2]] * b[:, 2:3]


def build_texel_map(rest_vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, size: int) -> TexelMap:
    """Rasterise the mesh in UV space at size x size (headless GL context of this thread).
    Seconds at 2048^2: run it off the GUI thread, once per mesh topology."""
    from scipy.spatial import cKDTree

    from core.fitting.raster import rasterize, uv_clip

    f = np.asarray(faces, np.int64)
    n_f = len(f)
    # De-indexed triangles: a per-corner attribute (face id + 1, b0, b1) interpolates to the
    # triangle's id (constant) and the texel's barycentrics.
    clip = uv_clip(np.asarray(uvs, np.float32))[f.reshape(-1)]
    attr = np.zeros((3 * n_f, 3), np.float32)
    attr[:, 0] = np.repeat(np.arange(1, n_f + 1, dtype=np.float32), 3)
    attr[0::3, 1] = 1.0
    attr[1::3, 2] = 1.0
    out, _ = rasterize(clip, np.arange(3 * n_f, dtype=np.int32).reshape(n_f, 3), attr, size, size,
                       depth_test=False)
    fid = np.rint(out[..., 0]).astype(np.int64) - 1
    rows, cols = np.nonzero((fid >= 0) & (fid < n_f))
    face = fid[rows, cols]
    b01 = out[rows, cols, 1:3]
    bary = np.concatenate([b01, 1.0 - b01.sum(1, keepdims=True)], axis=1).clip(0, 1).astype(np.float32)
    tm = TexelMap(size, rows.astype(np.int32), cols.astype(np.int32), face.astype(np.int32), bary, f, None)
    tm.corners = f[face].astype(np.int32)
    tm.index = np.full((size, size), -1, np.int32)
    tm.index[rows, cols] = np.arange(len(rows), dtype=np.int32)
    tm.rest = rest = tm.points(rest_vertices)
    tm.tree = cKDTree(rest.astype(np.float64), leafsize=32, balanced_tree=False, compact_nodes=False)
    return tm


# ---------------------------------------------------------------------- one view
@dataclass
class ViewPick:
    """What the camera sees, per pixel (row 0 at the top)."""
    rest: np.ndarray         # (H, W, 3) float32 rest position of the surface shown
    uv: np.ndarray           # (H, W, 2) float32
    depth: np.ndarray        # (H, W) float32 window depth in [0, 1]; 1 = nothing drawn
    view_proj: np.ndarray    # (4, 4) the camera's
    near: float
    far: float
    fov: float               # vertical, degrees

    @property
    def height(self) -> int:
        return self.depth.shape[0]

    @property
    def width(self) -> int:
        return self.depth.shape[1]

    def covered(self, x: float, y: float) -> bool:
        xi, yi = int(x), int(y)
        return 0 <= xi < self.width and 0 <= yi < self.height and self.depth[yi, xi] < 1.0

    def linear_depth(self, d: np.ndarray | float) -> np.ndarray:
        """Window depth -> distance along the view axis (cm)."""
        z = np.asarray(d, np.float64) * 2.0 - 1.0
        n, f = self.near, self.far
        return 2.0 * f * n / (f + n - z * (f - n))

    def cm_per_pixel(self, x: float, y: float) -> float:
        z = float(self.linear_depth(self.depth[int(y), int(x)]))
        return 2.0 * z * np.tan(np.radians(self.fov) / 2) / self.height

    def texel(self, x: float, y: float, size: int) -> tuple[float, float] | None:
        """The texel (x = column, y = row) of a texture of `size` shown at pixel (x, y)."""
        if not self.covered(x, y):
            return None
        u, v = self.uv[int(y), int(x)]
        return float(u * size), float((1.0 - v) * size)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(n, 3) posed points -> pixel x, pixel y, window depth."""
        p = np.asarray(points, np.float32)
        m = self.view_proj.astype(np.float32)
        clip = p @ m[:3, :3].T + m[:3, 3]
        w = p @ m[3, :3] + m[3, 3]
        w = np.where(np.abs(w) < _SMALL, _SMALL, w)
        ndc = clip / w[:, None]
        return ((ndc[:, 0] + 1) * 0.5 * self.width, (1 - ndc[:, 1]) * 0.5 * self.height,
                ndc[:, 2] * 0.5 + 0.5)


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F, 3) float32 unit normals of the posed triangles (once per pick, not per dab)."""
    tri = np.asarray(vertices, np.float32)[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), _SMALL)


def visible(pick: ViewPick, tm: TexelMap, vertices: np.ndarray, idx: np.ndarray, eye: np.ndarray,
            normals: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Which texels `idx` the view sees: (mask, pixel x, pixel y, facing cosine). `normals`:
    face_normals of `vertices` when the caller keeps them."""
    pts = tm.points(vertices, idx)
    sx, sy, d = pick.project(pts)
    xi, yi = sx.astype(np.int64), sy.astype(np.int64)
    on = (sx >= 0) & (xi < pick.width) & (sy >= 0) & (yi < pick.height) & (d > 0) & (d < 1)
    seen = np.zeros(len(idx), bool)
    if on.any():
        buf = pick.depth[yi[on], xi[on]]
        z_texel = pick.linear_depth(d[on])
        z_buf = pick.linear_depth(buf)
        # a texel on the shown surface agrees with the buffer to within the depth one pixel spans
        # on a grazing surface; another surface behind is centimetres away
        px = 2.0 * np.tan(np.radians(pick.fov) / 2) / pick.height
        seen[on] = (buf >= 1.0) | (z_texel <= z_buf + 0.15 + 3.0 * px * z_texel)
    if normals is None:
        normals = face_normals(vertices, tm.faces)
    to_eye = np.asarray(eye, np.float32)[None] - pts
    cos = (normals[tm.face[idx]] * to_eye).sum(1) / np.maximum(np.linalg.norm(to_eye, axis=1), _SMALL)
    return seen & (cos > 0), sx, sy, cos


class VisibilityCache:
    """Which texels one view sees, evaluated on first need: consecutive dabs of a stroke
    overlap, so each texel is posed, projected and depth-tested once per view, not per dab."""

    def __init__(self, tm: TexelMap) -> None:
        self.tm = tm
        self.key = None
        self.done = np.zeros(len(tm.rows), bool)
        self.seen = np.zeros(len(tm.rows), bool)

    def lookup(self, pick: ViewPick, vertices: np.ndarray, eye: np.ndarray, idx: np.ndarray,
               normals: np.ndarray | None = None) -> np.ndarray:
        key = (id(pick), id(vertices), tuple(np.asarray(eye, np.float64).round(6)))
        if key != self.key:
            self.done[:] = False
            self.key = key
        new = idx[~self.done[idx]]
        if new.size:
            self.seen[new] = visible(pick, self.tm, vertices, new, eye, normals)[0]
            self.done[new] = True
        return self.seen[idx]


def footprint(pick: ViewPick, tm: TexelMap, vertices: np.ndarray, eye: np.ndarray, x: float, y: float,
              radius_px: float, hardness: float, normals: np.ndarray | None = None,
              start: tuple[float, float] | None = None, cache: VisibilityCache | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The texels a dab of `radius_px` screen pixels at pixel (x, y) paints and their strength:
    (rows, cols, strength) or None when the pointer is off the surface. With `start` (the
    previous pointer pixel) the brush is the capsule from there to (x, y): with max-accumulated
    strokes that is what dense dabs along the segment would paint, for the cost of one."""
    if not pick.covered(x, y):
        return None
    c1 = pick.rest[int(y), int(x)].astype(np.float64)
    radius = max(float(radius_px), 0.5) * pick.cm_per_pixel(x, y)
    c0 = c1
    if start is not None and pick.covered(*start):
        c0 = pick.rest[int(start[1]), int(start[0])].astype(np.float64)
        if np.linalg.norm(c1 - c0) > 6 * radius:   # the pointer jumped to another surface
            c0 = c1
    seg = c1 - c0
    half = 0.5 * float(np.linalg.norm(seg))
    idx = np.fromiter(tm.tree.query_ball_point(0.5 * (c0 + c1), radius + half, return_sorted=False), np.int64)
    if idx.size == 0:
        return None
    p = tm.rest[idx] - c0.astype(np.float32)
    if half > 0:
        s = np.asarray(seg, np.float32)
        t = np.clip(p @ s / np.float32(s @ s), 0, 1)
        p -= t[:, None] * s
    dist = np.sqrt((p * p).sum(1))
    near = dist < radius
    idx, dist = idx[near], dist[near]
    if idx.size == 0:
        return None
    if cache is not None and cache.tm is tm:
        seen = cache.lookup(pick, vertices, eye, idx, normals)
    else:
        seen = visible(pick, tm, vertices, idx, eye, normals)[0]
    idx, dist = idx[seen], dist[seen]
    if idx.size == 0:
        return None
    h = float(np.clip(hardness, 0, 1))
    inner = h * radius * 0.999
    t = np.clip((dist - inner) / max(radius - inner, _SMALL), 0.0, 1.0)
    strength = (1.0 - t * t * (3.0 - 2.0 * t)).astype(np.float32)
    return tm.rows[idx], tm.cols[idx], strength


def blocks(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, size: int):
    """Scatter sparse texels into dense rectangles, one per group of touching tiles (a dab across
    a seam reaches two UV islands far apart: two small blocks, not one huge one).
    Yields (y0, x0, block (h, w) or (h, w, C) float32)."""
    from scipy.ndimage import label

    ty, tx = rows // TILE, cols // TILE
    n = size // TILE
    grid = np.zeros((n, n), bool)
    grid[ty, tx] = True
    labels, count = label(grid, structure=np.ones((3, 3), bool))
    lab = labels[ty, tx]
    for k in range(1, count + 1):
        sel = lab == k
        r, c = rows[sel], cols[sel]
        y0, x0 = int(r.min()), int(c.min())
        out = np.zeros((int(r.max()) - y0 + 1, int(c.max()) - x0 + 1) + values.shape[1:], np.float32)
        out[r - y0, c - x0] = values[sel]
        yield y0, x0, out


# ---------------------------------------------------------------------- photo
def project_photo(pick: ViewPick, tm: TexelMap, vertices: np.ndarray, eye: np.ndarray,
                  photo: np.ndarray, size: int) -> np.ndarray:
    """An RGBA (size, size, 4) uint8 layer: every texel the view sees takes the colour of
    `photo` (RGB, any size) laid over the view (scaled to cover it, centred); alpha fades on
    surfaces seen at a grazing angle, where one photo pixel is smeared over many texels."""
    img = np.asarray(photo)
    if img.ndim != 3 or img.shape[2] < 3:
        raise ValueError(f"a photo must be an RGB image, not an array of shape {img.shape}")
    w, h = pick.width, pick.height
    scale = max(w / img.shape[1], h / img.shape[0])
    rs = cv2.resize(np.ascontiguousarray(img[..., :3]), (max(w, int(round(img.shape[1] * scale))),
                                                          max(h, int(round(img.shape[0] * scale)))),
                    interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    oy, ox = (rs.shape[0] - h) // 2, (rs.shape[1] - w) // 2
    view = np.ascontiguousarray(rs[oy:oy + h, ox:ox + w])
    out = np.zeros((size, size, 4), np.uint8)
    normals = face_normals(vertices, tm.faces)
    scale_t = size / tm.size
    for start in range(0, len(tm.rows), 1 << 20):      # chunks bound the temporaries
        idx = np.arange(start, min(len(tm.rows), start + (1 << 20)))
        seen, sx, sy, cos = visible(pick, tm, vertices, idx, eye, normals)
        if not seen.any():
            continue
        idx, sx, sy, cos = idx[seen], sx[seen], sy[seen], cos[seen]
        col = _sample(view, sx - 0.5, sy - 0.5)
        a = np.clip((cos - 0.15) / 0.35, 0, 1)
        r = np.minimum((tm.rows[idx] * scale_t).astype(np.int64), size - 1)
        c = np.minimum((tm.cols[idx] * scale_t).astype(np.int64), size - 1)
        out[r, c, :3] = col
        out[r, c, 3] = np.round(a * 255).astype(np.uint8)
    return out


def _sample(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of `img` at (n,) float pixel positions (remap wants 2-D maps < 32767 wide)."""
    n = len(x)
    w = 4096
    rows = -(-n // w)
    mx = np.zeros(rows * w, np.float32)
    my = np.zeros(rows * w, np.float32)
    mx[:n], my[:n] = x, y
    out = cv2.remap(img, mx.reshape(rows, w), my.reshape(rows, w), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(rows * w, -1)[:n]


# ---------------------------------------------------------------------- the pick pass (GL)
class PickRenderer:
    """Draws the pick pass with a moderngl context the caller made current (the viewport's)."""

    def __init__(self, ctx) -> None:
        from core.render.shaders import shader_source

        self.ctx = ctx
        self.prog = ctx.program(vertex_shader=shader_source("paint_pick.vert"),
                                fragment_shader=shader_source("paint_pick.frag"))
        self._mesh: dict | None = None
        self._fbo = None
        self._fbo_size = (0, 0)

    def set_mesh(self, rest_vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray) -> None:
        self.release_mesh()
        ctx = self.ctx
        pos = ctx.buffer(np.ascontiguousarray(rest_vertices, np.float32).tobytes(), dynamic=True)
        rest = ctx.buffer(np.ascontiguousarray(rest_vertices, np.float32).tobytes())
        uv = ctx.buffer(np.ascontiguousarray(uvs, np.float32).tobytes())
        ibo = ctx.buffer(np.ascontiguousarray(faces, np.int32).tobytes())
        vao = ctx.vertex_array(self.prog, [(pos, "3f", "in_pos"), (rest, "3f", "in_rest"), (uv, "2f", "in_uv")],
                               index_buffer=ibo, index_element_size=4)
        self._mesh = {"pos": pos, "rest": rest, "uv": uv, "ibo": ibo, "vao": vao, "n": len(rest_vertices)}

    def release_mesh(self) -> None:
        if self._mesh:
            for k in ("vao", "pos", "rest", "uv", "ibo"):
                self._mesh[k].release()
        self._mesh = None

    def _target(self, w: int, h: int):
        if self._fbo_size != (w, h):
            if self._fbo is not None:
                for a in self._fbo_parts:
                    a.release()
                self._fbo.release()
            rest = self.ctx.texture((w, h), 4, dtype="f4")
            uv = self.ctx.texture((w, h), 4, dtype="f4")
            depth = self.ctx.depth_texture((w, h))
            self._fbo_parts = (rest, uv, depth)
            self._fbo = self.ctx.framebuffer(color_attachments=[rest, uv], depth_attachment=depth)
            self._fbo_size = (w, h)
        return self._fbo

    def render(self, vertices: np.ndarray, camera, width: int, height: int) -> ViewPick:
        """The pick of the mesh posed as `vertices` seen by `camera` (core.render.OrbitCamera)."""
        import moderngl

        if self._mesh is None:
            raise RuntimeError("PickRenderer.render before set_mesh")
        ctx = self.ctx
        self._mesh["pos"].write(np.ascontiguousarray(vertices, np.float32).tobytes())
        fbo = self._target(width, height)
        fbo.use()
        ctx.viewport = (0, 0, width, height)
        fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        ctx.enable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        ctx.disable(moderngl.BLEND)
        vp = camera.view_proj(width, height)
        self.prog["u_view_proj"].write(np.asarray(vp, np.float32).T.tobytes())
        self._mesh["vao"].render(moderngl.TRIANGLES)
        ctx.disable(moderngl.CULL_FACE)
        rest = np.frombuffer(fbo.read(components=4, dtype="f4", attachment=0), np.float32)
        uv = np.frombuffer(fbo.read(components=4, dtype="f4", attachment=1), np.float32)
        depth = np.frombuffer(fbo.read(components=1, dtype="f4", attachment=-1), np.float32)
        rest = rest.reshape(height, width, 4)[::-1, :, :3]
        uv = uv.reshape(height, width, 4)[::-1, :, :2]
        depth = depth.reshape(height, width)[::-1]
        return ViewPick(np.ascontiguousarray(rest), np.ascontiguousarray(uv), np.ascontiguousarray(depth),
                        np.asarray(vp, np.float64), float(camera.near), float(camera.far), float(camera.fov))

    def release(self) -> None:
        self.release_mesh()
        if self._fbo is not None:
            for a in self._fbo_parts:
                a.release()
            self._fbo.release()
            self._fbo = None


def _to_screen(p: np.ndarray, view_proj: np.ndarray, width: int, height: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points (n, 3) -> (in front of the camera mask (n,), pixel x, pixel y of those in front)."""
    m = np.asarray(view_proj, np.float32)
    w = p @ m[3, :3] + m[3, 3]
    ok = w > _SMALL
    xy = (p[ok] @ m[:2, :3].T + m[:2, 3]) / w[ok, None]
    return ok, (xy[:, 0] + 1) * 0.5 * width, (1 - xy[:, 1]) * 0.5 * height
