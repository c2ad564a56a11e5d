"""What to render for an avatar: mesh + uvs, animator, SDF grid, networks and landmarks of the
trained face model (resources/models/face_model.pt), posed with the avatar's codes."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from core.expressions import NUM_EXPRESSIONS

# Triangle budget of the interactive mesh: llvmpipe (2 cores) stays above 60 fps at 512^2 with
# ~30k triangles and new vertices every frame; quadric decimation keeps eyes and lips intact.
VIEWPORT_MAX_TRIANGLES = 30_000


@dataclass
class AvatarScene:
    source: str                                  # where the geometry came from, for logs
    vertices: np.ndarray                         # posed with `expression`
    faces: np.ndarray
    uvs: np.ndarray
    texture: np.ndarray | None                   # None: the renderer's default skin
    expression: np.ndarray
    animator: Callable[[np.ndarray], np.ndarray]  # 53 weights -> (V,3)
    sdf: Callable[[], tuple] = field(repr=False)            # -> (grid, lo, hi)
    stages: Callable[[], list | None] = field(repr=False)   # -> networks or None
    landmarks: Callable[[], np.ndarray | None] = field(repr=False)
    hair: Callable[[], object] = field(default=lambda: None, repr=False)  # -> core.head.hair.HairMesh
    head: Callable[[], object] = field(default=lambda: None, repr=False)  # -> core.head.build.HeadParts
    occlusion: Callable[[], np.ndarray | None] = field(default=lambda: None, repr=False)  # (V,) cavities


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
               max_triangles: int | None = None, hair=None) -> AvatarScene:
    """Avatar (from load_project) or the default (mean) face; `expression` overrides the
    avatar's. `resolution` is the SDF grid's and the mesh extraction's; `max_triangles` caps
    the mesh (VIEWPORT_MAX_TRIANGLES for interactive use, None for full-detail stills).
    `hair` (core.head.settings.HairStyle) overrides the avatar's (default: HairStyle())."""
    if expression is None:
        expression = (np.asarray(avatar.expression, np.float32) if avatar is not None
                      else np.zeros(NUM_EXPRESSIONS, np.float32))
    from core.appearance import avatar_texture
    texture = avatar_texture(avatar)   # the photo/painting, else the appearance code decoded
    if hair is None:
        from core.head.settings import HairStyle

        hair = getattr(avatar, "hair", None) or HairStyle()
    return _model_scene(avatar, expression, resolution, max_triangles, texture, hair)


def _model_scene(avatar, expression, resolution, max_triangles, texture, hair) -> AvatarScene:
    from core.facemodel import FaceModel
    from core.head.hair import build_hair
    from core.render.occlusion import mesh_occlusion

    model = FaceModel.load()  # raises a clear error when the weights are missing or damaged
    identity = avatar.identity if avatar is not None else model.mean_identity()
    mesh = model.extract_mesh(identity, expression=None, resolution=resolution,
                              max_triangles=max_triangles)
    anim = model.animator(mesh, identity)
    return AvatarScene(
        source="face model", vertices=np.asarray(anim.vertices(expression), np.float32),
        faces=np.asarray(mesh.faces, np.int32), uvs=np.asarray(mesh.uvs, np.float32),
        texture=texture, expression=expression, animator=anim.vertices,
        sdf=lambda: model.sdf_grid(identity, expression, resolution=resolution),
        stages=lambda: model.shader_networks(identity, expression),
        landmarks=lambda: np.asarray(model.landmarks(identity, expression), np.float32),
        hair=lambda: build_hair(model, hair, mesh, anim),
        head=lambda: _head_parts(identity, getattr(avatar, "eyes", None)),
        occlusion=lambda: mesh_occlusion(mesh.vertices, mesh.faces, mesh.normals))


def _head_parts(identity, eyes):
    """Eyes and mouth interior (core.head.build.HeadParts) for the scene's identity."""
    from core.head.build import build_head_parts

    return build_head_parts(identity, eyes)


def show_scene(renderer, scene: AvatarScene) -> tuple[object, object]:
    """Put `scene` on `renderer` as the studio shows it: the skin mesh and its texture, the eyes
    and mouth interior, and the hair, all posed with the scene's expression. Returns the head
    parts and the hair (None where there are none) for posing them frame by frame."""
    renderer.set_mesh(scene.vertices, scene.faces, scene.uvs, occlusion=scene.occlusion())
    if scene.texture is not None:
        renderer.set_texture(np.asarray(scene.texture, np.uint8))
    head = scene.head()
    if head is not None:
        verts, carves = head.pose(scene.expression)
        renderer.set_parts("head", head.parts)
        renderer.update_parts("head", verts)
        renderer.set_carves(carves)
    hair = scene.hair()
    if hair is not None and not hair.empty:
        from core.head.hair import pose_hair

        renderer.set_hair(hair)
        renderer.update_hair(*pose_hair(hair, scene.expression))
    else:
        hair = None
    return head, hair
