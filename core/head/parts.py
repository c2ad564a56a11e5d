"""Part meshes: extra geometry drawn and exported with the face model's skin (eyes, teeth, mouth
cavity, hair), and the regions where the skin is hidden so the parts show ("carves").

A `PartMesh` is plain data in the head's rest frame (cm, +y up, +z forward, as the skin):
neutral vertices, faces, optional uvs + texture, a base colour, and how it moves with the 53
ARKit weights: linear morph targets (what GLB export writes) and optionally an exact `rig`
(e.g. a rigid eyeball rotation) that rendering uses instead. `pose_parts` applies the weights
and the puppeteered head pose; `core.render.Renderer.set_parts` / `update_parts` draw them and
`core.export.write_glb` / `write_obj` write them (each part its own mesh, material, texture and
morph targets).

A `Carve` is an ellipsoid (a 4x4 matrix mapping the unit ball into the head frame, possibly
posed by the weights): inside it the skin is not drawn (mesh view: fragments discarded; SDF
view: the field is cut), so the learned skin's closing caps over the eyes and mouth do not hide
the eyeballs and teeth behind them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from core.meshops import vertex_normals


@dataclass
class PartMesh:
    """One part. `shader` names the fragment shader in shaders/ (`part.frag` by default: lit,
    textured or flat colour, with the part's own specular lobe); `uniforms` are extra values set
    on that program when the part is drawn (e.g. a hair shader's parameters)."""
    name: str
    vertices: np.ndarray                      # (V, 3) float32, neutral expression, head frame
    faces: np.ndarray                         # (F, 3) int32, counter-clockwise seen from outside
    uvs: np.ndarray | None = None             # (V, 2) float32, v up (OpenGL/OBJ convention)
    texture: np.ndarray | None = None         # (H, W, 3) uint8, row 0 at the top
    colour: tuple[float, float, float] = (0.8, 0.8, 0.8)  # display RGB in [0, 1], times the texture
    specular: float = 0.15                    # strength of the highlight
    shininess: float = 24.0                   # Blinn-Phong exponent (sharp: cornea, wet: tongue)
    roughness: float = 0.6                    # glTF export
    morph_names: tuple[str, ...] = ()         # ARKit names of the targets below
    morph_targets: np.ndarray | None = None   # (K, V, 3) offsets per unit weight
    rig: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)
    # ^ 53 weights -> (V, 3) posed vertices when the part moves non-linearly (rotations);
    #   None: vertices + sum_k w_k morph_targets[k]
    shader: str = "part.frag"
    uniforms: dict = field(default_factory=dict)
    double_sided: bool = False                # drawn without back-face culling

    def __post_init__(self) -> None:
        self.vertices = np.ascontiguousarray(self.vertices, np.float32)
        self.faces = np.ascontiguousarray(self.faces, np.int32)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise ValueError(f"part {self.name}: vertices must be (V, 3), got {self.vertices.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or (
                len(self.faces) and (self.faces.min() < 0 or self.faces.max() >= len(self.vertices))):
            raise ValueError(f"part {self.name}: faces must be (F, 3) indices into the vertices")
        if self.uvs is not None:
            self.uvs = np.ascontiguousarray(self.uvs, np.float32)
            if self.uvs.shape != (len(self.vertices), 2):
                raise ValueError(f"part {self.name}: uvs must be (V, 2)")
        if self.morph_targets is not None:
            self.morph_targets = np.ascontiguousarray(self.morph_targets, np.float32)
            if self.morph_targets.shape != (len(self.morph_names), *self.vertices.shape):
                raise ValueError(f"part {self.name}: morph targets must be (K, V, 3) with K names")
        self._index: np.ndarray | None = None

    def morph_indices(self) -> np.ndarray:
        """Indices of `morph_names` in core.expressions.EXPRESSION_NAMES."""
        if self._index is None:
            from core.expressions import EXPRESSION_NAMES

            self._index = np.array([EXPRESSION_NAMES.index(n) for n in self.morph_names], np.int64)
        return self._index

    def posed(self, weights: np.ndarray | None) -> np.ndarray:
        """(V, 3) vertices for the 53 weights (None: neutral), in the head's rest frame."""
        if weights is None:
            return self.vertices
        w = np.asarray(weights, np.float32)
        if self.rig is not None:
            return np.asarray(self.rig(w), np.float32)
        if self.morph_targets is None or not len(self.morph_names):
            return self.vertices
        k = w[self.morph_indices()]
        if not np.any(k):
            return self.vertices
        return self.vertices + np.tensordot(k, self.morph_targets, axes=1)

    def normals(self, vertices: np.ndarray | None = None) -> np.ndarray:
        return vertex_normals(self.vertices if vertices is None else vertices, self.faces)


@dataclass
class Carve:
    """An ellipsoid where the skin is hidden: `matrix` (4x4) maps the unit ball into the head
    frame at neutral; `rig` (53 weights -> 4x4), when given, poses it (e.g. with the jaw)."""
    name: str
    matrix: np.ndarray
    rig: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)

    def posed(self, weights: np.ndarray | None) -> np.ndarray:
        if weights is None or self.rig is None:
            return np.asarray(self.matrix, np.float64)
        return np.asarray(self.rig(np.asarray(weights, np.float32)), np.float64)


