"""DDPM training helpers: forward noising, prediction targets, the denoising loss with
condition dropout (what classifier-free guidance needs at sampling time).

A model is any callable denoiser(x_t, t, cond) -> prediction, where t is a (B,) long tensor of
schedule steps and the prediction is epsilon, v or x_0 (`PREDICTIONS`).
"""
from __future__ import annotations

from typing import Callable

import torch

from .conditions import Cond, batch_size, where_cond
from .schedule import NoiseSchedule, broadcast

PREDICTIONS = ("epsilon", "v", "x0")
Denoiser = Callable[[torch.Tensor, torch.Tensor, Cond], torch.Tensor]


def check_prediction(prediction: str) -> str:
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    return prediction


def q_sample(schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor,
             noise: torch.Tensor) -> torch.Tensor:
    """x_t = alpha_t x_0 + sigma_t eps, per sample step t (B,)."""
    return broadcast(schedule.alpha(t), x0) * x0 + broadcast(schedule.sigma(t), x0) * noise


def target(schedule: NoiseSchedule, prediction: str, x0: torch.Tensor, t: torch.Tensor,
           noise: torch.Tensor) -> torch.Tensor:
    """What the network should output: eps, v = alpha eps - sigma x0 (Salimans & Ho), or x0."""
    check_prediction(prediction)
    if prediction == "epsilon":
        return noise
    if prediction == "x0":
        return x0
    return broadcast(schedule.alpha(t), x0) * noise - broadcast(schedule.sigma(t), x0) * x0


def to_x0_eps(schedule: NoiseSchedule, prediction: str, x_t: torch.Tensor, t: torch.Tensor,
              out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0, eps) implied by a network output of the given kind at (x_t, t)."""
    a, s = broadcast(schedule.alpha(t), x_t), broadcast(schedule.sigma(t), x_t)
    if prediction == "epsilon":
        return (x_t - s * out) / a, out
    if prediction == "x0":
        return out, (x_t - a * out) / s
    if prediction == "v":
        return a * x_t - s * out, s * x_t + a * out
    raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")


def sample_timesteps(schedule: NoiseSchedule, n: int,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    return torch.randint(0, schedule.num_steps, (n,), generator=generator)


def drop_condition(cond: Cond, null_cond: Cond, p: float, n: int,
                   generator: torch.Generator | None = None) -> Cond:
    """Replace each sample's condition by null_cond with probability p (classifier-free
    guidance training: one network learns both the conditional and unconditional model)."""
    if p <= 0 or cond is None:
        return cond
    keep = torch.rand(n, generator=generator) >= p
    return where_cond(keep, cond, null_cond)


def diffusion_loss(model: Denoiser, schedule: NoiseSchedule, x0: torch.Tensor,
                   cond: Cond = None, *, prediction: str = "epsilon", null_cond: Cond = None,
                   cond_drop: float = 0.0, weight: torch.Tensor | None = None,
                   generator: torch.Generator | None = None,
                   min_snr_gamma: float | None = None) -> torch.Tensor:
    """Mean squared error of the model's prediction at a random step (DDPM's simple loss).

    cond_drop: probability of training a sample with null_cond instead of its condition.
    weight: optional per-element weight broadcastable to x0 (e.g. masked dimensions).
    min_snr_gamma: Min-SNR weighting (Hang et al. 2023), expressed for the chosen target.
    """
    check_prediction(prediction)
    n = x0.shape[0]
    if cond is not None and batch_size(cond) not in (None, n):
        raise ValueError(f"condition batch {batch_size(cond)} does not match x0 batch {n}")
    if cond_drop > 0 and null_cond is None:
        raise ValueError("cond_drop needs a null_cond to drop to")
    t = sample_timesteps(schedule, n, generator)
    noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
    x_t = q_sample(schedule, x0, t, noise)
    c = drop_condition(cond, null_cond, cond_drop, n, generator)
    err = (model(x_t, t, c) - target(schedule, prediction, x0, t, noise)) ** 2
    if weight is not None:
        err = err * weight
    per_sample = err.reshape(n, -1).mean(1)
    if min_snr_gamma is not None:
        snr = (schedule.alpha(t) / schedule.sigma(t)) ** 2
        w = torch.minimum(snr, torch.full_like(snr, min_snr_gamma))
        w = w / {"epsilon": snr, "v": snr + 1, "x0": torch.ones_like(snr)}[prediction]
        per_sample = per_sample * w.to(per_sample.dtype)
    return per_sample.mean()
