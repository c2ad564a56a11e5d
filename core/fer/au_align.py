"""Aligning a classifier's attention with the action units (after Belharbi et al., FG 2024).

Training adds lambda * (1 - cos(A, H)) to the cross-entropy, with A the channel mean of the last
conv block's map (6x6 for FerNet) and H the true class's AU heatmap (core.fer.au) pooled to the
same size; faces without landmarks and neutral faces (no AUs) add no term. CAM-COS measures the
result: the cosine between each face's Grad-CAM for its true class and its AU map, averaged per
class and then over the classes that have AUs.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .au import expression_heatmap
from .model import FER_CLASSES, FerNet, normalize


def au_maps(lm68: np.ndarray, labels: np.ndarray, found: np.ndarray, size: int = 48) -> np.ndarray:
    """(N, size, size) uint8 AU maps (0..255) of each face's own class from its (N, 68, 2)
    landmarks in crop pixels; zeros where no face was found or for neutral."""
    out = np.zeros((len(labels), size, size), np.uint8)
    for i in np.flatnonzero(found):
        name = FER_CLASSES[int(labels[i])]
        if name != "neutral":
            try:
                out[i] = np.round(255 * expression_heatmap(lm68[i], name, (size, size))).astype(np.uint8)
            except ValueError:           # degenerate landmarks: no map
                pass
    return out


def attention(model: FerNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and the channel-mean map of the last conv block, (B, h, w)."""
    a = model.features(x)
    logits = model.head(model.drop(model.pool(a).flatten(1)))
    return logits, a.mean(1)


def alignment_loss(att: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cos(A, H) over the faces whose map is not empty; `maps` (B, 48, 48) float
    0..1 are pooled to the attention's size."""
    h = F.adaptive_avg_pool2d(maps[:, None], att.shape[-2:])[:, 0].flatten(1)
    a = att.flatten(1)
    has = h.sum(1) > 0
    if not has.any():
        return att.sum() * 0.0
    cos = F.cosine_similarity(a[has], h[has], dim=1, eps=1e-8)
    return (1.0 - cos).mean()


def batch_gradcam(model: FerNet, images: np.ndarray, classes: np.ndarray, bs: int = 256) -> np.ndarray:
    """(N, 48, 48) Grad-CAM of `classes` (one per face) for uint8 (N, 48, 48) faces."""
    model.eval()
    out = []
    for i in range(0, len(images), bs):
        x = normalize(torch.from_numpy(np.ascontiguousarray(images[i:i + bs])))
        k = torch.as_tensor(classes[i:i + bs], dtype=torch.long)
        with torch.enable_grad():
            a = model.features(x)
            logits = model.head(model.pool(a).flatten(1))
            # each face's logit depends only on its own input: one backward gives every gradient
            g, = torch.autograd.grad(logits.gather(1, k[:, None]).sum(), a)
        cam = torch.relu((g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True)).detach()
        out.append(F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0])
    return torch.cat(out).numpy()


def cam_cos_per_class(models: FerNet | Sequence[FerNet], images: np.ndarray, labels: np.ndarray,
                      maps: np.ndarray) -> dict[str, float]:
    """CAM-COS per class (faces with a non-empty map only) and their mean ('mean'); an ensemble's
    Grad-CAM is the mean of its members' (as the app shows it)."""
    models = [models] if isinstance(models, FerNet) else list(models)
    keep = maps.reshape(len(maps), -1).max(1) > 0
    cams = sum(batch_gradcam(m, images[keep], labels[keep]) for m in models) / len(models)
    h = maps[keep].reshape(keep.sum(), -1).astype(np.float64)
    c = cams.reshape(len(cams), -1).astype(np.float64)
    cos = (c * h).sum(1) / (np.linalg.norm(c, axis=1) * np.linalg.norm(h, axis=1) + 1e-12)
    out = {FER_CLASSES[k]: float(cos[labels[keep] == k].mean()) for k in np.unique(labels[keep])}
    out["mean"] = float(np.mean(list(out.values())))
    return out
