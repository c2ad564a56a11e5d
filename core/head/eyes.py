"""Procedural eyeballs: a sphere with a corneal bulge, an iris/pupil/sclera texture painted from
the avatar's EyeSettings, placed per identity and turned by the eyeLook* weights.

The mesh is a sphere about the cornea axis (rings of constant angle theta from the axis, dense
over the iris; the back beyond 125 deg, always inside the head, is left open). Its uv is polar:
u = azimuth / 2pi, v = 1 - sqrt(theta / pi), so the iris and pupil take the top third of the
texture at good resolution. The gaze turns the ball rigidly about its centre (`PartMesh.rig`);
the morph targets (GLB export) are the offsets at weight 1 of each eyeLook control.
"""
from __future__ import annotations

import numpy as np

from .parts import PartMesh
from .rig import HeadRig, _rotation
from .settings import EyeSettings

SIDES = ("L", "R")                      # subject's left (+x) and right (-x), as ARKit
_RINGS_EXTRA = (2.5, 6.0, 10.0, 16.0, 24.0, 34.0, 46.0, 60.0, 76.0, 94.0, 125.0)  # deg past the iris
SEGMENTS = 28
TEXTURE_SIZE = (128, 256)               # rows (theta), columns (azimuth)
SCLERA = np.array([0.93, 0.90, 0.86])
EYE_SPECULAR, EYE_SHININESS = 0.9, 110.0  # the wet cornea: a small, bright highlight
# The learned skin's closed lid passes only 0.1-0.3 mm over ICT's cornea apex (measured on the
# mean face at eyeBlink = 1, 30k-triangle mesh), so a blink would leave the cornea poking
# through: the ball sits this much deeper along its axis and the cornea bulges a little less.
EYE_SETBACK_CM = 0.1
# The learned lids do not quite meet at eyeBlink = 1 (a slit stays): the ball draws back along
# its axis as the lid closes (real globes retract ~1 mm in a blink; this is more, so the slit
# shows the dark socket rather than a cornea).
BLINK_RETRACT_CM = 0.45
CORNEA_BULGE_SCALE = 0.6


def gaze_controls(side: str) -> tuple[str, str, str, str]:
    return tuple(f"eyeLook{d}_{side}" for d in ("Up", "Down", "In", "Out"))  # type: ignore[return-value]


def gaze_rotation(rig: HeadRig, side: str, up: float, down: float, inward: float, out: float) -> np.ndarray:
    """3x3 rotation of one eye for its four eyeLook weights (head frame)."""
    g = rig.gaze_deg
    pitch = np.radians(up * g["up"] - down * g["down"])
    yaw = np.radians(out * g["out"] - inward * g["in"])
    if side == "R":
        yaw = -yaw                  # the right eye's outside is -x
    # yaw about +y turns +z toward +x; a positive pitch turns +z toward +y (about -x)
    return _rotation(np.array([0.0, yaw, 0.0])) @ _rotation(np.array([-pitch, 0.0, 0.0]))


