"""The fitted placement and motion of the head's parts (resources/models/head_parts.npz).

`HeadRig.load()` reads the file that scripts/fit_head_parts.py writes (no FaceKit data: linear
regression weights from the identity code to each part's placement, the jaw's rigid motion per
unit control, gaze angles). `rig.params(identity)` gives a dict of named placements in cm for an
identity code; `rig.jaw_affine(weights)` the lower jaw's 4x4 transform for 53 weights.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from core.expressions import EXPRESSION_NAMES
from core.paths import MODELS_DIR

HEAD_PARTS_FILE = MODELS_DIR / "head_parts.npz"


class HeadRigError(ValueError):
    """The head parts file is missing or damaged (the message says which and how to rebuild)."""


def _rotation(rv: np.ndarray) -> np.ndarray:
    """Rodrigues: rotation vector (radians) -> 3x3."""
    rv = np.asarray(rv, np.float64)
    a = float(np.linalg.norm(rv))
    if a < 1e-12:
        return np.eye(3)
    k = rv / a
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(a) * kx + (1 - np.cos(a)) * kx @ kx


class HeadRig:
    def __init__(self, weights: np.ndarray, bias: np.ndarray, jaw_rotvec: np.ndarray,
                 jaw_translation: np.ndarray, meta: dict, path: Path | None = None) -> None:
        self.weights = np.asarray(weights, np.float64)         # (P, identity_dim)
        self.bias = np.asarray(bias, np.float64)                # (P,)
        self.meta = meta
        self.names: list[str] = list(meta["param_names"])
        self.jaw_controls: list[str] = list(meta["jaw_controls"])
        self.jaw_index = np.array([EXPRESSION_NAMES.index(n) for n in self.jaw_controls])
        # Each control's rigid motion at weight 1 as a 4x4; a weight mix blends them linearly
        # (as ICT's blendshapes and the skin do).
        self.jaw_affines = []
        for rv, t in zip(np.asarray(jaw_rotvec, np.float64), np.asarray(jaw_translation, np.float64)):
            m = np.eye(4)
            m[:3, :3] = _rotation(rv)
            m[:3, 3] = t
            self.jaw_affines.append(m)
        self.gaze_deg: dict[str, float] = dict(meta["gaze_deg"])
        self.eye_shape: dict = dict(meta["eye_shape"])
        self.path = path
        if self.weights.shape != (len(self.names), int(meta["identity_dim"])) or self.bias.shape != (len(self.names),):
            raise HeadRigError(f"{path}: weights {self.weights.shape} do not match {len(self.names)} parameters")

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "HeadRig":
        return _load(str(Path(path) if path is not None else HEAD_PARTS_FILE))

    @property
    def identity_dim(self) -> int:
        return self.weights.shape[1]

    def params(self, identity: np.ndarray | None) -> dict[str, float]:
        """Placement of every part for an identity code (None: the mean face), cm."""
        if identity is None:
            p = self.bias
        else:
            z = np.asarray(identity, np.float64).reshape(-1)
            if z.shape[0] != self.identity_dim:
                raise ValueError(f"expected an identity code of {self.identity_dim} values, got {z.shape[0]}")
            p = self.weights @ z + self.bias
        return {n: float(v) for n, v in zip(self.names, p)}

    def jaw_affine(self, weights: np.ndarray | None) -> np.ndarray:
        """4x4 transform of the lower jaw (teeth, tongue) for 53 weights: I + sum w_k (A_k - I)."""
        m = np.eye(4)
        if weights is None:
            return m
        w = np.asarray(weights, np.float64)[self.jaw_index]
        for wk, a in zip(w, self.jaw_affines):
            if wk:
                m = m + wk * (a - np.eye(4))
        return m

    def jaw_offsets(self, points: np.ndarray) -> np.ndarray:
        """(4, N, 3) offsets per unit jaw control of points on the lower jaw (morph targets)."""
        p = np.asarray(points, np.float64)
        return np.stack([p @ (a[:3, :3] - np.eye(3)).T + a[:3, 3] for a in self.jaw_affines]).astype(np.float32)


@lru_cache(maxsize=4)
def _load(path: str) -> HeadRig:
    p = Path(path)
    if not p.exists():
        raise HeadRigError(f"head parts file {p} not found: rebuild it with "
                           "`python3 scripts/fit_head_parts.py` (needs ../shared/facekit)")
    try:
        with np.load(p, allow_pickle=False) as d:
            arrays = {k: d[k] for k in ("weights", "bias", "jaw_rotvec", "jaw_translation", "meta")}
        meta = json.loads(str(arrays.pop("meta")))
        return HeadRig(**arrays, meta=meta, path=p)
    except HeadRigError:
        raise
    except Exception as exc:  # damaged zip, missing member, bad JSON, wrong shapes
        raise HeadRigError(f"head parts file {p} is damaged ({type(exc).__name__}: {exc}); "
                           "rebuild it with `python3 scripts/fit_head_parts.py`") from None


__all__ = ["HeadRig", "HeadRigError", "HEAD_PARTS_FILE"]
