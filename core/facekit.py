"""Read the ICT FaceKit Light npz (../shared/facekit) into plain numpy arrays.

Only training, evaluation and benchmarks read this file; the app runs on shipped weights.
Units are centimetres, +y up, +z toward the viewer.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .paths import MissingDataError, shared_path

FACEKIT_RELATIVE = "facekit/ict_facekit_light.npz"
SKIN_VERTEX_COUNT = 11248  # parts face + head_and_neck
FACE_PART_END = 9409  # part 'face' is vertices [0, 9409)
_REQUIRED = ("neutral", "identity_deltas", "expression_names", "expression_deltas", "uvs",
             "faces", "face_uvs", "landmarks68", "part_names", "part_vertex_ranges")


@dataclass
class FaceKit:
    neutral: np.ndarray            # (V, 3) float32
    identity_deltas: np.ndarray    # (100, V, 3) one std per mode
    expression_names: list[str]    # 53
    expression_deltas: np.ndarray  # (53, V, 3)
    uvs: np.ndarray                # (T, 2)
    quads: np.ndarray              # (F, 4) int32, -1 as 4th index for triangles
    quad_uvs: np.ndarray           # (F, 4) int32 into uvs
    landmarks68: np.ndarray        # (68,) vertex indices
    part_names: list[str]
    part_vertex_ranges: np.ndarray  # (P, 2)
    path: Path

    @property
    def num_identity(self) -> int:
        return self.identity_deltas.shape[0]

    def vertices(self, identity: np.ndarray | None = None, expression: np.ndarray | None = None,
                 vertex_slice: slice = slice(None)) -> np.ndarray:
        """Linear model: neutral + identity_deltas^T a + expression_deltas^T b, (V, 3) float32."""
        v = self.neutral[vertex_slice].astype(np.float64)
        if identity is not None:
            a = np.asarray(identity, np.float64)
            v = v + np.tensordot(a, self.identity_deltas[: len(a), vertex_slice], axes=1)
        if expression is not None:
            b = np.asarray(expression, np.float64)
            v = v + np.tensordot(b, self.expression_deltas[:, vertex_slice], axes=1)
        return v.astype(np.float32)

    def triangles(self, vertex_limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Triangulated faces and their uv indices, optionally only faces below vertex_limit."""
        q, qu = self.quads, self.quad_uvs
        if vertex_limit is not None:
            keep = np.all((q < vertex_limit) | (q < 0), axis=1) & np.all(q[:, :3] >= 0, axis=1)
            q, qu = q[keep], qu[keep]
        is_quad = q[:, 3] >= 0
        tris = [q[:, [0, 1, 2]], q[is_quad][:, [0, 2, 3]]]
        tuvs = [qu[:, [0, 1, 2]], qu[is_quad][:, [0, 2, 3]]]
        return np.concatenate(tris).astype(np.int32), np.concatenate(tuvs).astype(np.int32)

    def skin_triangles(self) -> tuple[np.ndarray, np.ndarray]:
        """Triangles of the face + head-and-neck skin (an open surface with 4 boundary loops)."""
        return self.triangles(SKIN_VERTEX_COUNT)


def load_facekit(path: str | os.PathLike | None = None) -> FaceKit:
    """Load the FaceKit npz from `path` (file or folder) or ../shared/facekit by default."""
    p = shared_path(FACEKIT_RELATIVE, path, what="ICT FaceKit Light (ict_facekit_light.npz)")
    try:
        data = np.load(p, allow_pickle=False)
        missing = [k for k in _REQUIRED if k not in data.files]
    except Exception as exc:  # a damaged or foreign file
        raise MissingDataError(f"{p} is not a readable FaceKit npz: {exc}") from exc
    if missing:
        raise MissingDataError(f"{p} is not the ICT FaceKit npz: arrays {missing} are missing")
    return FaceKit(
        neutral=data["neutral"].astype(np.float32),
        identity_deltas=data["identity_deltas"].astype(np.float32),
        expression_names=[str(s) for s in data["expression_names"]],
        expression_deltas=data["expression_deltas"].astype(np.float32),
        uvs=data["uvs"].astype(np.float32),
        quads=data["faces"].astype(np.int32),
        quad_uvs=data["face_uvs"].astype(np.int32),
        landmarks68=data["landmarks68"].astype(np.int64),
        part_names=[str(s) for s in data["part_names"]],
        part_vertex_ranges=data["part_vertex_ranges"].astype(np.int64),
        path=p,
    )
