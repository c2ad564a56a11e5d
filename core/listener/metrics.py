"""Listener motion metrics as used in public evaluation code (../shared/notes/listener.md):
Frechet distance (expression and pose separately, and on frame differences), SID diversity
(k-means on real frames, entropy of the generated frames' cluster histogram), variance, blink
rate, nod detection and backchannel timing, and jerk around segment joins.

Motion: (N, 56) = 53 weights + yaw, pitch, roll degrees at 25 fps (core.listener.behaviour).
"""
from __future__ import annotations

import numpy as np
from scipy import linalg

from core.expressions import INDEX, NUM_EXPRESSIONS

from .features import FPS

EXP = slice(0, NUM_EXPRESSIONS)
POSE = slice(NUM_EXPRESSIONS, NUM_EXPRESSIONS + 3)


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 sqrt(S_a S_b)) of Gaussians fitted to the rows."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu = a.mean(0) - b.mean(0)
    sa = np.atleast_2d(np.cov(a, rowvar=False)) + 1e-6 * np.eye(a.shape[1])
    sb = np.atleast_2d(np.cov(b, rowvar=False)) + 1e-6 * np.eye(a.shape[1])
    root = linalg.sqrtm(sa @ sb)
    return float(mu @ mu + np.trace(sa + sb - 2 * np.real(root)))


class Clusters:
    """k-means centres of real frames (SID): k = 40 for expression, 20 for pose."""

    def __init__(self, real: np.ndarray, seed: int = 0):
        from scipy.cluster.vq import kmeans2
        self.k = {"exp": 40, "pose": 20}
        rng = np.random.default_rng(seed)
        self.centres = {}
        for name, sl in (("exp", EXP), ("pose", POSE)):
            x = np.asarray(real[:, sl], np.float64)
            self.centres[name], _ = kmeans2(x, self.k[name], seed=rng, minit="++")

    def sid(self, gen: np.ndarray, part: str) -> float:
        sl = EXP if part == "exp" else POSE
        c = self.centres[part]
        d = ((gen[:, sl][:, None, :] - c[None]) ** 2).sum(-1)
        hist = np.bincount(d.argmin(1), minlength=len(c)).astype(np.float64)
        p = hist[hist > 0] / hist.sum()
        return float(-(p * np.log2(p)).sum())


def blinks(motion: np.ndarray, on: float = 0.45, off: float = 0.3) -> np.ndarray:
    """Frames where a blink starts: the mean eyeBlink rises above `on` (after falling below `off`)."""
    b = 0.5 * (motion[:, INDEX["eyeBlink_L"]] + motion[:, INDEX["eyeBlink_R"]])
    starts, closed = [], False
    for i, v in enumerate(b):
        if not closed and v > on:
            starts.append(i)
            closed = True
        elif closed and v < off:
            closed = False
    return np.array(starts, int)


def blink_rate(motion: np.ndarray, fps: float = FPS) -> float:
    return len(blinks(motion)) / (len(motion) / fps / 60.0)


def nods(motion: np.ndarray, fps: float = FPS, min_deg: float = 2.0) -> np.ndarray:
    """Frames where a nod starts: a chin-down peak of head pitch at least `min_deg` above its
    surroundings (prominence), <= 0.8 s wide; the start is where the rise began."""
    from scipy.signal import find_peaks
    p = motion[:, NUM_EXPRESSIONS + 1].astype(np.float64)
    peaks, props = find_peaks(p, prominence=min_deg, width=(1, 0.8 * fps), distance=int(0.35 * fps))
    if not len(peaks):
        return np.zeros(0, int)
    return np.maximum(np.round(props["left_ips"]).astype(int), 0)


def backchannel_timing(nod_frames: np.ndarray, cue_frames: np.ndarray, fps: float = FPS,
                       lo: float = 0.3, hi: float = 1.5) -> float:
    """Share of nods starting lo-hi seconds after a cue (NaN without nods)."""
    if len(nod_frames) == 0:
        return float("nan")
    cues = np.asarray(cue_frames, float)
    hits = 0
    for n in nod_frames:
        d = (n - cues) / fps
        hits += bool(np.any((d >= lo) & (d <= hi)))
    return hits / len(nod_frames)


def jerk_at_joins(motion_norm: np.ndarray, joins: list[int], radius: int = 3) -> tuple[float, float]:
    """Mean |third difference| of (normalised) motion at frames within `radius` of a join, and
    elsewhere."""
    j = np.abs(np.diff(motion_norm, 3, axis=0)).mean(1)
    near = np.zeros(len(j), bool)
    for k in joins:
        near[max(0, k - radius - 2):k + radius] = True
    if not near.any() or near.all():
        return float("nan"), float(j.mean())
    return float(j[near].mean()), float(j[~near].mean())


def motion_metrics(gen: np.ndarray, real: np.ndarray, clusters: Clusters, cues: np.ndarray | None = None,
                   fps: float = FPS) -> dict:
    """The figures for one generated sequence against the pooled real listening frames."""
    out = {
        "fd_exp": frechet(gen[:, EXP], real[:, EXP]),
        "fd_pose": frechet(gen[:, POSE], real[:, POSE]),
        "fd_diff_exp": frechet(np.diff(gen[:, EXP], axis=0), np.diff(real[:, EXP], axis=0)),
        "fd_diff_pose": frechet(np.diff(gen[:, POSE], axis=0), np.diff(real[:, POSE], axis=0)),
        "sid_exp": clusters.sid(gen, "exp"), "sid_pose": clusters.sid(gen, "pose"),
        "var_exp": float(gen[:, EXP].var()), "var_pose": float(gen[:, POSE].var()),
        "blinks_per_min": blink_rate(gen, fps),
    }
    n = nods(gen, fps)
    out["nods_per_min"] = len(n) / (len(gen) / fps / 60.0)
    if cues is not None:
        out["backchannel_timing"] = backchannel_timing(n, cues, fps)
    return out
