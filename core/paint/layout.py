"""The shared UV layout as the painting core needs it: which texels the UV islands cover (fill by
island, seam padding) and each texel's mirror texel (symmetric painting).

Computed from any mesh of the face model (the layout is shared by every identity and
expression): the mesh is drawn into UV space on the headless GL context with each vertex
carrying the UV of its mirror vertex (core.fitting.texture.mirror_uvs, as observe_photo does).
Do it once per face model, off the GUI thread, and keep the result.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .symmetry import MirrorMap


@dataclass
class UVLayout:
    coverage: np.ndarray      # (S, S) bool: texels inside the UV islands
    mirror: MirrorMap         # each texel's mirror texel
    template: np.ndarray      # (S, S, 3) float32 template-space point of each covered texel


def uv_layout(mesh, size: int) -> UVLayout:
    """The layout of `mesh` (with uvs and template points) at size x size texels."""
    from core.fitting.raster import rasterize, uv_clip
    from core.fitting.texture import mirror_uvs

    if getattr(mesh, "uvs", None) is None or getattr(mesh, "template", None) is None:
        raise ValueError("the mesh has no UVs or template points; extract it from the face model")
    clip = uv_clip(mesh.uvs)
    ones = np.ones((len(mesh.uvs), 1), np.float32)
    # Coverage from a channel of ones, not the depth buffer: UV islands do not overlap, so the
    # result does not depend on the shared context's depth state.
    muv, _ = rasterize(clip, mesh.faces, np.hstack([mirror_uvs(mesh.template, mesh.uvs), ones]),
                       size, size, depth_test=False)
    covered = muv[..., 2] > 0.5
    muv = np.ascontiguousarray(muv[..., :2])
    tmpl, _ = rasterize(clip, mesh.faces, mesh.template, size, size, depth_test=False)
    mirror = MirrorMap.from_uv(muv, size, valid=covered)
    return UVLayout(covered, mirror, tmpl)
