"""Procedural mouth interior: upper and lower teeth along fitted dental arches, gums, a tongue, a
dark cavity, and the carve ellipsoids that hide the learned skin's mouth cap.

Placement comes from the fitted HeadRig parameters of the identity (arch front, incisal edge,
gum line, back and half width of each jaw). The lower teeth, gums, tongue and the lower half
of the cavity follow the jaw: their morph targets are the fitted jaw motion per unit jawOpen,
jawLeft, jawRight and jawForward, evaluated on the mean face's geometry (ICT's deltas are the
same for every identity), and a weight mix adds them linearly, as the skin's do.
"""
from __future__ import annotations

import numpy as np

from .parts import Carve, PartMesh, ellipsoid_matrix, merge_parts
from .rig import HeadRig

# Per side from the midline: central incisor, lateral incisor, canine, 2 premolars, 2 molars.
# Mesio-distal width (relative; scaled to fill the arch), labio-lingual thickness and crown
# height (cm), and how thin the biting edge is (1 = as thick as the crown).
UPPER = dict(width=(0.85, 0.66, 0.76, 0.70, 0.66, 1.00, 0.90),
             thick=(0.70, 0.62, 0.80, 0.88, 0.88, 1.05, 1.0), crown=(1.00, 0.88, 0.98, 0.80, 0.74, 0.68, 0.64),
             edge=(0.30, 0.32, 0.45, 0.75, 0.75, 0.85, 0.85))
LOWER = dict(width=(0.54, 0.60, 0.70, 0.70, 0.72, 1.10, 1.02),
             thick=(0.58, 0.60, 0.75, 0.80, 0.82, 1.00, 0.98), crown=(0.90, 0.90, 1.00, 0.80, 0.76, 0.70, 0.66),
             edge=(0.30, 0.32, 0.45, 0.75, 0.75, 0.85, 0.85))
TEETH_COLOUR = (0.93, 0.89, 0.80)
GUM_COLOUR = (0.80, 0.45, 0.45)
TONGUE_COLOUR = (0.78, 0.40, 0.40)
CAVITY_COLOUR = (1.0, 1.0, 1.0)          # the gradient texture carries the colour
EMBED = 0.45                             # cm of each tooth hidden in the gum
SPEE = 0.3                               # the occlusal plane rises this much toward the molars


def _arch(front: float, back: float, half_width: float, s: np.ndarray) -> tuple[np.ndarray, ...]:
    """Points, unit tangents and outward normals of a quarter-ellipse arch (x >= 0), s in [0,1]
    from the midline to the back."""
    a = s * np.pi / 2
    x, z = half_width * np.sin(a), back + (front - back) * np.cos(a)
    tx, tz = half_width * np.cos(a), -(front - back) * np.sin(a)
    t = np.stack([tx, np.zeros_like(tx), tz], -1)
    t /= np.linalg.norm(t, axis=-1, keepdims=True)
    n = np.stack([t[:, 2], np.zeros_like(tx), -t[:, 0]], -1)      # outward (labial/buccal)
    return np.stack([x, np.zeros_like(x), z], -1), t, n


def _arch_length(front, back, half_width) -> tuple[np.ndarray, np.ndarray]:
    s = np.linspace(0.0, 1.0, 400)
    p, _, _ = _arch(front, back, half_width, s)
    length = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    return s, length


def _unit_blob(lat: int = 6, lon: int = 8, power: float = 0.6):
    """A rounded box (superellipsoid) in [-1,1]^3: vertices, outward faces, and each vertex's
    height in [0, 1] along -y..+y."""
    th = np.linspace(0.0, np.pi, lat + 1)
    ph = np.linspace(0.0, 2 * np.pi, lon, endpoint=False)
    t, p = np.meshgrid(th, ph, indexing="ij")
    f = lambda c: np.sign(c) * np.abs(c) ** power  # noqa: E731
    v = np.stack([f(np.sin(t) * np.cos(p)), f(np.cos(t)), f(np.sin(t) * np.sin(p))], -1).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(lat), np.arange(lon), indexing="ij")
    a = (i * lon + j).ravel()
    b = ((i + 1) * lon + j).ravel()
    c = (i * lon + (j + 1) % lon).ravel()
    d = ((i + 1) * lon + (j + 1) % lon).ravel()
    faces = np.concatenate([np.stack([a, c, b], 1), np.stack([c, d, b], 1)])
    # merge the pole rings into single vertices
    top, bottom = 0, lat * lon
    faces = np.where(faces < lon, top, faces)
    faces = np.where(faces >= lat * lon, bottom, faces)
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    used, inv = np.unique(faces, return_inverse=True)
    v = v[used]
    return v, inv.reshape(-1, 3), (v[:, 1] + 1) / 2


