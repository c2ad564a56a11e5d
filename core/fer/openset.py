"""Open-set "unknown expression" scores and their evaluation by leaving a class out.

After Zhang et al. 2024, "Open-Set Facial Expression Recognition" (AAAI): a closed-set FER
model is trained without some classes, and a score must rank faces of the unseen class above
faces of the seen ones (AUROC). We compare the standard post-hoc scores on our own network:
  msp       1 - max softmax probability
  maxlogit  -max logit
  energy    -logsumexp(logits)   (Liu et al. 2020)
  feature   1 - max cosine similarity of the pooled feature to the train class means
  mahalanobis  min over classes of the Mahalanobis distance of the unit feature to the class
            mean, one covariance shared by the classes (Lee et al. 2018)
  knn       1 - cosine similarity to the k-th nearest training feature (Sun et al. 2022)
  flipcam   1 - cosine between the predicted class's activation map and the mirrored map of the
            mirrored face (the flip attention consistency of Zhang et al., scored on one face)
Higher means "more likely unknown" for all of them. `fpr_at_tpr` gives FPR95.
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


def gaussian_fit(feats: torch.Tensor, labels: torch.Tensor, num_classes: int,
                 shrink: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """Class means and the shared precision matrix of unit features (covariance shrunk towards
    its mean variance so it stays invertible with few faces of a class)."""
    means = torch.stack([feats[labels == c].mean(0) for c in range(num_classes)])
    centred = feats - means[labels]
    cov = centred.T @ centred / len(feats)
    cov = (1 - shrink) * cov + shrink * cov.diagonal().mean() * torch.eye(cov.shape[0])
    return means, torch.linalg.inv(cov.double()).float()


def mahalanobis(feats: torch.Tensor, means: torch.Tensor, precision: torch.Tensor) -> torch.Tensor:
    d = feats[:, None, :] - means[None]                       # (N, C, D)
    return torch.einsum("ncd,de,nce->nc", d, precision, d).min(1).values


def knn_distance(feats: torch.Tensor, bank: torch.Tensor, k: int = 10, bs: int = 1024) -> torch.Tensor:
    """1 - cosine similarity to the k-th nearest of `bank` (unit features of training faces)."""
    out = [1 - (feats[i:i + bs] @ bank.T).topk(k, 1).values[:, -1] for i in range(0, len(feats), bs)]
    return torch.cat(out)


@torch.no_grad()
def flip_cam_inconsistency(model: FerNet, images: torch.Tensor | np.ndarray, bs: int = 512) -> torch.Tensor:
    """1 - cosine between the class activation map (head weights . last 6x6 feature map) of the
    predicted class and the mirrored map of the mirrored face. A face whose evidence for its label
    does not move with the face when mirrored is scored as less familiar."""
    x = torch.as_tensor(images)
    out = []
    for i in range(0, len(x), bs):
        xb = normalize(x[i:i + bs])
        fm = model.features(torch.cat([xb, xb.flip(-1)]))
        n = len(xb)
        logits = model.head(model.pool(fm).flatten(1))
        pred = (logits[:n] + logits[n:]).argmax(1)
        w = model.head.weight[pred]                                    # (n, C)
        cam = torch.einsum("nc,nchw->nhw", w, fm[:n]).flatten(1)
        cam_f = torch.einsum("nc,nchw->nhw", w, fm[n:]).flip(-1).flatten(1)
        out.append(1 - torch.nn.functional.cosine_similarity(cam, cam_f, dim=1))
    return torch.cat(out)


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


def fpr_at_tpr(known: np.ndarray, unknown: np.ndarray, tpr: float = 0.95) -> float:
    """Known faces are the positives: at the threshold that accepts `tpr` of them (score <= t),
    the share of unknown faces accepted too (the usual FPR95 of out-of-distribution work)."""
    t = np.quantile(known, tpr)
    return float((unknown <= t).mean())


def rank_combine(scores: Sequence[np.ndarray], references: Sequence[np.ndarray]) -> np.ndarray:
    """Mean of each score's empirical CDF over its reference (known training faces): combines
    scores of different scales without looking at the faces being scored."""
    return np.mean([np.searchsorted(np.sort(r), s) / len(r) for s, r in zip(scores, references)], 0)


def calibrate(known_scores: np.ndarray) -> np.ndarray:
    """101 quantiles of a score on known-class val faces: maps a raw score to 0..1."""
    return np.quantile(known_scores, np.linspace(0, 1, 101)).astype(np.float32)


def to_unit(score: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Share of known val faces that look more familiar than this one (0 typical, 1 unlike any)."""
    return np.interp(score, quantiles, np.linspace(0, 1, len(quantiles))).astype(np.float32)
