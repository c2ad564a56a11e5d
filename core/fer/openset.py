"""Open-set "unknown expression" scores and their evaluation by leaving a class out.

After Zhang et al. 2024, "Open-Set Facial Expression Recognition" (AAAI): a closed-set FER
model is trained without some classes, and a score must rank faces of the unseen class above
faces of the seen ones (AUROC). We compare the standard post-hoc scores on our own network:
  msp       1 - max softmax probability
  maxlogit  -max logit
  energy    -logsumexp(logits)   (Liu et al. 2020)
  feature   1 - max cosine similarity of the pooled feature to the train class means
Higher means "more likely unknown" for all of them.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .model import FerNet, ensemble_forward, normalize

SCORES = ("msp", "maxlogit", "energy", "feature")


@torch.no_grad()
def logits_and_features(model: FerNet | Sequence[FerNet], images: torch.Tensor | np.ndarray, bs: int = 512,
                        flip: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and unit-length pooled features of a network or an ensemble, flip-averaged when `flip`."""
    models = [model] if isinstance(model, FerNet) else list(model)
    x = torch.as_tensor(images)
    logits, feats = [], []
    for i in range(0, len(x), bs):
        lo, fe = ensemble_forward(models, normalize(x[i:i + bs]), flip)
        logits.append(lo)
        feats.append(fe)
    return torch.cat(logits), torch.cat(feats)


def class_means(feats: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    means = torch.stack([feats[labels == c].mean(0) for c in range(num_classes)])
    return torch.nn.functional.normalize(means, dim=1)


def unknown_scores(logits: torch.Tensor, feats: torch.Tensor | None = None,
                   means: torch.Tensor | None = None) -> dict[str, np.ndarray]:
    out = {
        "msp": 1 - torch.softmax(logits, 1).max(1).values,
        "maxlogit": -logits.max(1).values,
        "energy": -torch.logsumexp(logits, 1),
    }
    if feats is not None and means is not None:
        out["feature"] = 1 - (feats @ means.T).max(1).values
    return {k: v.numpy().astype(np.float64) for k, v in out.items()}


def auroc(known: np.ndarray, unknown: np.ndarray) -> float:
    """Probability that a random unknown scores above a random known (ties count half)."""
    s = np.concatenate([known, unknown])
    ranks = np.empty(len(s))
    order = np.argsort(s, kind="mergesort")
    ranks[order] = np.arange(1, len(s) + 1)
    for v in np.unique(s[order][np.r_[False, np.diff(s[order]) == 0]]):  # average tied ranks
        ranks[s == v] = ranks[s == v].mean()
    n_k, n_u = len(known), len(unknown)
    return float((ranks[n_k:].sum() - n_u * (n_u + 1) / 2) / (n_k * n_u))


def calibrate(known_scores: np.ndarray) -> np.ndarray:
    """101 quantiles of a score on known-class val faces: maps a raw score to 0..1."""
    return np.quantile(known_scores, np.linspace(0, 1, 101)).astype(np.float32)


def to_unit(score: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Share of known val faces that look more familiar than this one (0 typical, 1 unlike any)."""
    return np.interp(score, quantiles, np.linspace(0, 1, len(quantiles))).astype(np.float32)