def eye_texture(settings: EyeSettings, iris_deg: float, seed: int = 7) -> np.ndarray:
    """(H, W, 3) uint8 in the polar uv layout above: pupil, iris with radial fibres, a darker
    limbal ring, the sclera."""
    h, w = TEXTURE_SIZE
    rows = (np.arange(h) + 0.5) / h
    theta = np.degrees(np.pi * rows ** 2)[:, None]          # v = 1 - sqrt(theta/pi), row 0 = v 1
    phi = (np.arange(w) + 0.5) / w * 2 * np.pi
    rng = np.random.default_rng(seed)
    fib = np.zeros(w)
    for k in rng.integers(6, 60, 14):                        # radial streaks: noise in azimuth
        fib += np.sin(k * phi + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.3, 1.0)
    fib = (fib - fib.min()) / (np.ptp(fib) + 1e-9)
    r = theta / iris_deg                                      # 1 at the iris edge
    iris = np.asarray(settings.iris_colour, np.float64)
    tone = 0.6 + 0.6 * fib[None, :] * (0.6 + 0.4 * r)
    collarette = 1.0 + 0.35 * np.exp(-((r - settings.pupil_size - 0.12) / 0.07) ** 2)
    col = iris[None, None, :] * (tone * collarette)[..., None]
    limbal = np.clip((r - 0.82) / 0.18, 0.0, 1.0)[..., None]
    col = col * (1.0 - 0.6 * limbal)
    pupil = np.clip((settings.pupil_size - r) / 0.03 + 0.5, 0.0, 1.0)[..., None]
    col = col * (1.0 - pupil) + 0.02 * pupil
    # sclera: slightly warmer and darker toward the back (shadowed by the lids anyway)
    back = np.clip((theta - 40.0) / 60.0, 0.0, 1.0)[..., None]
    sclera = SCLERA * (1.0 - 0.25 * back) + np.array([0.05, -0.02, -0.03]) * back
    edge = np.clip((r - 1.0) / 0.06, 0.0, 1.0)[..., None]
    out = col * (1.0 - edge) + sclera * edge
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _unit_eye(iris_deg: float, bulge_ratio: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit-radius eyeball about +z: vertices, faces (outward), polar uvs."""
    inner = np.linspace(0.0, iris_deg - 1.0, 6)
    theta = np.radians(np.concatenate([inner, [iris_deg], iris_deg + np.array(_RINGS_EXTRA)]))
    theta[0] = 1e-4
    phi = np.linspace(0.0, 2 * np.pi, SEGMENTS + 1)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    # The cornea: a cap of smaller curvature over the iris and a little beyond.
    tc = np.radians(iris_deg + 4.0)
    lift = np.clip((np.cos(t) - np.cos(tc)) / (1.0 - np.cos(tc)), 0.0, 1.0)
    rad = 1.0 + bulge_ratio * lift ** 1.4
    verts = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1) * rad[..., None]
    uvs = np.stack([p / (2 * np.pi), 1.0 - np.sqrt(t / np.pi)], -1)
    n_t, n_p = len(theta), SEGMENTS + 1
    i, j = np.meshgrid(np.arange(n_t - 1), np.arange(SEGMENTS), indexing="ij")
    a = (i * n_p + j).ravel()
    b, c, d = a + n_p, a + 1, a + n_p + 1
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([c, b, d], 1)])   # outward
    # drop the degenerate triangles at the pole (ring 0 is one point repeated)
    ring0 = faces < n_p
    faces = faces[ring0.sum(1) < 2]
    return verts.reshape(-1, 3).astype(np.float32), faces.astype(np.int32), uvs.reshape(-1, 2).astype(np.float32)


def _rest_rotation(axis) -> np.ndarray:
    """Rotation taking +z to the cornea axis (the shortest arc)."""
    a = np.asarray(axis, np.float64)
    a = a / np.linalg.norm(a)
    v = np.cross([0.0, 0.0, 1.0], a)
    s, c = np.linalg.norm(v), a[2]
    if s < 1e-9:
        return np.eye(3)
    return _rotation(v / s * np.arctan2(s, c))


def build_eyes(rig: HeadRig, params: dict[str, float], settings: EyeSettings) -> list[PartMesh]:
    """Both eyeballs of an identity (params = rig.params(identity)), posable by eyeLook*."""
    from core.expressions import EXPRESSION_NAMES

    parts = []
    for side in SIDES:
        shape = rig.eye_shape[side]
        axis = np.asarray(shape["axis"], np.float64)
        centre = np.array([params[f"eye{side}_{k}"] for k in "xyz"]) - EYE_SETBACK_CM * axis
        radius = params[f"eye{side}_radius"]
        bulge = CORNEA_BULGE_SCALE * float(shape["bulge_cm"]) / float(shape["radius_cm"])
        local, faces, uvs = _unit_eye(float(shape["iris_deg"]), bulge)
        local = local @ _rest_rotation(shape["axis"]).T * radius
        neutral = (local + centre).astype(np.float32)
        controls = gaze_controls(side)
        idx = [EXPRESSION_NAMES.index(n) for n in controls]
        blink = EXPRESSION_NAMES.index(f"eyeBlink_{side}")
        back = -BLINK_RETRACT_CM * axis

        def pose(w, local=local, centre=centre, side=side, idx=idx, blink=blink, back=back):
            r = gaze_rotation(rig, side, *(float(w[i]) for i in idx))
            return (local @ r.T + centre + float(w[blink]) * back).astype(np.float32)

        targets = []
        for k in range(4):
            unit = np.zeros(4)
            unit[k] = 1.0
            targets.append((local @ gaze_rotation(rig, side, *unit).T + centre) - neutral)
        targets.append(np.broadcast_to(back, neutral.shape))
        controls = (*controls, f"eyeBlink_{side}")
        tex = eye_texture(settings, float(shape["iris_deg"]))
        parts.append(PartMesh(f"eye_{side}", neutral, faces, uvs=uvs, texture=tex, colour=(1.0, 1.0, 1.0),
                              specular=EYE_SPECULAR, shininess=EYE_SHININESS, roughness=0.1,
                              morph_names=controls, morph_targets=np.asarray(targets, np.float32), rig=pose))
    return parts


__all__ = ["build_eyes", "eye_texture", "gaze_rotation", "gaze_controls", "SIDES"]
