"""Discrete noise schedules: x_t = alpha_t * x_0 + sigma_t * eps, alpha_t^2 + sigma_t^2 = 1.

A schedule is T discrete steps t = 0..T-1 (t = 0 is the least noisy). Samplers and training
only need `alpha(t)`, `sigma(t)` and `lambda(t)` = log(alpha / sigma) (half log-SNR), so any
model trained on one schedule can be sampled by every sampler in `sampling.py`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SCHEDULES = ("cosine", "linear")


@dataclass(frozen=True)
class NoiseSchedule:
    """alphas_cumprod (T,) float64 tensor, decreasing from ~1 to ~0."""
    alphas_cumprod: torch.Tensor
    kind: str = "custom"

    def __post_init__(self) -> None:
        a = self.alphas_cumprod
        if a.ndim != 1 or len(a) < 2:
            raise ValueError("alphas_cumprod must be a 1-D tensor of at least 2 steps")
        if not bool(((a > 0) & (a < 1)).all()) or not bool((a[1:] <= a[:-1]).all()):
            raise ValueError("alphas_cumprod must decrease inside (0, 1)")

    @property
    def num_steps(self) -> int:
        return int(self.alphas_cumprod.shape[0])

    def _at(self, t: torch.Tensor | int) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.long)
        return self.alphas_cumprod[t.clamp(0, self.num_steps - 1)]

    def alpha(self, t: torch.Tensor | int) -> torch.Tensor:
        """Signal scale sqrt(alpha_bar_t), float64."""
        return self._at(t).sqrt()

    def sigma(self, t: torch.Tensor | int) -> torch.Tensor:
        """Noise scale sqrt(1 - alpha_bar_t), float64."""
        return (1.0 - self._at(t)).sqrt()

    def log_snr_half(self, t: torch.Tensor | int) -> torch.Tensor:
        """lambda_t = log(alpha_t / sigma_t), the variable DPM-Solver steps in."""
        a = self._at(t)
        return 0.5 * (a.log() - (1.0 - a).log())

    def timesteps(self, steps: int) -> list[int]:
        """`steps` descending model-evaluation steps, "trailing" spacing (Lin et al. 2024): the
        first is T-1 (pure noise), the gaps are equal and the sampler's last jump goes from the
        smallest one to the clean sample, so no evaluation is spent on an almost clean input."""
        steps = int(steps)
        if not 1 <= steps <= self.num_steps:
            raise ValueError(f"steps must be in [1, {self.num_steps}], got {steps}")
        T = self.num_steps
        return [int(round(T - i * T / steps)) - 1 for i in range(steps)]

def cosine_schedule(num_steps: int = 1000, offset: float = 0.008,
                    max_beta: float = 0.999) -> NoiseSchedule:
    """Nichol & Dhariwal's cosine schedule: alpha_bar(t) = cos^2(pi/2 (t/T + s)/(1 + s)),
    betas clipped at max_beta so the last step stays finite."""
    T = int(num_steps)
    f = lambda u: math.cos((u / T + offset) / (1 + offset) * math.pi / 2) ** 2  # noqa: E731
    betas = [min(1.0 - f(i + 1) / f(i), max_beta) for i in range(T)]
    return NoiseSchedule(torch.cumprod(1.0 - torch.tensor(betas, dtype=torch.float64), 0), "cosine")


def linear_schedule(num_steps: int = 1000, beta_start: float = 1e-4,
                    beta_end: float = 0.02) -> NoiseSchedule:
    """Ho et al.'s linear betas; the endpoints are given for T = 1000 and rescaled for other T
    so the total noise added stays the same."""
    T = int(num_steps)
    scale = 1000.0 / T
    betas = torch.linspace(beta_start * scale, min(beta_end * scale, 0.999), T, dtype=torch.float64)
    return NoiseSchedule(torch.cumprod(1.0 - betas, 0), "linear")


def make_schedule(kind: str = "cosine", num_steps: int = 1000) -> NoiseSchedule:
    if kind == "cosine":
        return cosine_schedule(num_steps)
    if kind == "linear":
        return linear_schedule(num_steps)
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {kind!r}")


def broadcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-sample (B,) values shaped to multiply a (B, ...) tensor, in its dtype."""
    return v.to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))
