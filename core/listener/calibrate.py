"""Output calibration of the listener's expression channels, fitted on TRAINING clips only.

Few-step DDIM samples regress toward the mean: on the training speakers the network's
expressions vary with about a third of the real listener's variance (summed over the 53
weights: 0.16 vs 0.41) and jitter frame to frame. The calibration splits each generated
expression channel (in the model's normalised units) into a slow part (Gaussian, sigma 2
frames) and the fast rest, and maps

    out = mean_real + scale * (slow - mean_gen) + fast_scale * fast

with per-channel constants that make the slow part's mean and spread and the fast part's spread
match the real training listening frames (core.listener.data.listening_runs(..., "train")),
measured on the network's own samples for the training speakers. Head rotation is left alone
(scaling it moved the nods off their timing), and so are the eyelids (the blink layer's: widened,
the network's lids crossed the blink threshold, 31 blinks/min). Stored in the weights file's meta
("calibration"), written by scripts/calibrate_listener.py; nothing here looks at held-out data.
"""
from __future__ import annotations

import numpy as np

from core.expressions import INDEX, NUM_EXPRESSIONS

from .behaviour import MOTION_DIM

SIGMA = 2.0                      # frames: slow/fast split
SCALE_RANGE = (0.5, 3.0)
FAST_RANGE = (0.2, 1.5)
KEYS = ("mean_real", "mean_gen", "scale", "fast_scale")
LIDS = (INDEX["eyeBlink_L"], INDEX["eyeBlink_R"])


def split_slow_fast(x: np.ndarray, sigma: float = SIGMA) -> tuple[np.ndarray, np.ndarray]:
    from core.animation.clip import gaussian_smooth
    slow = gaussian_smooth(np.asarray(x, np.float32), sigma)
    return slow, np.asarray(x, np.float32) - slow


def fit_calibration(generated: list[np.ndarray], real_runs: list[np.ndarray], sigma: float = SIGMA) -> dict:
    """Constants from normalised generated sequences and normalised real runs (both (N, 56))."""
    gs = [split_slow_fast(g, sigma) for g in generated]
    rs = [split_slow_fast(r, sigma) for r in real_runs]
    g_slow, g_fast = np.concatenate([a for a, _ in gs]), np.concatenate([b for _, b in gs])
    r_slow, r_fast = np.concatenate([a for a, _ in rs]), np.concatenate([b for _, b in rs])
    e = slice(0, NUM_EXPRESSIONS)
    cal = {"sigma": float(sigma), "mean_real": g_slow.mean(0), "mean_gen": g_slow.mean(0),
           "scale": np.ones(MOTION_DIM), "fast_scale": np.ones(MOTION_DIM)}
    cal["mean_real"][e] = r_slow.mean(0)[e]
    cal["scale"][e] = np.clip(r_slow.std(0)[e] / (g_slow.std(0)[e] + 1e-6), *SCALE_RANGE)
    cal["fast_scale"][e] = np.clip(r_fast.std(0)[e] / (g_fast.std(0)[e] + 1e-6), *FAST_RANGE)
    for k in LIDS:                 # the lids belong to the blink layer: widening them made blinks
        cal["mean_real"][k], cal["scale"][k], cal["fast_scale"][k] = cal["mean_gen"][k], 1.0, 1.0
    return {k: (v.astype(np.float64).round(5).tolist() if isinstance(v, np.ndarray) else v) for k, v in cal.items()}


def check_calibration(cal) -> dict:
    """The stored constants as arrays, or ValueError if they are not a plausible calibration."""
    if not isinstance(cal, dict) or not all(k in cal for k in (*KEYS, "sigma")):
        raise ValueError("calibration lacks its constants")
    sigma = float(cal["sigma"])
    if not 0.5 <= sigma <= 10:
        raise ValueError(f"calibration sigma {sigma} out of range")
    out = {"sigma": sigma}
    for k in KEYS:
        v = np.asarray(cal[k], np.float32)
        if v.shape != (MOTION_DIM,) or not np.isfinite(v).all():
            raise ValueError(f"calibration {k} must be {MOTION_DIM} finite numbers")
        out[k] = v
    lo, hi = min(SCALE_RANGE[0], FAST_RANGE[0]), max(SCALE_RANGE[1], FAST_RANGE[1])
    if not all((lo <= out[k]).all() and (out[k] <= hi).all() for k in ("scale", "fast_scale")):
        raise ValueError("calibration scales out of range")
    return out


def apply_calibration(x: np.ndarray, cal: dict) -> np.ndarray:
    """Calibrated (N, 56) normalised motion (cal as returned by check_calibration)."""
    slow, fast = split_slow_fast(x, cal["sigma"])
    return (cal["mean_real"] + cal["scale"] * (slow - cal["mean_gen"]) + cal["fast_scale"] * fast).astype(np.float32)
