"""Held-out-half evaluation of the texture code (`main.py eval-texture`).

For every fitted photo, the confidently seen face texels are split into the subject's left and
right halves (by the UV layout's mirror map). Each half is predicted from the other alone, three
ways, and compared with what the photo shows there (sRGB PSNR, CIEDE2000):
  code:   the MAP texture code of the other half (with its mirror image as observations of
          the held-out side, model.encode_symmetric), decoded;
  mirror: the mirrored texel of the other half (today's fill);
  mean:   the model's mean texture.
Only texels whose mirror texel was seen count, so the three predict the same texels. A photo is
never in the model that predicts it: when the model was trained on some of the photos, models
are re-trained without each fold from the collected samples (cross-validation).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab

from .model import AppearanceModel, mirror_index, to_srgb
from .samples import UVSample

SEEN = 0.5   # confidence above which a texel counts as shown by the photo


@dataclass
class HalfScores:
    name: str
    texels: int
    psnr: dict[str, float]
    ciede2000: dict[str, float]


def face_halves(sample: UVSample) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean (S*S,) masks of the seen texels of the subject's two face halves, and each
    texel's mirror index. A texel is on side A when its mirror lies to its right in UV (u grows
    across the face); texels on the midline belong to neither."""
    s = sample.weight.shape[0]
    mirror = mirror_index(sample.mirror_uv)
    u = np.tile(np.arange(s), s)
    mu = mirror % s
    seen = (sample.weight.reshape(-1) > SEEN) & (np.abs(u - mu) >= 2)
    return seen & (mu > u), seen & (mu < u), mirror


def mirror_fill_prediction(sample: UVSample, given: np.ndarray, mirror: np.ndarray,
                           base: np.ndarray, base_tone: np.ndarray) -> np.ndarray:
    """Today's fill (core.fitting.texture): the mirrored texel where the other side was seen,
    else the default skin recoloured to the seen skin tone. (S*S, 3) linear RGB."""
    from .train import prior_fill, skin_tone
    w = np.where(given, sample.weight.reshape(-1), 0.0)
    tone = skin_tone(sample.linear, w.reshape(sample.weight.shape))
    fill = prior_fill(tone, base, base_tone).reshape(-1, 3)
    w_m = np.clip(w[mirror], 0.0, 1.0)[:, None]
    return sample.linear.reshape(-1, 3)[mirror] * w_m + fill * (1 - w_m)


def _scores(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """PSNR (dB, sRGB in [0, 1]) and mean CIEDE2000 of (N, 3) linear-RGB colours."""
    p, t = to_srgb(pred), to_srgb(truth)
    mse = float(np.mean((p - t) ** 2))
    psnr = 10 * np.log10(1.0 / max(mse, 1e-12))
    de = deltaE_ciede2000(rgb2lab(p[None].astype(np.float64)), rgb2lab(t[None].astype(np.float64)))
    return psnr, float(np.mean(de))


def evaluate_sample(model: AppearanceModel, sample: UVSample, base: np.ndarray,
                    base_tone: np.ndarray) -> HalfScores | None:
    """Both directions (A from B, B from A) pooled over every seen texel of the held-out half;
    None when one half shows too little. `base`/`base_tone`: the default skin (linear, working
    size) and its tone, for the mirror fill's fallback."""
    side_a, side_b, mirror = face_halves(sample)
    if side_a.sum() < 200 or side_b.sum() < 200:
        return None
    lin = sample.linear.reshape(-1, 3)
    w = sample.weight.reshape(-1)
    mean = model.decode_linear(model.mean_code()).reshape(-1, 3)
    preds = {"code": [], "mirror": [], "mean": []}
    truth = []
    for target, given in ((side_a, side_b), (side_b, side_a)):
        w_given = np.where(given, w, 0.0).reshape(sample.weight.shape)
        code = model.encode_symmetric(sample.linear, w_given, mirror)
        preds["code"].append(model.decode_linear(code).reshape(-1, 3)[target])
        preds["mirror"].append(mirror_fill_prediction(sample, given, mirror, base, base_tone)[target])
        preds["mean"].append(mean[target])
        truth.append(lin[target])
    t = np.concatenate(truth)
    psnr, de = {}, {}
    for k, v in preds.items():
        psnr[k], de[k] = _scores(np.concatenate(v), t)
    return HalfScores(sample.name, int(len(t)), psnr, de)


def summarize(scores: list[HalfScores]) -> dict:
    methods = ("code", "mirror", "mean")
    out = {"photos": len(scores)}
    for m in methods:
        out[f"psnr_{m}"] = float(np.mean([s.psnr[m] for s in scores])) if scores else float("nan")
        out[f"ciede2000_{m}"] = float(np.mean([s.ciede2000[m] for s in scores])) if scores else float("nan")
    if scores:
        out["psnr_gain_over_mirror_db"] = out["psnr_code"] - out["psnr_mirror"]
        out["photos_code_beats_mirror"] = float(np.mean([s.psnr["code"] > s.psnr["mirror"] for s in scores]))
    return out


def cross_validate(test: list[UVSample], train_pool: list[UVSample], model_trained_on: set[str],
                   folds: int, components: int, fit: Callable, log: Callable[[str], None] = print,
                   shipped: AppearanceModel | None = None) -> list[HalfScores]:
    """Scores of `test` samples, each predicted by a model that never saw its photo.

    Photos the shipped model was not trained on use it directly; the others are split into
    `folds` folds, and each fold is predicted by a model fitted (`fit(samples) -> model`) on the
    pool without that fold."""
    from .train import default_skin_linear, skin_tone
    size = test[0].weight.shape[0] if test else 256
    base = default_skin_linear(size)
    base_tone = skin_tone(base, np.ones(base.shape[:2], np.float32))
    base = base.reshape(-1, 3)
    seen = [s for s in test if s.photo_sha1 in model_trained_on]
    unseen = [s for s in test if s.photo_sha1 not in model_trained_on]
    out = []
    if unseen and shipped is not None:
        out += [r for r in (evaluate_sample(shipped, s, base, base_tone) for s in unseen) if r is not None]
    if seen:
        order = np.random.default_rng(0).permutation(len(seen))
        for k in range(folds):
            fold = [seen[i] for i in order[k::folds]]
            held = {s.photo_sha1 for s in fold}
            model = fit([s for s in train_pool if s.photo_sha1 not in held])
            out += [r for r in (evaluate_sample(model, s, base, base_tone) for s in fold) if r is not None]
            log(f"fold {k + 1}/{folds}: {len(fold)} photos")
    return out