def _teeth(front, back, half_width, edge_y, spec: dict, upper: bool) -> tuple[np.ndarray, np.ndarray]:
    """Both sides of one jaw's teeth as one mesh."""
    blob, bf, h = _unit_blob()
    # the arch through the teeth's centres: inside the measured outer surfaces
    fc, bc, hc = front - spec["thick"][0] / 2, back + spec["width"][-1] / 2, half_width - spec["thick"][-1] / 2
    s_tab, length = _arch_length(fc, bc, hc)
    widths = np.asarray(spec["width"])
    widths = widths * (length[-1] / widths.sum())
    centres = np.cumsum(widths) - widths / 2
    s_c = np.interp(centres, length, s_tab)
    p, t, n = _arch(fc, bc, hc, s_c)
    verts, faces = [], []
    for side in (1.0, -1.0):
        for k in range(len(widths)):
            crown, thick, edge = spec["crown"][k], spec["thick"][k], spec["edge"][k]
            height = crown + EMBED
            # local: x along the arch, y up (edge at the biting end), z outward
            hy = h if upper else 1.0 - h                      # 0 at the biting edge
            taper = edge + (1 - edge) * np.clip(hy * 2.5, 0, 1)
            loc = blob * np.array([widths[k] * 0.53, height / 2, thick / 2])   # neighbours touch
            loc[:, 2] *= taper
            loc[:, 0] *= 0.88 + 0.12 * np.clip(hy * 3, 0, 1)   # slightly narrower at the edge
            sy = edge_y + SPEE * s_c[k]
            cy = sy + height / 2 if upper else sy - height / 2
            tk, nk = t[k].copy(), n[k].copy()
            c = p[k].copy()
            if side < 0:
                c[0], tk[0], nk[0] = -c[0], -tk[0], -nk[0]
            world = c + loc[:, :1] * tk + loc[:, 2:] * nk
            world[:, 1] = cy + loc[:, 1]
            f = _orient(world, bf, world.mean(0), outward=True)
            faces.append(f + sum(len(v) for v in verts))
            verts.append(world)
    return np.concatenate(verts).astype(np.float32), np.concatenate(faces).astype(np.int32)


def _gums(front, back, half_width, edge_y, spec, upper: bool, stations: int = 12):
    """A U-shaped band along the arch covering the tooth roots (labial wall, ridge, lingual)."""
    fc, bc = front - spec["thick"][0] / 2, back + spec["width"][-1] / 2
    hc = half_width - spec["thick"][-1] / 2
    s = np.linspace(0.0, 1.0, stations + 1)
    p, _, n = _arch(fc, bc, hc, s)
    crown = np.interp(s, np.linspace(0, 1, len(spec["crown"])), spec["crown"])
    thick = np.interp(s, np.linspace(0, 1, len(spec["thick"])), spec["thick"])
    sgn = 1.0 if upper else -1.0
    gum_line = edge_y + SPEE * s + sgn * (crown - 0.08)
    # profile (outward offset, height above the gum line) from labial to lingual
    prof = [(0.52, -0.02), (0.62, 0.45), (0.55, 0.95), (0.0, 1.25), (-0.62, 0.95), (-0.68, 0.4), (-0.55, -0.02)]
    rows = []
    for off, up in prof:
        q = p + n * (off * thick)[:, None] * (1.0 if off > 0 else 1.0)
        q = q.copy()
        q[:, 1] = gum_line + sgn * up
        rows.append(q)
    grid = np.stack(rows, 1)                                   # (stations+1, P, 3), x >= 0
    mirror = grid[::-1].copy()
    mirror[..., 0] *= -1
    full = np.concatenate([mirror[:-1], grid])                 # right back -> left back
    ns, npf = full.shape[:2]
    i, j = np.meshgrid(np.arange(ns - 1), np.arange(npf - 1), indexing="ij")
    a = (i * npf + j).ravel()
    b, c, d = a + npf, a + 1, a + npf + 1
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([c, b, d], 1)])
    v = full.reshape(-1, 3)
    faces = _orient(v, faces, np.array([0.0, gum_line.mean() - sgn * 0.5, (fc + bc) / 2]), outward=True)
    return v.astype(np.float32), faces.astype(np.int32)


