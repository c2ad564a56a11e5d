"""Implicit morphable face model (SDF + identity/expression fields + shared UV layout).

    from core.facemodel import FaceModel, Mesh, Animator
    model = FaceModel.load()
    mesh = model.extract_mesh(model.mean_identity())

Names are imported on first use so that training (core.facemodel.train) loads only what it needs.
"""
from __future__ import annotations

__all__ = ["FaceModel", "Mesh", "Animator", "ModelLoadError"]


def __getattr__(name: str):
    if name in ("Mesh", "Animator"):
        from . import mesh
        return getattr(mesh, name)
    if name in ("FaceModel", "ModelLoadError"):
        from . import model
        return getattr(model, name)
    raise AttributeError(name)
