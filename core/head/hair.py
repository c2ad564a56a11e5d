"""Hair: geometry over the scalp, a strand texture and per-identity fitting. Plain numpy functions.

The hair is a volume defined once in the face model's *template space* (the mean head in the
rest pose, cm, +y up, +z to the front) as a signed distance built on the template skin SDF `T`:

    shell   T(x) < t(x)                   within the scalp region (a hairline curve + ears)
    drape   T(x') < t,  x' = (x, max(y, y0), z)    the skull's cross-section at y0 extruded
                                           down (medium and long styles fall straight down)
    tied    a thin shell + a bun or a ponytail (capsules along a curve)

Marching cubes extracts the outer surface (faces inside the skin are dropped: the hair is an
open shell that starts at the skin), decimated to a viewport budget. Every vertex gets a strand
tangent (the meridians of a pole frame: strands run from the crown down and back, or toward
the knot of tied hair; medium and long hair leave a side parting, `parting_coords`), a UV
(u across strands, repeating; v along them), a fade (0 at the hairline and the tips: the
shader thins strands out there) and an occlusion term.

A new identity costs a sparse matmul: each hair vertex is anchored to its nearest skin
vertices (inverse-distance weights over the template mesh), and moves with them, so the hair
follows the head's shape, its forehead under expressions and its pose (`fit_hair`).

The strand texture holds data, not colour (R brightness, G grey selector, B highlight noise,
A coverage), so colour and grey are shader uniforms; `colour_texture` bakes them for export.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np

from .settings import HairStyle

SkinSDF = Callable[[np.ndarray], np.ndarray]   # template points (N, 3) -> signed distance (N,) cm

HEAD_CENTRE = np.array([0.0, 4.5, -0.5], np.float32)   # middle of the skull (template space)
_AZ_Z0 = 0.5                      # azimuth is measured around the vertical line x = 0, z = 0.5
# Hairline height (y, cm) by azimuth (degrees from the front, symmetric): forehead, temple
# corners, sideburns in front of the ears, behind the ears, the nape.
# This is where strands root (fade 0); they thicken to full density ~1.5 cm above it, so the
# visible line at hairline 0 lies ~5 cm up the forehead from the brows (y ~6), the temple
# corners a little higher, then down in front of the ears to the sideburns.
_HAIRLINE_AZ = np.array([0, 18, 30, 40, 48, 55, 63, 70, 78, 84, 125, 150, 180], np.float32)
_HAIRLINE_Y = np.array([10.0, 10.15, 10.5, 10.4, 9.0, 7.3, 5.2, 3.3, 2.4, -1.0, -1.5, -3.0, -4.2],
                       np.float32)
_EAR = np.array([7.6, 0.8, -0.6], np.float32)     # ear centre (|x|, y, z) and its (y, z) radii
_EAR_R = np.array([3.4, 1.9], np.float32)
ROOT = 0.25                       # hair thickness at the hairline, cm (~ half a voxel)
EPS = 0.05                        # faces closer to the skin than this are the inside: dropped


@dataclass(frozen=True)
class _Shape:
    top: float                    # thickness on the crown, cm
    side: float                   # fraction of it at the sides and the nape
    ramp: float                   # cm from the hairline to full thickness
    ear_margin: float             # cm kept free around the ears (negative: hair may cover them)
    drape_y: float | None = None  # level whose cross-section falls straight down
    end_y: float = -100.0         # where the drape ends (tips)
    layer: float = 1.6            # thickness of the hanging curtain
    clump: float = 0.18           # relative depth of the grooves between clumps
    knot: bool = False            # tied back: bun or ponytail


def style_shine(style: HairStyle) -> float:
    """Strength of the strand highlights: stubble is matte, long hair glossy."""
    return {"buzz": 0.3, "short": 0.8, "tied": 0.9}.get(style.style, 1.0)


def style_shape(style: HairStyle) -> _Shape | None:
    """Geometric parameters of a style at its length (None for bald)."""
    L = style.length
    if style.style == "bald":
        return None
    if style.style == "buzz":
        return _Shape(top=0.15 + 0.35 * L, side=0.8, ramp=0.6, ear_margin=0.5, clump=0.0)
    if style.style == "short":
        return _Shape(top=0.8 + 1.4 * L, side=0.45, ramp=2.0, ear_margin=0.6, clump=0.22)
    if style.style == "medium":
        return _Shape(top=1.6 + 0.9 * L, side=0.8, ramp=2.2, ear_margin=-1.0, drape_y=6.0,
                      end_y=-1.5 - 6.5 * L, layer=1.8, clump=0.25)
    if style.style == "long":
        return _Shape(top=1.5 + 0.8 * L, side=0.85, ramp=2.2, ear_margin=-1.0, drape_y=6.0,
                      end_y=-7.0 - 9.0 * L, layer=1.8, clump=0.3)
    if style.style == "tied":
        return _Shape(top=0.45, side=0.9, ramp=1.0, ear_margin=0.5, clump=0.1, knot=True)
    raise ValueError(f"unknown hair style {style.style!r}")


# --- the scalp region -----------------------------------------------------------------------

def azimuth(points: np.ndarray) -> np.ndarray:
    """Degrees around the vertical axis: 0 at the face, +-180 at the back (x > 0: + side)."""
    p = np.asarray(points, np.float32)
    return np.degrees(np.arctan2(p[:, 0], p[:, 2] - _AZ_Z0))


def hairline_height(az: np.ndarray, hairline: float) -> np.ndarray:
    """Height of the hairline at azimuth `az` (degrees); hairline -1 lowers the front, +1 makes
    it recede (more at the temples: the M shape of a receding line)."""
    a = np.abs(az)
    y = np.interp(a, _HAIRLINE_AZ, _HAIRLINE_Y)
    front = np.clip((66.0 - a) / 14.0, 0.0, 1.0)          # 1 over the forehead, 0 from 66 deg
    temples = np.exp(-((a - 40.0) / 14.0) ** 2)
    if hairline >= 0:
        y = y + hairline * front * (1.5 + 1.6 * temples)  # recedes most at the temples: M
    else:
        y = y + hairline * front * (1.2 + 0.3 * temples)  # low, straighter line
    return y


def scalp_distance(points: np.ndarray, hairline: float = 0.0, ear_margin: float = 0.6) -> np.ndarray:
    """Signed distance-like value (cm) of points to the hairline: > 0 on the scalp. The ears
    are cut out with `ear_margin` cm around them (negative margins let hair cover them)."""
    p = np.asarray(points, np.float32)
    d = p[:, 1] - hairline_height(azimuth(p), hairline)
    e = np.stack([(p[:, 1] - _EAR[1]) / _EAR_R[0], (p[:, 2] - _EAR[2]) / _EAR_R[1]], 1)
    ear = (np.linalg.norm(e, axis=1) - 1.0) * _EAR_R.min() - ear_margin
    ear = np.where(np.abs(p[:, 0]) > 4.5, ear, 10.0)
    return np.minimum(d, ear)


# --- strand frames --------------------------------------------------------------------------

def _pole_frame(axis, front=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Rows: pole axis, e1 (away from `front`: the UV seam falls at the front), e2."""
    a = np.asarray(axis, np.float64)
    a /= np.linalg.norm(a)
    f = np.asarray(front, np.float64)
    e1 = -(f - (f @ a) * a)
    e1 /= np.linalg.norm(e1)
    return np.stack([a, e1, np.cross(a, e1)]).astype(np.float32)