def _orient(v, faces, inside_point, outward: bool):
    """Flip the faces so their normals point away from (outward) or toward `inside_point`,
    judged by the majority."""
    a, b, c = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
    fn = np.cross(b - a, c - a)
    away = np.einsum("ij,ij->i", fn, (a + b + c) / 3 - inside_point) > 0
    if (away.mean() > 0.5) != outward:
        faces = faces[:, ::-1]
    return np.ascontiguousarray(faces)


def _ellipsoid_mesh(lat: int, lon: int, keep=None):
    """Unit sphere grid (y up) with uvs; `keep(vertices) -> bool mask` trims faces."""
    th = np.linspace(0.0, np.pi, lat + 1)
    ph = np.linspace(0.0, 2 * np.pi, lon + 1)
    t, p = np.meshgrid(th, ph, indexing="ij")
    v = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], -1).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(lat), np.arange(lon), indexing="ij")
    a = (i * (lon + 1) + j).ravel()
    b, c, d = a + lon + 1, a + 1, a + lon + 2
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([c, b, d], 1)])   # outward
    if keep is not None:
        ok = keep(v)
        faces = faces[ok[faces].all(1)]
    used, inv = np.unique(faces, return_inverse=True)
    return v[used], inv.reshape(-1, 3)


def _cavity_texture() -> np.ndarray:
    """A 1-D gradient (as a 64x4 image, v up): pinkish red near the lips to near black deep."""
    v = np.linspace(1.0, 0.0, 64)[:, None]                    # row 0 = v 1 = the front
    front, deep = np.array([0.55, 0.22, 0.22]), np.array([0.05, 0.012, 0.012])
    col = deep + (front - deep) * (v ** 2.2)[..., None]
    return np.clip(np.repeat(col, 4, axis=1) * 255 + 0.5, 0, 255).astype(np.uint8)


def _cavity_frames(p: dict[str, float]):
    """The two ellipsoids (upper: fixed; lower: on the jaw) that hold the mouth interior: 4x4
    unit ball -> head frame, and the split height between them."""
    split = (p["upper_edge_y"] + p["lower_edge_y"]) / 2
    back = min(p["upper_back_z"], p["lower_back_z"]) - 0.5
    front = p["mouth_z"] - 0.6                 # behind the lips: the cap carves reach further
    zc, az = (front + back) / 2, (front - back) / 2
    ax = max(p["upper_half_width"], p["lower_half_width"]) + 0.45
    ay_up = (p["upper_edge_y"] + UPPER["crown"][0] + 1.5) - split
    ay_down = split - (p["lower_edge_y"] - LOWER["crown"][0] - 1.5)
    up = ellipsoid_matrix((0.0, split, zc), (ax, ay_up, az))
    down = ellipsoid_matrix((0.0, split, zc), (ax, ay_down, az))
    return up, down, split, front, back


def _cap_frame(p: dict[str, float]) -> np.ndarray:
    """Ellipsoid over the skin's mouth cap: the opening's loop at its equator, 1 cm deep."""
    return ellipsoid_matrix((p["mouth_x"], p["mouth_y"], p["mouth_z"] - 0.5),
                            (p["mouth_half_width"] - 0.15, max(p["mouth_up"], p["mouth_down"]) + 0.1, 0.95))


