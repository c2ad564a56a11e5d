"""What to render for an avatar: the trained face model when it is installed, otherwise a
procedural stand-in head (same interface: mesh + uvs, animator, SDF grid, networks)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from core.expressions import EXPRESSION_NAMES, NUM_EXPRESSIONS
from core.paths import MODELS_DIR

from . import geometry as geo

FACE_MODEL_PATH = MODELS_DIR / "face_model.pt"


@dataclass
class AvatarScene:
    source: str                                  # "face model" or "procedural head"
    vertices: np.ndarray                         # posed with `expression`
    faces: np.ndarray
    uvs: np.ndarray
    texture: np.ndarray | None                   # None: the renderer's default skin
    expression: np.ndarray
    animator: Callable[[np.ndarray], np.ndarray]  # 53 weights -> (V,3)
    sdf: Callable[[], tuple] = field(repr=False)            # -> (grid, lo, hi)
    stages: Callable[[], list | None] = field(repr=False)   # -> networks or None
    landmarks: Callable[[], np.ndarray | None] = field(repr=False)


def face_model_available() -> bool:
    if not FACE_MODEL_PATH.exists():
        return False
    try:
        import core.facemodel  # noqa: F401
    except ImportError:
        return False
    return True


def load_avatar_file(path: str | Path):
    """core.project.load_project(path), imported lazily: the project module is optional."""
    from core.commands import UserError

    if not Path(path).exists():
        raise UserError(f"avatar file {path} not found")
    try:
        from core.project import load_project
    except ImportError as exc:
        raise UserError(f"cannot read .likeness files yet (core.project is unavailable: {exc})") from None
    return load_project(path)


def load_scene(avatar=None, expression: np.ndarray | None = None, resolution: int = 128,
               mesh_resolution: int | None = None, use_model: bool | None = None) -> AvatarScene:
    """Avatar (from load_project) or the mean face; `expression` overrides the avatar's.
    `resolution` is the SDF grid's, `mesh_resolution` the mesh extraction's (default the
    same): a software rasteriser wants ~30k triangles for 60 fps, a still image more."""
    mesh_resolution = mesh_resolution or resolution
    if use_model is None:
        use_model = face_model_available()
    if expression is None:
        expression = (np.asarray(avatar.expression, np.float32) if avatar is not None
                      else np.zeros(NUM_EXPRESSIONS, np.float32))
    texture = None if avatar is None else getattr(avatar, "texture", None)
    if use_model:
        return _model_scene(avatar, expression, resolution, mesh_resolution, texture)
    if avatar is not None:
        from core.commands import UserError
        raise UserError(f"rendering an avatar file needs the face model at {FACE_MODEL_PATH}")
    return procedural_scene(expression, resolution, mesh_resolution)


def _model_scene(avatar, expression, resolution, mesh_resolution, texture) -> AvatarScene:
    from core.facemodel import FaceModel

    model = FaceModel.load()
    identity = avatar.identity if avatar is not None else model.mean_identity()
    mesh = model.extract_mesh(identity, expression=None, resolution=mesh_resolution)
    anim = model.animator(mesh, identity)
    return AvatarScene(
        source="face model", vertices=np.asarray(anim.vertices(expression), np.float32),
        faces=np.asarray(mesh.faces, np.int32), uvs=np.asarray(mesh.uvs, np.float32),
        texture=texture, expression=expression, animator=anim.vertices,
        sdf=lambda: model.sdf_grid(identity, expression, resolution=resolution),
        stages=lambda: model.shader_networks(identity, expression),
        landmarks=lambda: np.asarray(model.landmarks(identity, expression), np.float32))


# -- procedural stand-in ------------------------------------------------------------------------

# name -> (centre (x for the _L side; _R mirrors), radius, displacement at full weight), cm.
_BLEND = {
    "browDown": ((3.6, 4.6, 6.3), 2.0, (0, -0.6, 0.1)),
    "browInnerUp": ((1.6, 4.6, 7.0), 1.8, (0, 0.8, 0)),
    "browOuterUp": ((5.0, 4.4, 5.5), 1.8, (0, 0.8, 0)),
    "cheekPuff": ((4.6, -3.0, 5.0), 2.5, (0.9, 0, 0.5)),
    "cheekSquint": ((4.0, -0.5, 6.0), 1.8, (0, 0.5, 0)),
    "eyeBlink": ((3.0, 2.8, 7.2), 1.4, (0, -0.4, 0.4)),
    "eyeSquint": ((3.0, 2.0, 7.2), 1.4, (0, 0.3, 0)),
    "eyeWide": ((3.0, 3.6, 7.2), 1.4, (0, 0.3, 0)),
    "mouthSmile": ((2.6, -4.9, 6.8), 1.5, (0.6, 0.8, -0.3)),
    "mouthFrown": ((2.6, -4.9, 6.8), 1.5, (0, -0.7, 0)),
    "mouthDimple": ((2.8, -4.9, 6.5), 1.2, (0.3, 0, -0.4)),
    "mouthStretch": ((2.6, -5.2, 6.8), 1.5, (0.8, -0.2, 0)),
    "mouthUpperUp": ((1.4, -4.3, 7.3), 1.2, (0, 0.5, 0)),
    "mouthLowerDown": ((1.4, -5.6, 7.2), 1.2, (0, -0.5, 0)),
    "mouthPress": ((1.4, -4.9, 7.4), 1.2, (0, 0, -0.3)),
    "noseSneer": ((1.2, 0.6, 7.6), 1.2, (0, 0.4, 0)),
    "eyeLookDown": ((3.0, 2.8, 7.5), 0.8, (0, -0.15, 0)),
    "eyeLookUp": ((3.0, 2.8, 7.5), 0.8, (0, 0.15, 0)),
    "eyeLookIn": ((3.0, 2.8, 7.5), 0.8, (-0.15, 0, 0)),
    "eyeLookOut": ((3.0, 2.8, 7.5), 0.8, (0.15, 0, 0)),
    "mouthClose": ((0, -5.0, 7.3), 1.5, (0, 0.3, 0)),
    "mouthFunnel": ((0, -4.9, 7.3), 1.8, (0, 0, 0.6)),
    "mouthPucker": ((0, -4.9, 7.3), 1.6, (0, 0, 0.9)),
    "mouthLeft": ((0, -4.9, 7.0), 2.0, (0.8, 0, 0)),
    "mouthRight": ((0, -4.9, 7.0), 2.0, (-0.8, 0, 0)),
    "mouthRollLower": ((0, -5.6, 7.2), 1.5, (0, 0, -0.4)),
    "mouthRollUpper": ((0, -4.3, 7.3), 1.5, (0, 0, -0.4)),
    "mouthShrugLower": ((0, -6.8, 6.5), 2.0, (0, 0.4, 0.3)),
    "mouthShrugUpper": ((0, -4.3, 7.3), 1.5, (0, 0.3, 0.1)),
}
_JAW = {"jawOpen": (0, -2.6, -0.6), "jawForward": (0, 0, 0.8),
        "jawLeft": (0.8, 0, 0), "jawRight": (-0.8, 0, 0)}


def procedural_blendshapes(vertices: np.ndarray) -> np.ndarray:
    """(53,V,3) displacement fields for the stand-in head: smooth bumps on the face regions,
    and for the jaw a soft mask of the lower face."""
    v = np.asarray(vertices, np.float32)
    deltas = np.zeros((NUM_EXPRESSIONS, len(v), 3), np.float32)
    jaw = (1 / (1 + np.exp((v[:, 1] + 4.9) / 0.6))) * (1 / (1 + np.exp(-(v[:, 2] + 1.0) / 1.5)))
    for i, name in enumerate(EXPRESSION_NAMES):
        base, side = (name[:-2], name[-1]) if name[-2:] in ("_L", "_R") else (name, "")
        if base in _JAW:
            deltas[i] = jaw[:, None] * np.asarray(_JAW[base], np.float32)
            continue
        centre, radius, disp = _BLEND[base]
        c, d = np.array(centre, np.float32), np.array(disp, np.float32)
        if side == "R":
            c[0], d[0] = -c[0], -d[0]
        w = np.exp(-np.sum((v - c) ** 2, axis=1) / (2 * radius ** 2))
        deltas[i] = w[:, None] * d
    return deltas


class ProceduralAnimator:
    """Linear blendshapes: vertices(w) = rest + sum_i w_i deltas_i (one BLAS call)."""

    def __init__(self, rest: np.ndarray):
        self.rest = np.asarray(rest, np.float32)
        self.deltas = procedural_blendshapes(self.rest).reshape(NUM_EXPRESSIONS, -1)

    def vertices(self, weights: np.ndarray) -> np.ndarray:
        w = np.asarray(weights, np.float32).reshape(NUM_EXPRESSIONS)
        return self.rest + (w @ self.deltas).reshape(-1, 3)


def procedural_scene(expression: np.ndarray, resolution: int = 128,
                     mesh_resolution: int | None = None) -> AvatarScene:
    grid, lo, hi = geo.head_sdf_grid(resolution)
    mesh_grid = grid if mesh_resolution in (None, resolution) else geo.head_sdf_grid(mesh_resolution)[0]
    rest, faces = geo.mesh_from_grid(mesh_grid, lo, hi)
    anim = ProceduralAnimator(rest)
    return AvatarScene(
        source="procedural head", vertices=anim.vertices(expression), faces=faces,
        uvs=geo.cylindrical_uvs(rest), texture=None, expression=expression,
        animator=anim.vertices, sdf=lambda: (grid, lo, hi), stages=lambda: None,
        landmarks=lambda: None)
