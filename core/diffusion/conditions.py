"""Conditions as nested structures: a tensor, a dict/list/tuple of them, or None.

The diffusion code never looks inside a condition; it only needs to pick per-sample entries
(condition dropout), stack two conditions into one batch (guidance in one denoiser call) and
repeat a single condition over a batch. Non-tensor leaves (strings, numbers) are carried as is.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

Cond = Any


def map_cond(fn: Callable[..., Any], *conds: Cond) -> Cond:
    """Apply fn leaf-wise to tensors of structurally equal conditions; other leaves from the
    first condition are kept."""
    first = conds[0]
    if isinstance(first, torch.Tensor):
        return fn(*conds)
    if isinstance(first, dict):
        return {k: map_cond(fn, *(c[k] for c in conds)) for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(map_cond(fn, *items) for items in zip(*conds))
    return first


def batch_size(cond: Cond) -> int | None:
    """Leading dimension of the first tensor leaf (None when the condition has no tensor)."""
    if isinstance(cond, torch.Tensor):
        return int(cond.shape[0]) if cond.ndim else None
    if isinstance(cond, dict):
        cond = list(cond.values())
    if isinstance(cond, (list, tuple)):
        for c in cond:
            n = batch_size(c)
            if n is not None:
                return n
    return None


def expand_cond(cond: Cond, n: int) -> Cond:
    """Repeat a batch-1 condition to n samples (a batch-n condition is returned as is)."""
    def fn(t: torch.Tensor) -> torch.Tensor:
        if t.ndim and t.shape[0] == n:
            return t
        if t.ndim and t.shape[0] == 1:
            return t.expand(n, *t.shape[1:])
        raise ValueError(f"condition batch {tuple(t.shape)} does not match {n} samples")
    return map_cond(fn, cond)


def where_cond(keep: torch.Tensor, cond: Cond, null: Cond) -> Cond:
    """Per sample: cond where keep[i] else null (null may be batch 1)."""
    def fn(c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        k = keep.reshape(-1, *([1] * (c.ndim - 1)))
        return torch.where(k, c, z.to(c.dtype).expand_as(c))
    return map_cond(fn, cond, null)


def cat_cond(a: Cond, b: Cond) -> Cond:
    """Stack two conditions along the batch (for one guided denoiser call)."""
    return map_cond(lambda x, y: torch.cat([x, y], 0), a, b)


def same_structure(a: Cond, b: Cond) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape[1:] == b.shape[1:] and a.dtype == b.dtype
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_structure(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return (isinstance(b, type(a)) and len(a) == len(b)
                and all(same_structure(x, y) for x, y in zip(a, b)))
    return a is None and b is None or (not isinstance(b, (torch.Tensor, dict, list, tuple)) and a == b)