def _between(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """The ellipsoid spanning the gap between the upper and the jaw-moved lower cap ellipsoid
    (an opened mouth stretches the skin's cap between them)."""
    m = 0.5 * (lower + upper)
    gap = float(np.linalg.norm(lower[:3, 3] - upper[:3, 3]))
    ay = float(np.linalg.norm(upper[:3, 1]))
    m[:3, 1] *= (ay + 0.5 * gap) / max(float(np.linalg.norm(m[:3, 1])), 1e-6)
    return m


def build_mouth(rig: HeadRig, params: dict[str, float], mean_params: dict[str, float] | None = None
                ) -> tuple[list[PartMesh], list[Carve]]:
    """Teeth, gums, tongue and cavity of an identity (params = rig.params(identity)), and the
    carves. `mean_params` (rig.params(None)) is where the jaw offsets are evaluated."""
    mean_params = rig.params(None) if mean_params is None else mean_params
    jaw_names = tuple(rig.jaw_controls)

    def pieces(p):
        out = {}
        out["teeth_upper"] = _teeth(p["upper_front_z"], p["upper_back_z"], p["upper_half_width"],
                                    p["upper_edge_y"], UPPER, upper=True)
        out["teeth_lower"] = _teeth(p["lower_front_z"], p["lower_back_z"], p["lower_half_width"],
                                    p["lower_edge_y"], LOWER, upper=False)
        out["gums_upper"] = _gums(p["upper_front_z"], p["upper_back_z"], p["upper_half_width"],
                                  p["upper_edge_y"], UPPER, upper=True)
        out["gums_lower"] = _gums(p["lower_front_z"], p["lower_back_z"], p["lower_half_width"],
                                  p["lower_edge_y"], LOWER, upper=False)
        # tongue: a flattened ellipsoid resting inside the lower arch, top near the teeth edges
        tv, tf = _ellipsoid_mesh(10, 16)
        tz_front, tz_back = p["lower_front_z"] - 0.75, p["lower_back_z"] - 0.6
        ty = p["lower_edge_y"] - 0.45
        tv = tv * np.array([p["lower_half_width"] - 0.95, 0.55, (tz_front - tz_back) / 2])
        tv[:, 1] = np.where(tv[:, 1] > 0, tv[:, 1] * 0.8, tv[:, 1] * 1.3)
        out["tongue"] = ((tv + np.array([0.0, ty, (tz_front + tz_back) / 2])).astype(np.float32), tf)
        up, down, split, front, back = _cavity_frames(p)
        for name, m, keep in (("cavity_upper", up, lambda v: v[:, 1] > -0.45),
                              ("cavity_lower", down, lambda v: v[:, 1] < 0.3)):
            ev, ef = _ellipsoid_mesh(12, 20, keep=lambda v, keep=keep: keep(v) & (v[:, 2] < 0.75))
            ev = ev * 0.95                                    # inside the carve's wall (SDF view)
            world = ev @ m[:3, :3].T + m[:3, 3]
            out[name] = (world.astype(np.float32), ef[:, ::-1].copy(), (world[:, 2] - back) / (front - back))
        return out

    mine, mean = pieces(params), pieces(mean_params)
    lower = {"teeth_lower", "gums_lower", "tongue", "cavity_lower"}

    def part(name, **kw):
        v, f = mine[name][0], mine[name][1]
        targets = None
        names: tuple[str, ...] = ()
        if name in lower:
            names, targets = jaw_names, rig.jaw_offsets(mean[name][0])
        uvs = None
        if len(mine[name]) > 2:
            uvs = np.stack([np.full(len(v), 0.5), np.clip(mine[name][2], 0, 1)], -1).astype(np.float32)
        return PartMesh(name, v, f, uvs=uvs, morph_names=names, morph_targets=targets, **kw)

    teeth = merge_parts("teeth", [part("teeth_upper"), part("teeth_lower")], colour=TEETH_COLOUR,
                        specular=0.35, shininess=48.0, roughness=0.3)
    gums = merge_parts("gums", [part("gums_upper"), part("gums_lower")], colour=GUM_COLOUR,
                       specular=0.25, shininess=30.0, roughness=0.4)
    tongue = part("tongue", colour=TONGUE_COLOUR, specular=0.3, shininess=28.0, roughness=0.4)
    cav = [part("cavity_upper"), part("cavity_lower")]
    cavity = merge_parts("mouth_cavity", cav, colour=CAVITY_COLOUR, specular=0.0, shininess=8.0,
                         roughness=0.9)
    cavity.texture = _cavity_texture()

    up, down, *_ = _cavity_frames(params)
    cap = _cap_frame(params)
    carves = [Carve("mouth_upper", up),
              Carve("mouth_lower", down, rig=lambda w, m=down: rig.jaw_affine(w) @ m),
              Carve("mouth_cap_upper", cap),
              Carve("mouth_cap_lower", cap, rig=lambda w, m=cap: rig.jaw_affine(w) @ m),
              Carve("mouth_cap_between", cap, rig=lambda w, m=cap: _between(rig.jaw_affine(w) @ m, m))]
    return [cavity, teeth, gums, tongue], carves


__all__ = ["build_mouth"]