CROWN_FRAME = _pole_frame((0.0, 1.0, -0.45))          # strands fall from a crown whorl
TIED_AXIS = (0.0, 0.15, -1.0)                          # strands pulled back to the knot


def pole_coords(points: np.ndarray, centre: np.ndarray, frame: np.ndarray, repeats: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, v, meridian): u = azimuth around the pole in [0, repeats), v = angle from the pole
    (radians / pi * 2), meridian = unit direction away from the pole along the sphere."""
    d = np.asarray(points, np.float32) - centre
    r = np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6)
    dn = d / r
    a, e1, e2 = frame
    phi = np.arctan2(dn @ e2, dn @ e1)
    cos_t = np.clip(dn @ a, -1.0, 1.0)
    u = (phi / (2 * np.pi) + 0.5) * repeats
    v = np.arccos(cos_t) / np.pi * 2.0
    m = cos_t[:, None] * dn - a[None, :]                    # d/dtheta of the unit direction
    m /= np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-6)
    return u.astype(np.float32), v.astype(np.float32), m.astype(np.float32)


# Side parting of the hanging styles: a line on top of the head (x = PARTING_X, from z front to
# back in the horizontal plane) that strands leave on both sides; behind its back end they fall
# from the crown, in front of its front end they fan out over the forehead.
PARTING_X = 2.6
PARTING_Z = (7.0, -3.0)           # front and back end (z, cm)
_PART_CAP = 4.0                   # cm of u per radian around the ends (texture spacing there)
_PART_U = 6.3                     # cm of arc per texture repeat (as the pole frames' at the ears)


def parting_coords(points: np.ndarray, centre: np.ndarray = HEAD_CENTRE
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, v, direction) of strands leaving the side parting: u runs along the parting and
    around its ends, mirrored on the two sides (so it is continuous over the parting: no UV
    seam), v is the angle (radians / pi * 2) down from the parting seen from `centre`'s
    height, direction = away from the parting horizontally and down (as pole_coords' meridians:
    on the top it points sideways, on the sides down)."""
    p = np.asarray(points, np.float32)
    z0, z1 = PARTING_Z
    length = z0 - z1
    t, away = _parting_offset(p)
    h = np.linalg.norm(away, axis=1)
    psi = np.abs(np.arctan2(away[:, 0], away[:, 2]))             # 0 forward, pi back
    arc = np.where(t <= 0.0, psi * _PART_CAP,
                   np.where(t >= 1.0, np.pi / 2 * _PART_CAP + length + (psi - np.pi / 2) * _PART_CAP,
                            np.pi / 2 * _PART_CAP + t * length))
    u = arc / _PART_U
    v = np.arctan2(h, p[:, 1] - centre[1]) / np.pi * 2.0
    away = away / np.maximum(h, 1e-6)[:, None]
    m = away - np.array([0.0, 1.0, 0.0], np.float32)
    m /= np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-6)
    return u.astype(np.float32), v.astype(np.float32), m.astype(np.float32)


