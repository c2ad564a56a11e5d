"""Learn the appearance model from partial UV observations of real photos.

PCA with missing data by soft imputation (EM): every sample is a UV albedo seen only where the
photo shows the face. Unseen texels start from a weak prior (the default skin recoloured to the
sample's measured skin tone, so the head, neck and ears get a plausible colour that tracks the
face), then alternate: fit mean + K components to the filled data, refill the unseen part (and
the weakly seen part, in proportion to its confidence) with the reconstruction. The components
are scaled so the code's prior is N(0, I).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .model import DEFAULT_PATH, AppearanceModel, to_linear, to_model_space
from .samples import WORK_SIZE, UVSample, load_samples

PRIOR_WEIGHT = 0.03     # confidence of the recoloured default skin where a photo shows nothing


def uv_coverage(size: int = WORK_SIZE) -> np.ndarray:
    """Texels of the UV islands (the mean face's mesh rasterised in UV space)."""
    from core.facemodel import FaceModel
    from core.fitting.raster import rasterize, uv_clip

    model = FaceModel.load()
    mesh = model.extract_mesh(model.mean_identity(), resolution=128)
    _, covered = rasterize(uv_clip(mesh.uvs), mesh.faces, mesh.uvs, size, size)
    return covered


def skin_tone(linear: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Median linear RGB of confidently seen, skin-like texels (not brows, eyes, dark mouth)."""
    srgb = np.clip(linear, 0, 1) ** (1 / 2.2)
    lum = srgb @ np.array([0.3, 0.59, 0.11], np.float32)
    ok = (weight > 0.5) & (lum > 0.15) & (lum < 0.97) & (srgb[..., 0] >= 0.9 * srgb[..., 1])
    if ok.sum() < 50:
        ok = weight > 0.5
    if not ok.any():
        return np.array([0.5, 0.32, 0.25], np.float32)
    return np.median(linear[ok], 0).astype(np.float32)


def prior_fill(tone: np.ndarray, base: np.ndarray, base_tone: np.ndarray) -> np.ndarray:
    """The default skin (linear, working size) recoloured to `tone`."""
    return np.clip(base * (tone / np.maximum(base_tone, 1e-4)), 0, 1)


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(a.astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def continued_prior(linear: np.ndarray, weight: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """The prior fill shifted (in log space) by the photo's own offset from it: near the seen
    face by the local offset, far away by the average one, so no tone step runs along the
    face outline (photos' faces are darker than a median skin tone: shadows, brows, beard)."""
    size = weight.shape[0]
    lp, lo = np.log(prior + 0.02), np.log(np.clip(linear, 0, 1) + 0.02)
    seen = weight > 0.3
    if seen.sum() < 20:
        return prior
    diff = lo - lp
    overall = np.median(diff[seen], 0)
    sigma = size / 16
    near = _blur(diff * weight[..., None], sigma) / np.maximum(_blur(weight, sigma), 1e-6)[..., None]
    reach = np.clip(_blur(weight, sigma) * 6.0, 0.0, 1.0)[..., None]
    return np.clip(np.exp(lp + near * reach + overall * (1 - reach)) - 0.02, 0.0, 1.0).astype(np.float32)


def default_skin_linear(size: int = WORK_SIZE) -> np.ndarray:
    from core.avatar import default_texture
    tex = default_texture().astype(np.float32) / 255.0
    return to_linear(cv2.resize(tex, (size, size), interpolation=cv2.INTER_AREA)).astype(np.float32)


def mirrored(sample: UVSample) -> UVSample:
    """The sample as the mirror-image face would show it (faces are nearly symmetric, so this
    doubles the data and teaches the model which texels go together across the midline)."""
    from .model import mirror_index
    idx = mirror_index(sample.mirror_uv)
    shape = sample.weight.shape
    lin = sample.linear.reshape(-1, 3)[idx].reshape(*shape, 3)
    return UVSample(sample.name + "~mirror", lin, sample.weight.reshape(-1)[idx].reshape(shape),
                    sample.mirror_uv, sample.identity, sample.expression, sample.photo_sha1)


def fit_pca(samples: list[UVSample], covered: np.ndarray, components: int = 48, iterations: int = 12,
            mirror: bool = False, log: Callable[[str], None] = print) -> tuple[AppearanceModel, dict]:
    """EM-PCA over the samples' covered texels (and their mirror images when `mirror`);
    returns the model and training figures."""
    if mirror:
        samples = list(samples) + [mirrored(s) for s in samples]
    size = covered.shape[0]
    base = default_skin_linear(size)
    cov_idx = np.flatnonzero(covered.reshape(-1))
    n, d = len(samples), cov_idx.size * 3
    base_tone = skin_tone(base, covered.astype(np.float32))
    x = np.empty((n, d), np.float32)
    w = np.empty((n, d), np.float32)
    for i, s in enumerate(samples):
        tone = skin_tone(s.linear, s.weight)
        wt = np.maximum(s.weight, 0.0)
        prior = continued_prior(s.linear, wt, prior_fill(tone, base, base_tone))
        obs = np.where(wt[..., None] > 0, s.linear, prior)   # weights carry the confidence
        x[i] = to_model_space(obs.reshape(-1, 3)[cov_idx]).reshape(-1)
        w[i] = np.repeat(np.maximum(wt, PRIOR_WEIGHT).reshape(-1)[cov_idx], 3)
    data = x.copy()
    filled = x
    t0 = time.perf_counter()
    k = min(components, n - 1)
    for it in range(iterations):
        mean = filled.mean(0)
        xc = filled - mean
        gram = xc @ xc.T
        evals, evecs = np.linalg.eigh(gram.astype(np.float64))
        order = np.argsort(evals)[::-1][:k]
        evals, evecs = np.maximum(evals[order], 1e-9), evecs[:, order]
        u = evecs.astype(np.float32)
        v = (u.T @ xc) / np.sqrt(evals).astype(np.float32)[:, None]          # (K, D) orthonormal rows
        recon = mean + (xc @ v.T) @ v
        resid = ((recon - data) ** 2 * w).sum() / w.sum()
        filled = w * data + (1 - w) * recon
        if it % 5 == 0 or it == iterations - 1:
            log(f"EM-PCA iteration {it + 1}/{iterations}: weighted residual {resid:.6f}, "
                f"{time.perf_counter() - t0:.0f} s")
    sigma = np.sqrt(evals / max(n - 1, 1)).astype(np.float32)                 # std of each code
    seen = w > 0.5
    noise = float(((recon - data)[seen] ** 2).mean())
    full_mean = np.zeros((size * size, 3), np.float32)
    full_mean[cov_idx] = mean.reshape(-1, 3)
    basis = np.zeros((k, size * size, 3), np.float32)
    basis[:, cov_idx] = (v * sigma[:, None]).reshape(k, -1, 3)
    explained = (evals / np.sum((filled - filled.mean(0)) ** 2)).astype(np.float64)
    meta = {"space": "log(linear RGB + 0.02)", "samples": n // 2 if mirror else n, "mirror_augmented": mirror, "components": k, "working_size": size, "iterations": iterations,
            "explained_variance": [round(float(e), 5) for e in explained],
            "observation_noise_rms": round(float(np.sqrt(noise)), 5),
            "prior_weight": PRIOR_WEIGHT, "seconds": round(time.perf_counter() - t0, 1)}
    model = AppearanceModel(full_mean.reshape(size, size, 3), basis.reshape(k, size, size, 3),
                            noise, covered, meta)
    return model, meta


def train_and_save(sample_dir: Path, out: Path | None = None, components: int = 48,
                   exclude: set[str] | None = None, log: Callable[[str], None] = print) -> AppearanceModel:
    samples = [s for s in load_samples(Path(sample_dir)) if not exclude or s.name not in exclude]
    if len(samples) < 10:
        raise ValueError(f"only {len(samples)} samples in {sample_dir}; collect first")
    log(f"{len(samples)} samples")
    model, meta = fit_pca(samples, uv_coverage(samples[0].weight.shape[0]), components, log=log)
    model.meta["photos_sha1"] = sorted(s.photo_sha1 for s in samples)
    size = model.save(out or DEFAULT_PATH)
    log(json.dumps({k: v for k, v in meta.items() if k != "explained_variance"}) + f" ({size / 1e6:.1f} MB)")
    return model