def pose_parts(parts: Sequence[PartMesh], weights: np.ndarray | None,
               head_pose: np.ndarray | None = None) -> list[np.ndarray]:
    """Every part's vertices for the 53 weights, turned by the puppeteered head pose (yaw,
    pitch, roll degrees about core.tracking.puppet.HEAD_PIVOT) like the skin."""
    from core.tracking.puppet import posed_head

    return [posed_head(p.posed(weights), head_pose) for p in parts]


def pose_carves(carves: Sequence[Carve], weights: np.ndarray | None,
                head_pose: np.ndarray | None = None) -> np.ndarray:
    """(N, 4, 4) world -> unit-ball matrices (what Renderer.set_carves takes)."""
    from core.tracking.puppet import head_matrix

    h = np.eye(4) if head_pose is None else head_matrix(np.asarray(head_pose, np.float64))
    out = [np.linalg.inv(h @ c.posed(weights)) for c in carves]
    return np.asarray(out, np.float32).reshape(-1, 4, 4)


def uncarved_faces(vertices: np.ndarray, faces: np.ndarray, carves: np.ndarray) -> np.ndarray:
    """The faces with a corner outside every carve ((N,4,4) world -> unit-ball matrices, as
    pose_carves returns): an exported skin without the caps the renderer hides."""
    v = np.asarray(vertices, np.float64)
    inside = np.zeros(len(v), bool)
    for m in np.asarray(carves, np.float64):
        q = v @ m[:3, :3].T + m[:3, 3]
        inside |= np.einsum("ij,ij->i", q, q) < 1.0
    f = np.asarray(faces)
    return f[~inside[f].all(axis=1)]


def ellipsoid_matrix(centre, semi_axes, rotation: np.ndarray | None = None) -> np.ndarray:
    """4x4 unit ball -> ellipsoid with `semi_axes` (3,) along the columns of `rotation`."""
    m = np.eye(4)
    r = np.eye(3) if rotation is None else np.asarray(rotation, np.float64)
    m[:3, :3] = r @ np.diag(np.asarray(semi_axes, np.float64))
    m[:3, 3] = centre
    return m


def merge_parts(name: str, parts: Sequence[PartMesh], **kwargs) -> PartMesh:
    """One part from several that share a material (fewer draw calls)."""
    offs = np.cumsum([0] + [len(p.vertices) for p in parts])
    uvs = None
    if all(p.uvs is not None for p in parts):
        uvs = np.concatenate([p.uvs for p in parts])
    names = tuple(dict.fromkeys(n for p in parts for n in p.morph_names))
    targets = None
    if names:
        targets = np.zeros((len(names), int(offs[-1]), 3), np.float32)
        for p, o in zip(parts, offs):
            for k, n in enumerate(p.morph_names):
                targets[names.index(n), o:o + len(p.vertices)] = p.morph_targets[k]
    return PartMesh(name, np.concatenate([p.vertices for p in parts]),
                    np.concatenate([p.faces + o for p, o in zip(parts, offs)]), uvs=uvs,
                    morph_names=names, morph_targets=targets, **kwargs)


__all__ = ["PartMesh", "Carve", "pose_parts", "pose_carves", "uncarved_faces", "ellipsoid_matrix", "merge_parts"]
