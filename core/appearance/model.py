"""AppearanceModel: the avatar's texture code <-> a 1024^2 albedo texture in the shared UV layout.

A linear model of log albedo learned from real photos with missing data
(core/appearance/train.py):

    log(albedo(c) + EPS) = mean + basis^T c,   c ~ N(0, I)   (linear RGB, working resolution)

In log space tone and exposure act as factors, so any code decodes to positive, skin-like
colour (a linear model's leading "brightness" component went negative at -2.5 sigma).

The basis is scaled so the code has a unit Gaussian prior: sliders are in standard deviations and
a random appearance is `temperature * N(0, I)`. Decoding upsamples to the output size, adds the
fine skin grain of the default texture (the working resolution holds no pores), and converts to
sRGB. Encoding from a partial observation (a photo shows one side of a face) is the maximum a
posteriori code under the prior: a K x K linear solve.

File: resources/models/appearance.npz (np.load with allow_pickle=False): `format`, `mean`
(S, S, 3) float16, `covered` (S, S) bool (texels of the UV islands), `basis` (K, M, 3) float16
over the M covered texels in row-major order (outside the islands a texel takes its nearest
island texel's colour), `noise` (observation noise variance, float32), `meta` (JSON string).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from core.atomic import write_atomic
from core.paths import MODELS_DIR
from core.safeload import npz_load

DEFAULT_PATH = MODELS_DIR / "appearance.npz"
FORMAT = "likeness-appearance-v2"   # v2: log-albedo space
OUTPUT_SIZE = 1024
EPS = 0.02           # linear-RGB offset of the log space: keeps dark mouth and pupils finite


def to_model_space(linear: np.ndarray) -> np.ndarray:
    return np.log(np.clip(linear, 0.0, 1.0) + EPS).astype(np.float32)


def from_model_space(x: np.ndarray) -> np.ndarray:
    return np.clip(np.exp(x) - EPS, 0.0, 1.0).astype(np.float32)


class AppearanceModelError(Exception):
    """The appearance model file is missing or damaged; the message says which and what to do."""


def to_linear(srgb: np.ndarray) -> np.ndarray:
    c = np.clip(srgb, 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def to_srgb(lin: np.ndarray) -> np.ndarray:
    c = np.clip(lin, 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)


class AppearanceModel:
    def __init__(self, mean: np.ndarray, basis: np.ndarray, noise: float, covered: np.ndarray,
                 meta: dict | None = None):
        """mean (S, S, 3); basis (K, M, 3) over the covered texels (or (K, S, S, 3), reduced)."""
        self.mean = np.ascontiguousarray(mean, np.float32)                   # (S, S, 3)
        self.size = self.mean.shape[0]
        self.covered = np.asarray(covered, bool)
        self._cov_idx = np.flatnonzero(self.covered.reshape(-1))
        basis = np.asarray(basis, np.float32)
        if basis.ndim == 4:
            basis = basis.reshape(len(basis), -1, 3)[:, self._cov_idx]
        self.basis = np.ascontiguousarray(basis.reshape(len(basis), -1))      # (K, M*3)
        self.noise = float(noise)
        self.meta = dict(meta or {})
        self._grain: dict[int, np.ndarray] = {}
        self._fill_index = _nearest_covered(self.covered)

    # --- files --------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "AppearanceModel":
        p = Path(path) if path is not None else DEFAULT_PATH
        if not p.is_file():
            raise AppearanceModelError(
                f"appearance model not found at {p}; restore resources/models/appearance.npz or "
                f"rebuild it with `python scripts/train_appearance.py collect` then `train`")
        try:
            with npz_load(p, 256 << 20) as z:   # np.load(allow_pickle=False) after a zip-bomb check
                if str(z["format"]) != FORMAT:
                    raise ValueError(f"not a {FORMAT} file")
                mean, basis = z["mean"].astype(np.float32), z["basis"].astype(np.float32)
                noise, covered = float(z["noise"]), z["covered"].astype(bool)
                meta = json.loads(str(z["meta"]))
            s = mean.shape[0]
            if mean.shape != (s, s, 3) or covered.shape != (s, s) or not 16 <= s <= 2048 \
                    or basis.shape[1:] != (int(covered.sum()), 3) or not 1 <= len(basis) <= 1024:
                raise ValueError("array shapes do not match")
            if not isinstance(meta, dict):
                raise ValueError("meta is not a mapping")
            if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(basis)) and np.isfinite(noise)):
                raise ValueError("it holds NaN or infinite values")
        except Exception as exc:  # zip/npy damage, missing keys, wrong shapes, pickles
            raise AppearanceModelError(f"{p} is not a readable appearance model ({exc}); restore "
                                       f"resources/models/appearance.npz from the repository") from None
        return cls(mean, basis, noise, covered, meta)

    def save(self, path: str | os.PathLike) -> int:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(p, lambda f: np.savez_compressed(
            f, format=np.array(FORMAT), mean=self.mean.astype(np.float16),
            basis=self.basis.reshape(self.num_components, -1, 3).astype(np.float16),
            noise=np.float32(self.noise), covered=self.covered, meta=np.array(json.dumps(self.meta))))
        return p.stat().st_size

    # --- codes --------------------------------------------------------------------------------
    @property
    def num_components(self) -> int:
        return self.basis.shape[0]

    def mean_code(self) -> np.ndarray:
        return np.zeros(self.num_components, np.float32)

    def sample(self, rng: np.random.Generator, temperature: float = 1.0) -> np.ndarray:
        return (rng.standard_normal(self.num_components) * temperature).astype(np.float32)

    def _code(self, code: np.ndarray | None) -> np.ndarray:
        if code is None:
            return self.mean_code()
        c = np.asarray(code, np.float32).reshape(-1)
        k = self.num_components
        # codes from another model size: extra components dropped, missing ones at the mean
        return c[:k] if c.size >= k else np.pad(c, (0, k - c.size))

    # --- decode -------------------------------------------------------------------------------
    def decode_linear(self, code: np.ndarray | None, size: int | None = None) -> np.ndarray:
        """(size, size, 3) float32 linear-RGB albedo; size None = the working resolution."""
        c = self._code(code)
        flat = self.mean.reshape(-1, 3).copy()
        flat[self._cov_idx] += (c @ self.basis).reshape(-1, 3)
        lin = from_model_space(flat[self._fill_index].reshape(self.mean.shape))  # outside the islands
        if size is not None and size != self.size:
            lin = cv2.resize(lin, (size, size), interpolation=cv2.INTER_LINEAR)
            lin = np.clip(lin * self._skin_grain(size)[..., None], 0.0, 1.0)
        return lin

    def decode(self, code: np.ndarray | None, size: int = OUTPUT_SIZE) -> np.ndarray:
        """(size, size, 3) uint8 sRGB texture, row 0 = v 1 (the renderer's convention).

        Converted to sRGB at the working resolution, then upsampled and grained: a slider drag
        re-decodes every frame, and the per-texel power at 1024^2 alone took ~60 ms."""
        srgb = to_srgb(self.decode_linear(code)).astype(np.float32)
        if size != self.size:
            srgb = cv2.resize(srgb, (size, size), interpolation=cv2.INTER_LINEAR)
            srgb *= self._skin_grain(size, srgb_space=True)[..., None]
        return cv2.convertScaleAbs(srgb, alpha=255.0, beta=0.5)

    def _skin_grain(self, size: int, srgb_space: bool = False) -> np.ndarray:
        """Multiplicative fine detail (pores, mottling) of the default skin, mean 1; only the
        finest scales, so the default skin's painted brows and lips leave no outline."""
        key = (size, srgb_space)
        if key not in self._grain:
            from core.avatar import default_texture
            lum = to_linear(default_texture().astype(np.float32) / 255.0).mean(-1)
            lum = cv2.resize(lum, (size, size), interpolation=cv2.INTER_AREA)
            low = cv2.GaussianBlur(lum, (0, 0), max(1.0, size / 512))
            g = np.clip(lum / np.maximum(low, 1e-3), 0.9, 1.1)
            self._grain[key] = (g ** (1 / 2.2) if srgb_space else g).astype(np.float32)
        return self._grain[key]

    # --- encode -------------------------------------------------------------------------------
    def encode(self, linear: np.ndarray, weight: np.ndarray, prior: float = 1.0) -> np.ndarray:
        """MAP code of a partial observation: `linear` (S, S, 3) albedo, `weight` (S, S) in [0, 1]
        (0 = unseen), both at the working resolution (core.appearance.samples.reduce_observation)."""
        lin = np.asarray(linear, np.float32)
        w = np.asarray(weight, np.float32)
        if lin.shape != self.mean.shape or w.shape != self.mean.shape[:2]:
            raise ValueError(f"observation must be {self.mean.shape} + {self.mean.shape[:2]}, "
                             f"got {lin.shape} + {w.shape}")
        wc = np.repeat(w.reshape(-1)[self._cov_idx], 3)
        idx = np.flatnonzero(wc > 1e-3)
        k = self.num_components
        if idx.size == 0:
            return self.mean_code()
        b = self.basis[:, idx]                                       # (K, M)
        ww = wc[idx] / self.noise
        obs = to_model_space(lin.reshape(-1, 3)[self._cov_idx])
        r = (obs - self.mean.reshape(-1, 3)[self._cov_idx]).reshape(-1)[idx]
        a = (b * ww) @ b.T + prior * np.eye(k, dtype=np.float32)
        return np.linalg.solve(a, (b * ww) @ r).astype(np.float32)

    def encode_symmetric(self, linear: np.ndarray, weight: np.ndarray, mirror: np.ndarray,
                         mirror_weight: float = 1.0) -> np.ndarray:
        """MAP code of a partial observation together with its mirror image: a texel that was not
        seen but whose mirror texel (`mirror`: flat index per texel, see mirror_index) was
        counts as an observation of that colour with `mirror_weight` times its confidence. Faces
        are nearly symmetric; measured on held-out halves this predicts better than the seen
        texels alone (docs/APPEARANCE.md)."""
        lin = np.asarray(linear, np.float32).reshape(-1, 3)
        w = np.asarray(weight, np.float32).reshape(-1)
        w_m = np.clip(w[mirror] * mirror_weight, 0.0, 1.0)
        use_m = w_m > w
        obs = np.where(use_m[:, None], lin[mirror], lin).reshape(self.mean.shape)
        return self.encode(obs, np.where(use_m, w_m, w).reshape(self.mean.shape[:2]))


def mirror_index(mirror_uv: np.ndarray) -> np.ndarray:
    """(S*S,) flat index of each texel's mirror texel, from an (S, S, 2) map of mirror UVs."""
    s = mirror_uv.shape[0]
    mx = np.clip(np.round(mirror_uv[..., 0] * (s - 1)), 0, s - 1).astype(np.int64)
    my = np.clip(np.round((1 - mirror_uv[..., 1]) * (s - 1)), 0, s - 1).astype(np.int64)
    return (my * s + mx).reshape(-1)


def _nearest_covered(covered: np.ndarray) -> np.ndarray:
    """Per texel, the flat index of the nearest texel inside the UV islands (bilinear filtering
    and mip-maps at island borders then read skin, not black)."""
    s = covered.shape[0]
    if covered.all() or not covered.any():
        return np.arange(s * s)
    _, labels = cv2.distanceTransformWithLabels((~covered).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(covered)
    lut = np.zeros(labels.max() + 1, np.int64)
    lut[labels[ys, xs]] = ys * s + xs
    return lut[labels].reshape(-1)


_SHARED: AppearanceModel | None = None


def shared_model() -> AppearanceModel:
    """One model per process (the app, the fitter and the CLI share it)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = AppearanceModel.load()
    return _SHARED
