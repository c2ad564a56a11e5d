"""Transductive open-set scoring of a whole pool of faces (a video, a folder), after Zhang et al.
2024, "Open-Set Facial Expression Recognition" (AAAI).

The closed-set classifier pseudo-labels every face of the pool. Faces of an expression it was
never trained on get labels that are wrong, i.e. noisy labels, so open-set recognition becomes
noisy-label detection: a copy of the network is trained on the pool with its pseudo-labels while
a flip attention-consistency term keeps it from memorising them (the class activation map of a
face and the mirrored map of its mirror image must agree). Faces whose pseudo-label stays hard to
fit score high. Their score is the per-face loss (cross-entropy to the pseudo-label plus the
consistency term), averaged over the training epochs.

Unlike the inductive scores in `core.fer.openset`, a face's score depends on the rest of the pool
(it is trained on): use it to analyse a collection, not one face at a time. Cost: `epochs` passes
over the pool with the mirror, about 3x the forward cost of the network per face per epoch.
"""
from __future__ import annotations

import copy
import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .model import FerNet, ensemble_forward, normalize


def _jitter(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Small random rotation, scale and shift plus contrast (no mirror: the mirror is the other view)."""
    n = len(x)
    u = lambda *s: torch.rand(*s, generator=gen)  # noqa: E731
    ang, scale = (u(n) - 0.5) * 2 * math.radians(10), 1 + (u(n) - 0.5) * 0.2
    tx, ty = (u(n) - 0.5) * 0.16, (u(n) - 0.5) * 0.16
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    x = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False),
                      padding_mode="border", align_corners=False)
    return x * (1 + (u(n, 1, 1, 1) - 0.5) * 0.3)


def _cams(model: FerNet, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits of a face and of its mirror, and the 'flip attention' inconsistency per face:
    1 - cosine(CAM of the face, mirrored CAM of the mirror) for the pseudo-label's class."""
    n = len(x)
    fm = model.features(torch.cat([x, x.flip(-1)]))
    logits = model.head(model.drop(model.pool(fm).flatten(1)))
    w = model.head.weight[labels]
    cam = torch.einsum("nc,nchw->nhw", w, fm[:n]).flatten(1)
    cam_m = torch.einsum("nc,nchw->nhw", w, fm[n:]).flip(-1).flatten(1)
    return logits[:n], logits[n:], 1 - F.cosine_similarity(cam, cam_m, dim=1)


@torch.no_grad()
def pseudo_labels(models: Sequence[FerNet], images: torch.Tensor, flip: bool = True) -> torch.Tensor:
    out = [ensemble_forward(models, normalize(images[i:i + 512]), flip)[0].argmax(1)
           for i in range(0, len(images), 512)]
    return torch.cat(out)


def transductive_scores(models: FerNet | Sequence[FerNet], images: np.ndarray | torch.Tensor, epochs: int = 6,
                        lam: float = 1.0, lr: float = 1e-3, batch: int = 64, seed: int = 0,
                        reset_head: bool = True, fresh: bool = False) -> dict[str, np.ndarray]:
    """Open-set scores of every face of a pool (N,48,48 uint8), higher = more likely an expression
    the classifier was not trained on. Returns `score`, the `pseudo` labels, and the per-face
    `ce` and `consistency` parts (each averaged over the epochs). Each ensemble member is
    fine-tuned separately on copies; their scores are averaged. The given models are unchanged.

    `reset_head`: the copy's linear head starts from fresh weights, so the pseudo-labels must be
    re-learnt from the pool rather than read off the classifier that produced them. `fresh`: every
    weight starts fresh (the noisy-label view in full: faces whose pseudo-label disagrees with what
    the rest of the pool teaches are learnt last)."""
    members = [models] if isinstance(models, FerNet) else list(models)
    x_all = torch.as_tensor(np.asarray(images))
    if x_all.ndim != 3 or len(x_all) < 2:
        raise ValueError(f"transductive scoring needs a pool of at least 2 faces (N,48,48), got {tuple(x_all.shape)}")
    labels = pseudo_labels(members, x_all)
    x_all = normalize(x_all)
    n = len(x_all)
    ce_sum, cons_sum, seen = torch.zeros(n), torch.zeros(n), torch.zeros(n)
    for mi, base in enumerate(members):
        gen = torch.Generator().manual_seed(seed * 101 + mi)
        torch.manual_seed(seed * 101 + mi)
        net = copy.deepcopy(base).train()
        if fresh:
            for mod in net.modules():
                if hasattr(mod, "reset_parameters"):
                    mod.reset_parameters()
        elif reset_head:
            net.head.reset_parameters()
        opt = torch.optim.AdamW([{"params": net.features.parameters(), "lr": lr},
                                 {"params": net.head.parameters(), "lr": lr * 10}], weight_decay=0.01)
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen)
            for i in range(0, n, batch):
                idx = perm[i:i + batch]
                if len(idx) < 2:  # BatchNorm needs two faces
                    continue
                xb, yb = _jitter(x_all[idx], gen), labels[idx]
                lo, lo_m, incons = _cams(net, xb, yb)
                ce = (F.cross_entropy(lo, yb, reduction="none") + F.cross_entropy(lo_m, yb, reduction="none")) / 2
                loss = (ce + lam * incons).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                ce_sum[idx] += ce.detach()
                cons_sum[idx] += incons.detach()
                seen[idx] += 1
    k = seen.clamp(min=1)
    ce_m, cons_m = (ce_sum / k).numpy().astype(np.float64), (cons_sum / k).numpy().astype(np.float64)
    return {"score": ce_m + lam * cons_m, "ce": ce_m, "consistency": cons_m, "pseudo": labels.numpy()}