def _parting_offset(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position along the parting (0 front .. 1 back, clamped) and the horizontal offset from it."""
    z0, z1 = PARTING_Z
    t = np.clip((z0 - p[:, 2]) / (z0 - z1), 0.0, 1.0)
    away = np.stack([p[:, 0] - PARTING_X, np.zeros(len(p), np.float32), p[:, 2] - (z0 - t * (z0 - z1))], 1)
    return t, away


def parting_gap(points: np.ndarray) -> np.ndarray:
    """0..1: 0 on the parting line itself (on top of the head), 1 from ~1.2 cm beside it."""
    p = np.asarray(points, np.float32)
    t, away = _parting_offset(p)
    h = np.linalg.norm(away, axis=1)
    # Fades in from the front end and out toward the crown, where the hair falls from a whorl.
    on_top = _smoothstep(-0.05, 0.1, t) * _smoothstep(1.0, 0.6, t) * _smoothstep(9.0, 11.0, p[:, 1])
    return (1.0 - on_top * (1.0 - _smoothstep(0.0, 1.2, h))).astype(np.float32)


def _strand_coords(points: np.ndarray, shape: "_Shape") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The style's strand field: side parting (hanging styles), knot (tied) or crown whorl."""
    if shape.drape_y is not None:
        return parting_coords(points)
    frame = _pole_frame(TIED_AXIS) if shape.knot else CROWN_FRAME
    return pole_coords(points, HEAD_CENTRE, frame, REPEATS)


def _clumps(u: np.ndarray, seed: int = 3) -> np.ndarray:
    """Periodic noise in [-1, 1] across strands (u in repeats of the texture): clumps."""
    rng = np.random.default_rng(seed)
    out = np.zeros_like(u, dtype=np.float32)
    for k, amp in ((3, 0.35), (5, 0.4), (9, 0.25)):     # cycles per texture repeat
        out += amp * np.sin(2 * np.pi * k * u + rng.uniform(0, 2 * np.pi))
    return out


# --- the hair volume ------------------------------------------------------------------------

_TAIL_SAMPLES = 10
BUN_DEPTH = 0.7                   # bun depth / radius


def _knot(shape: _Shape, length: float) -> dict:
    """Bun (short tied hair) or knot + ponytail (longer), as sample points with radii."""
    knot = np.array([0.0, 8.0, -10.4], np.float32)
    if length < 0.35:
        r = 2.2 + 3.0 * length
        # Pressed into the head a little (its hidden part is cut away with the skin's inside).
        centre = np.array([0.0, knot[1] + 0.3, -9.4 - 0.35 * r], np.float32)
        return {"centres": centre[None], "radii": np.array([r], np.float32),
                "tail": False}
    s = np.linspace(0.0, 1.0, _TAIL_SAMPLES, dtype=np.float32)[:, None]
    drop = 6.0 + 14.0 * length
    p0, p1, p2 = knot + [0, 0, -0.8], knot + [0, -1.0, -4.0], knot + [0, -drop, -3.0]
    pts = (1 - s) ** 2 * p0 + 2 * (1 - s) * s * p1 + s ** 2 * p2    # quadratic Bezier
    radii = (1.9 - 1.2 * s[:, 0] ** 1.5).astype(np.float32)
    return {"centres": pts.astype(np.float32), "radii": radii, "tail": True, "knot": knot}


def _capsules(points: np.ndarray, centres: np.ndarray, radii: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance to a chain of round cones; also the nearest segment's parameter (0..1 along the
    chain) and axis direction."""
    p = np.asarray(points, np.float32)
    if len(centres) == 1:              # a bun: flattened against the head (z squashed)
        q = (p - centres[0]) * np.array([1.0, 1.0, 1.0 / BUN_DEPTH], np.float32)
        d = (np.linalg.norm(q, axis=1) - radii[0]) * BUN_DEPTH
        return d, np.zeros(len(p), np.float32), np.tile([0.0, 0.0, -1.0], (len(p), 1)).astype(np.float32)
    best = np.full(len(p), np.inf, np.float32)
    s_best = np.zeros(len(p), np.float32)
    axis = np.zeros((len(p), 3), np.float32)
    n = len(centres) - 1
    for i in range(n):
        a, b = centres[i], centres[i + 1]
        ab = b - a
        h = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
        d = np.linalg.norm(p - (a + h[:, None] * ab), axis=1) - (radii[i] + h * (radii[i + 1] - radii[i]))
        closer = d < best
        best = np.where(closer, d, best)
        s_best = np.where(closer, (i + h) / n, s_best)
        axis[closer] = ab / np.linalg.norm(ab)
    return best, s_best, axis


def hair_sdf(points: np.ndarray, style: HairStyle, skin_sdf: SkinSDF) -> np.ndarray:
    """Signed distance-like field (cm, negative inside) of the hair's outer envelope in
    template space; it includes the head inside the scalp region (the hair starts at the skin),
    so its surface outside the skin is the hair's surface."""
    shape = style_shape(style)
    p = np.asarray(points, np.float32)
    if shape is None:
        return np.full(len(p), 1e3, np.float32)
    q = p.copy()
    if shape.drape_y is not None:
        q[:, 1] = np.maximum(p[:, 1], shape.drape_y)
    sd = scalp_distance(q, style.hairline, shape.ear_margin)
    t = _thickness(q, shape, style.length)
    # Thin at the hairline but thick enough for the grid to resolve it (the fade hides its edge).
    t = ROOT + (t - ROOT) * _smoothstep(0.3, 0.3 + shape.ramp, sd)
    tq = skin_sdf(q)
    d = np.maximum(tq - t, -sd)
    if shape.drape_y is not None:
        u = parting_coords(p)[0]
        end = shape.end_y + 1.5 * _clumps(u * 0.7, seed=7)          # ragged tips
        d = np.maximum(d, end - p[:, 1])
        below = p[:, 1] < shape.drape_y                             # hollow curtain
        d = np.where(below, np.maximum(d, (t - shape.layer) - tq), d)
    if shape.knot:
        k = _knot(shape, style.length)
        d = np.minimum(d, _capsules(p, k["centres"], k["radii"])[0])
    return d.astype(np.float32)


def _thickness(q: np.ndarray, shape: _Shape, length: float) -> np.ndarray:
    top = np.clip((q[:, 1] - 4.0) / 7.0, 0.0, 1.0)                  # crown 1, sides and nape 0
    t = shape.top * (shape.side + (1.0 - shape.side) * top ** 0.7)
    front = np.clip(1.0 - np.abs(azimuth(q)) / 50.0, 0.0, 1.0)     # combed back off the forehead
    t = t * (1.0 - 0.15 * front * (shape.top > 1.0))
    if shape.clump > 0:
        u, v, _ = (parting_coords(q) if shape.drape_y is not None else
                   pole_coords(q, HEAD_CENTRE, CROWN_FRAME, REPEATS))
        # Clumps converge at the pole: fade them out there, or the whorl turns into spikes.
        t = t * (1.0 + shape.clump * _clumps(u) * _smoothstep(0.3, 0.9, v))
    if shape.drape_y is not None:
        t = t * (0.8 + 0.2 * parting_gap(q))                          # hair lies flat at the parting
        t = t + 0.08 * np.maximum(shape.drape_y - q[:, 1], 0.0)    # fuller toward the tips
    return np.maximum(t, 0.1).astype(np.float32)


def _in_plane(m: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Unit directions m projected into the planes of unit normals n; where m is (nearly) along
    n, any direction in the plane (the shader needs a unit tangent everywhere)."""
    t = m - np.einsum("ij,ij->i", m, n)[:, None] * n
    length = np.linalg.norm(t, axis=1)
    bad = length < 1e-3
    if bad.any():
        alt = np.cross(n[bad], np.array([1.0, 0.0, 0.0], np.float32))
        alt[np.linalg.norm(alt, axis=1) < 1e-3] = (0.0, 0.0, 1.0)
        t[bad] = alt
        length = np.linalg.norm(t, axis=1)
    return (t / length[:, None]).astype(np.float32)


def _smoothstep(a: float, b: float, x: np.ndarray) -> np.ndarray:
    s = np.clip((x - a) / (b - a), 0.0, 1.0)
    return s * s * (3 - 2 * s)


# --- template geometry ----------------------------------------------------------------------

REPEATS = 8                       # strand texture repeats around the pole
VOXEL = 0.4                       # marching-cubes spacing, cm
HAIR_MAX_TRIANGLES = 10_000       # viewport budget (llvmpipe: skin + eyes + hair >= 60 fps)


@dataclass
class HairTemplate:
    """Hair of one style in template space, shared by every identity."""
    style: HairStyle
    vertices: np.ndarray          # (V, 3) float32, template space, cm
    faces: np.ndarray             # (F, 3) int32, counter-clockwise from outside
    uvs: np.ndarray               # (V, 2) u across strands (repeats), v along them
    tangents: np.ndarray          # (V, 3) unit strand directions (root -> tip)
    fade: np.ndarray              # (V,) 1 = full hair, toward 0 at the hairline and tips
    occlusion: np.ndarray         # (V,) 0..1 ambient occlusion (under the curtain, near skin)

    @property
    def empty(self) -> bool:
        return len(self.faces) == 0


def _box(style: HairStyle, shape: _Shape) -> tuple[np.ndarray, np.ndarray]:
    lo = np.array([-12.5, -7.0, -13.5], np.float32)
    hi = np.array([12.5, 17.5, 14.0], np.float32)
    if shape.drape_y is not None:
        lo[1] = min(lo[1], shape.end_y - 2.5)
        lo[0], hi[0] = -14.0, 14.0
    if shape.knot:
        k = _knot(shape, style.length)
        lo = np.minimum(lo, (k["centres"] - k["radii"][:, None]).min(0) - 1.0)
    return lo, hi


def build_hair_template(style: HairStyle, skin_sdf: SkinSDF, voxel: float = VOXEL,
                        max_triangles: int | None = HAIR_MAX_TRIANGLES) -> HairTemplate:
    """Marching cubes of hair_sdf outside the skin, decimated, with strand attributes."""
    from core.facemodel.mesh import marching_cubes
    from core.meshops import decimate, grid_points, largest_parts, vertex_normals

    shape = style_shape(style)
    if shape is None:
        return _empty_template(style)
    lo, hi = _box(style, shape)
    counts = tuple(int(np.ceil((hi[k] - lo[k]) / voxel)) + 1 for k in range(3))
    hi = lo + (np.array(counts) - 1) * voxel
    pts = grid_points(lo, hi, counts)
    grid = hair_sdf(pts.reshape(-1, 3), style, skin_sdf).reshape(pts.shape[:3])
    v, f = marching_cubes(grid, lo, hi)
    if len(f) == 0:
        return _empty_template(style)
    # Only the part outside the skin is hair; what lies inside the head is the envelope's cut.
    centroids = v[f].mean(1)
    f = f[skin_sdf(centroids) > EPS]
    v, f = _compact(v, f)
    if len(f) == 0:
        return _empty_template(style)
    v, f = largest_parts(v, f, min_fraction=0.08)
    if max_triangles:
        v, f = decimate(v, f, max_triangles)
    f = np.asarray(f, np.int32)
    n = vertex_normals(v, f)
    uv, tangent, fade = _strand_attributes(v, n, style, shape)
    occ = _occlusion(v, n, skin_sdf)
    # Near the hairline the shell rises from the skin, its normal tilts along the forehead and
    # the probe finds skin: that is thin hair in the open, not a crevice (else a dark rim).
    q = v.copy()
    if shape.drape_y is not None:
        q[:, 1] = np.maximum(v[:, 1], shape.drape_y)
    near_line = 1.0 - _smoothstep(0.5, 0.5 + shape.ramp, scalp_distance(q, style.hairline, shape.ear_margin))
    occ = occ + (1.0 - occ) * 0.85 * near_line
    v, f, uv, tangent, fade, occ = _split_u_seam(v, f, uv, [tangent, fade, occ])
    return HairTemplate(style, v.astype(np.float32), f.astype(np.int32), uv.astype(np.float32),
                        tangent.astype(np.float32), fade.astype(np.float32), occ.astype(np.float32))


def _empty_template(style: HairStyle) -> HairTemplate:
    z3, z2, z1 = np.zeros((0, 3), np.float32), np.zeros((0, 2), np.float32), np.zeros(0, np.float32)
    return HairTemplate(style, z3, np.zeros((0, 3), np.int32), z2, z3.copy(), z1, z1.copy())


def _compact(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    used = np.zeros(len(v), bool)
    used[f.ravel()] = True
    remap = np.cumsum(used) - 1
    return v[used], remap[f].astype(np.int64)


def _strand_attributes(v: np.ndarray, n: np.ndarray, style: HairStyle, shape: _Shape
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u, vv, m = _strand_coords(v, shape)
    if shape.knot:
        m = -m                       # toward the knot: from the hairline back
    q = v.copy()
    if shape.drape_y is not None:
        q[:, 1] = np.maximum(v[:, 1], shape.drape_y)
        g = _smoothstep(shape.drape_y + 2.0, shape.drape_y - 3.0, v[:, 1])[:, None]
        m = (1 - g) * m + g * np.array([0.0, -1.0, 0.0], np.float32)   # hanging: straight down
    sd = scalp_distance(q, style.hairline, shape.ear_margin)
    fade = _smoothstep(-0.6, 1.6, sd)          # sparse wisps over the first ~1.5 cm
    if shape.drape_y is not None:
        # A curtain's front edge is a cut through hanging hair, not a hairline: keep it dense.
        fade = np.maximum(fade, _smoothstep(shape.drape_y + 1.0, shape.drape_y - 1.0, v[:, 1]))
        fade = fade * _smoothstep(shape.end_y - 1.5, shape.end_y + 2.5, v[:, 1])
        fade = fade * (0.75 + 0.25 * parting_gap(v))                 # a little scalp in the parting
        vv = np.where(v[:, 1] < shape.drape_y, vv + (shape.drape_y - v[:, 1]) * 0.05, vv)
    if shape.knot:
        k = _knot(shape, style.length)
        dk, s, axis = _capsules(v, k["centres"], k["radii"])
        on_knot = dk < 0.35
        if k["tail"]:
            # u around the tail's axis, v along it; strands run down the tail.
            centre = np.stack([np.interp(s, np.linspace(0, 1, len(k["centres"])), k["centres"][:, c])
                               for c in range(3)], 1)
            rel = v - centre
            ku = np.arctan2(rel[:, 0], -rel[:, 2])
            ku = (ku / (2 * np.pi) + 0.5) * 3
            u = np.where(on_knot, ku, u)
            vv = np.where(on_knot, s * 3.0, vv)
            m = np.where(on_knot[:, None], axis, m)
            fade = np.where(on_knot, _smoothstep(1.02, 0.8, s), fade)
        else:
            # Strands coil around the bun's axis: along them runs the azimuth, across them the
            # angle from the axis (the texture's slow v variation hides the azimuth's seam).
            frame = _pole_frame((0.0, 0.0, -1.0), (0.0, 1.0, 0.0))
            bu, bv, _ = pole_coords(v, k["centres"][0], frame, 3)
            coil = np.cross(frame[0][None, :], v - k["centres"][0])
            u = np.where(on_knot, bv * 6.0, u)
            vv = np.where(on_knot, bu, vv)
            m = np.where(on_knot[:, None], coil, m)
            fade = np.where(on_knot, 1.0, fade)
    return np.stack([u, vv], 1), _in_plane(m, n), fade.astype(np.float32)


def _occlusion(v: np.ndarray, n: np.ndarray, skin_sdf: SkinSDF) -> np.ndarray:
    """Open space along the normal (the inside of a curtain faces the neck: dark) and a little
    darker where the surface faces down."""
    probe = 2.0
    free = np.clip((skin_sdf(v + probe * n) - skin_sdf(v)) / probe, 0.0, 1.0)
    return (0.35 + 0.65 * free) * (0.8 + 0.2 * (0.5 + 0.5 * n[:, 1]))


def _split_u_seam(v, f, uv, attrs):
    """Triangles that straddle u = 0 / REPEATS get copies of their low-u corners at u + R, so
    per-vertex u interpolates without sweeping the whole texture across one triangle."""
    f = np.asarray(f, np.int64).copy()
    u = uv[f, 0]
    period = np.where(u.max(1) > REPEATS * 0.75, float(REPEATS), 3.0)   # tail/bun use 3
    straddle = (u.max(1) - u.min(1)) > period * 0.5
    if not straddle.any():
        return v, f, uv, *attrs
    rows, cols = np.nonzero(straddle[:, None] & (u < (u.max(1, keepdims=True) - period[:, None] * 0.5)))
    old = f[rows, cols]
    key, inv = np.unique(old, return_inverse=True)
    new_idx = len(v) + np.arange(len(key))
    f[rows, cols] = new_idx[inv]
    shift = np.zeros(len(key), np.float32)
    np.maximum.at(shift, inv, period[rows].astype(np.float32))
    uv_new = uv[key].copy()
    uv_new[:, 0] += shift
    out = [np.concatenate([v, v[key]]), f, np.concatenate([uv, uv_new])]
    out += [np.concatenate([a, a[key]]) for a in attrs]
    return tuple(out)


# --- strand texture -------------------------------------------------------------------------

TEXTURE_SIZE = (256, 512)         # (rows along the strands, columns across them) per repeat


@lru_cache(maxsize=2)
def strand_texture(size: tuple[int, int] = TEXTURE_SIZE, seed: int = 11) -> np.ndarray:
    """(H, W, 4) uint8 strand data, tileable in both directions (row 0 at the top):
    R brightness, G grey selector (a strand is grey where G < grey), B highlight noise,
    A coverage (alpha * fade >= 0.5 keeps a strand: sparse strands survive at the fringe)."""
    h, w = size
    rng = np.random.default_rng(seed)
    x = np.arange(w) / w
    clump = np.zeros(w)
    for k, amp in ((5, 0.5), (9, 0.3), (17, 0.2)):      # the same clumps as the geometry's
        clump += amp * np.sin(2 * np.pi * k * x + rng.uniform(0, 2 * np.pi))
    # Each column is a strand; neighbours share a little (strands lie in wisps).
    fine = rng.normal(0, 1, w)
    fine = 0.6 * fine + 0.4 * np.convolve(np.r_[fine[-2:], fine, fine[:2]], np.ones(5) / 5, "valid")
    bright = 0.82 + 0.12 * clump + 0.16 * fine
    y = np.arange(h) / h
    along = 1.0 + 0.06 * np.sin(2 * np.pi * (y[:, None] * 2 + rng.uniform(0, 1, w)[None]))
    r = np.clip(bright[None] * along, 0.35, 1.25) / 1.25
    g = np.broadcast_to(rng.uniform(0, 1, w)[None], (h, w))
    b = np.clip(0.5 + 0.5 * rng.normal(0, 1, w)[None] * along, 0, 1)
    # Coverage varies by wisp (8 strands) more than by strand, so a thinned-out fringe shows
    # separate wisps, not a dither that mipmapping would average into a hard edge.
    wisp = np.repeat(rng.uniform(0, 1, w // 8), 8)
    cover = np.clip(0.7 * wisp + 0.3 * rng.uniform(0, 1, w), 0, 1) ** 1.3
    a = np.broadcast_to(1.0 - 0.5 * cover[None], (h, w))
    img = np.stack([r, g, np.broadcast_to(b, (h, w)), a], -1)
    return np.ascontiguousarray(np.round(img * 255), np.uint8)


GREY = (0.78, 0.78, 0.76)         # sRGB of grey/white strands


def strand_colours(strands: np.ndarray, colour, grey: float) -> np.ndarray:
    """(H, W, 4) uint8 RGBA: the hair colour with grey strands mixed in (export; the viewport
    does the same in hair.frag)."""
    s = strands.astype(np.float32) / 255.0
    base = np.asarray(colour, np.float32)
    grey_col = np.asarray(GREY, np.float32) * (0.9 + 0.2 * s[..., 2:3])
    x = np.clip((grey * 1.3 - 0.15 - (s[..., 1:2] - 0.15)) / 0.3, 0, 1)   # as hair.frag
    col = base + (grey_col - base) * (x * x * (3 - 2 * x))
    lin = (col ** 2) * (s[..., 0:1] * 1.25) ** 2               # brightness in linear light
    rgb = np.sqrt(np.clip(lin, 0, 1))
    return np.ascontiguousarray(np.round(np.concatenate([rgb, s[..., 3:4]], -1) * 255), np.uint8)


def colour_texture(style: HairStyle, size: tuple[int, int] = TEXTURE_SIZE) -> np.ndarray:
    """The exported RGBA texture of a hair style (colour and grey baked in)."""
    return strand_colours(strand_texture(size), style.colour, style.grey)


# --- per identity ---------------------------------------------------------------------------

@dataclass
class HairMesh:
    """Hair fitted to one identity: neutral vertices plus 53 expression offsets (the skin's
    under it), in the same frame as the head mesh it was fitted to."""
    style: HairStyle
    vertices: np.ndarray          # (V, 3) at neutral expression
    faces: np.ndarray
    uvs: np.ndarray
    normals: np.ndarray
    tangents: np.ndarray
    fade: np.ndarray
    occlusion: np.ndarray
    offsets: np.ndarray = field(repr=False)   # (53, V, 3)

    @property
    def empty(self) -> bool:
        return len(self.faces) == 0

    def posed(self, expression: np.ndarray | None = None) -> np.ndarray:
        """(V, 3) vertices under 53 expression weights (None: neutral)."""
        if expression is None or self.empty:
            return self.vertices.copy()
        w = np.asarray(expression, np.float32).reshape(-1)
        return self.vertices + np.einsum("e,evc->vc", w, self.offsets)

    def attributes(self) -> np.ndarray:
        """(V, 2) per-vertex (fade, occlusion) as the shader reads them."""
        return np.stack([self.fade, self.occlusion], 1).astype(np.float32)


def anchor_weights(hair_points: np.ndarray, skin_template: np.ndarray, k: int = 6):
    """Sparse (Vh, Vs) inverse-distance weights of each hair point's k nearest skin vertices
    (template space), and the distance to the nearest one (cm)."""
    import scipy.sparse as sp
    from scipy.spatial import cKDTree

    tree = cKDTree(np.asarray(skin_template, np.float64))
    d, idx = tree.query(np.asarray(hair_points, np.float64), k=k)
    w = 1.0 / (d + 0.3) ** 2
    w /= w.sum(1, keepdims=True)
    rows = np.repeat(np.arange(len(hair_points)), k)
    m = sp.csr_matrix((w.ravel().astype(np.float32), (rows, idx.ravel())),
                      shape=(len(hair_points), len(skin_template)))
    return m, d[:, 0].astype(np.float32)


def fit_hair(template: HairTemplate, skin_template: np.ndarray, skin_neutral: np.ndarray,
             skin_offsets: np.ndarray | None = None, weights=None) -> HairMesh:
    """Hair on one identity: every hair vertex moves with its anchor skin vertices.

    skin_template (Vs, 3): the head mesh's template-space positions (Mesh.template);
    skin_neutral (Vs, 3): its vertices at neutral expression (Animator.neutral());
    skin_offsets (53, Vs, 3): its morph targets (Animator.morph_targets()), optional.
    `weights` = anchor_weights(...)[0] when the caller caches it per skin topology.
    """
    from core.meshops import vertex_normals

    if template.empty:
        z = np.zeros((0, 3), np.float32)
        return HairMesh(template.style, z, template.faces, template.uvs, z, z, template.fade,
                        template.occlusion, np.zeros((53, 0, 3), np.float32))
    if weights is None:
        weights, dist = anchor_weights(template.vertices, skin_template)
    else:
        dist = None
    disp = weights @ (np.asarray(skin_neutral, np.float32) - np.asarray(skin_template, np.float32))
    v = (template.vertices + disp).astype(np.float32)
    n = vertex_normals(v, template.faces)
    t = _in_plane(template.tangents, n)
    if skin_offsets is not None:
        so = np.asarray(skin_offsets, np.float32)
        flat = so.transpose(1, 0, 2).reshape(so.shape[1], -1)            # (Vs, 53*3)
        off = np.asarray(weights @ flat).reshape(len(v), so.shape[0], 3).transpose(1, 0, 2)
        if dist is None:
            dist = _nearest_distance(template.vertices, skin_template)
        # Hair far from the skin (a ponytail, curtain tips) follows it less: the forehead's
        # motion carries the hairline, the jaw does not swing the hair.
        off = off * np.exp(-np.maximum(dist - 2.5, 0.0) / 3.0)[None, :, None]
    else:
        off = np.zeros((53, len(v), 3), np.float32)
    return HairMesh(template.style, v, template.faces, template.uvs, n.astype(np.float32),
                    t.astype(np.float32), template.fade, template.occlusion,
                    np.ascontiguousarray(off, np.float32))


def _nearest_distance(points: np.ndarray, skin_template: np.ndarray) -> np.ndarray:
    from scipy.spatial import cKDTree

    return cKDTree(np.asarray(skin_template, np.float64)).query(np.asarray(points, np.float64))[0].astype(np.float32)


# --- face model glue ------------------------------------------------------------------------

def template_skin_sdf(model) -> SkinSDF:
    """The face model's template SDF (a trilinear grid: fast) as a numpy function."""
    import torch

    net = model.net

    def sdf(points: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(points, np.float32).reshape(-1, 3))
        with torch.no_grad():
            return torch.cat([net.template_sdf(x[i:i + 1 << 18]) for i in range(0, len(x), 1 << 18)]
                             ).numpy() if len(x) else np.zeros(0, np.float32)
    return sdf


_TEMPLATES: dict[tuple, HairTemplate] = {}


def geometry_key(style: HairStyle) -> tuple:
    """What the geometry depends on (colour and grey are shader uniforms)."""
    return (style.style, round(style.length, 3), round(style.hairline, 3))


def hair_template(model, style: HairStyle, max_triangles: int | None = HAIR_MAX_TRIANGLES) -> HairTemplate:
    """build_hair_template on the model's template skin, cached per geometry (8 at most)."""
    key = geometry_key(style) + (id(model), max_triangles)
    if key not in _TEMPLATES:
        if len(_TEMPLATES) >= 8:
            _TEMPLATES.pop(next(iter(_TEMPLATES)))
        _TEMPLATES[key] = build_hair_template(style, template_skin_sdf(model), max_triangles=max_triangles)
    tpl = _TEMPLATES[key]
    return tpl if tpl.style == style else HairTemplate(style, tpl.vertices, tpl.faces, tpl.uvs,
                                                       tpl.tangents, tpl.fade, tpl.occlusion)


def build_hair(model, style: HairStyle, mesh, animator=None,
               max_triangles: int | None = HAIR_MAX_TRIANGLES) -> HairMesh:
    """Hair for the head `mesh` (FaceModel.extract_mesh, with its template positions) and its
    animator (FaceModel.animator; None: no expression offsets)."""
    if getattr(mesh, "template", None) is None:
        raise ValueError("the head mesh has no template positions (extract it with FaceModel.extract_mesh)")
    tpl = hair_template(model, style, max_triangles)
    if animator is not None:
        return fit_hair(tpl, mesh.template, animator.neutral(), animator.morph_targets())
    return fit_hair(tpl, mesh.template, mesh.vertices)


def pose_hair(hair: HairMesh, expression: np.ndarray | None = None,
              head_pose: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertices, normals, tangents) of the hair under 53 weights and the puppeteered head pose
    (yaw, pitch, roll degrees, turned about HEAD_PIVOT like the skin). Expressions move the
    vertices only (the forehead under the hairline); the turn rotates normals and tangents."""
    from core.tracking.puppet import HEAD_PIVOT, rotation_matrix

    v = hair.posed(expression)
    if head_pose is None or not np.any(head_pose) or hair.empty:
        return v, hair.normals, hair.tangents
    r = rotation_matrix(*(float(a) for a in head_pose)).astype(np.float32)
    return ((v - HEAD_PIVOT) @ r.T + HEAD_PIVOT, hair.normals @ r.T, hair.tangents @ r.T)


# --- export ---------------------------------------------------------------------------------

def hair_part(hair: HairMesh):
    """The hair as a core.head.parts.PartMesh for OBJ/GLB export: RGBA strand texture (colour
    and grey baked), alpha-masked, per-vertex alpha = the fade (glTF COLOR_0), morph targets of
    the expressions that move it."""
    from core.expressions import EXPRESSION_NAMES

    from .parts import PartMesh

    moving = np.flatnonzero(np.abs(hair.offsets).reshape(len(hair.offsets), -1).max(1) > 1e-4)
    part = PartMesh(name="hair", vertices=hair.vertices, faces=hair.faces,
                    uvs=_export_uvs(hair.uvs), texture=colour_texture(hair.style),
                    colour=(1.0, 1.0, 1.0), specular=0.3 * style_shine(hair.style), shininess=40.0,
                    roughness=0.55, morph_names=tuple(EXPRESSION_NAMES[i] for i in moving),
                    morph_targets=hair.offsets[moving], double_sided=False)
    part.alpha_cutoff = 0.5                     # read by core.export (alphaMode MASK, map_d)
    part.vertex_alpha = np.clip(hair.fade, 0.0, 1.0).astype(np.float32)
    return part


def _export_uvs(uvs: np.ndarray) -> np.ndarray:
    """The same UVs: the exported texture repeats (glTF sampler REPEAT), u spans REPEATS."""
    return np.ascontiguousarray(uvs, np.float32)
