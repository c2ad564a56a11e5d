"""The eyes and mouth interior of one avatar, built from the fitted rig (core/head/rig.py).

    head = build_head_parts(avatar.identity, avatar.eyes)       # once per identity (~10 ms)
    verts, carves = head.pose(avatar.expression, avatar.head_pose)   # every frame (< 1 ms)
    renderer.set_parts("head", head.parts); renderer.update_parts("head", verts)
    renderer.set_carves(carves)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .eyes import build_eyes
from .mouth import build_mouth
from .parts import Carve, PartMesh, pose_carves, pose_parts
from .rig import HeadRig
from .settings import EyeSettings


@dataclass
class HeadParts:
    parts: list[PartMesh]      # eye_L, eye_R, mouth_cavity, teeth, gums, tongue
    carves: list[Carve]        # where the skin's closing caps are hidden

    def pose(self, weights: np.ndarray | None, head_pose: np.ndarray | None = None
             ) -> tuple[list[np.ndarray], np.ndarray]:
        """Posed vertices of every part and the carves' (N,4,4) world -> unit-ball matrices."""
        return pose_parts(self.parts, weights, head_pose), pose_carves(self.carves, weights, head_pose)

    def part(self, name: str) -> PartMesh:
        return next(p for p in self.parts if p.name == name)

    @property
    def triangles(self) -> int:
        return int(sum(len(p.faces) for p in self.parts))


def build_head_parts(identity: np.ndarray | None, eyes: EyeSettings | None = None,
                     rig: HeadRig | None = None) -> HeadParts:
    """Eyes and mouth interior for an identity code (None: the mean face)."""
    rig = HeadRig.load() if rig is None else rig
    params = rig.params(identity)
    eye_parts = build_eyes(rig, params, eyes or EyeSettings())
    mouth_parts, carves = build_mouth(rig, params, rig.params(None))
    return HeadParts(eye_parts + mouth_parts, carves)


__all__ = ["HeadParts", "build_head_parts"]
