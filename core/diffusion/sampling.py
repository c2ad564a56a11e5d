"""Samplers over any denoiser(x_t, t, cond): DDIM (with eta) and DPM-Solver++(2M), with
classifier-free guidance (a negative condition or the null condition as the unguided branch),
known-element inpainting (keep given frames/dimensions, regenerate the rest around them) and
SDEdit-style starts from an existing sample (edit strength).

Deterministic for a given seed / torch.Generator: all noise is drawn from it in a fixed order.
Both samplers work on x0 predictions internally, so epsilon-, v- and x0-prediction models are
interchangeable and guidance is applied to the raw model outputs (all three are affine in the
output at fixed x_t, so guiding any of them is the same).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .conditions import Cond, cat_cond, expand_cond, same_structure
from .schedule import NoiseSchedule, broadcast
from .training import Denoiser, check_prediction, q_sample, to_x0_eps

SAMPLERS = ("ddim", "dpm++2m")


class Cancelled(Exception):
    """Raised by a progress callback to stop sampling (the caller catches it)."""


@dataclass
class Guidance:
    """Classifier-free guidance: out = uncond + scale * (cond - uncond).

    uncond is the negative condition when given, else the null (dropped) condition. scale 1 is
    the plain conditional model, 0 the unguided one; > 1 follows the condition more closely.
    """
    scale: float = 1.0
    negative: Cond = None
    null_cond: Cond = None

    @property
    def unguided(self) -> Cond:
        return self.negative if self.negative is not None else self.null_cond


def _guided(denoiser: Denoiser, x: torch.Tensor, t: torch.Tensor, cond: Cond,
            guidance: Guidance | None) -> torch.Tensor:
    if guidance is None or guidance.scale == 1.0 or guidance.unguided is None:
        return denoiser(x, t, cond)
    n = x.shape[0]
    unc = expand_cond(guidance.unguided, n)
    if guidance.scale == 0.0:
        return denoiser(x, t, unc)
    if same_structure(cond, unc):  # one batched call is cheaper than two small ones
        out = denoiser(torch.cat([x, x]), torch.cat([t, t]), cat_cond(cond, unc))
        out_c, out_u = out[:n], out[n:]
    else:
        out_c, out_u = denoiser(x, t, cond), denoiser(x, t, unc)
    return out_u + guidance.scale * (out_c - out_u)


@dataclass
class Known:
    """Elements of the sample fixed in advance: `values` (the sample's shape) where `mask`
    (bool, broadcastable) is True. Sampling replaces the model's x0 estimate there by the known
    values, so the rest is generated consistently with them (e.g. frames around a join).

    resample: RePaint-style harmonisation (Lugmayr et al. 2022): each step is redone this many
    extra times after re-noising its result back to the step's noise level, so information
    from the known part reaches the rest while it is still malleable (costs (1 + resample) x
    the denoiser calls)."""
    values: torch.Tensor
    mask: torch.Tensor
    resample: int = 0


def sample(denoiser: Denoiser, schedule: NoiseSchedule, shape: tuple[int, ...], cond: Cond = None,
           *, sampler: str = "dpm++2m", steps: int = 20, eta: float = 0.0,
           prediction: str = "epsilon", guidance: float | Guidance = 1.0,
           negative: Cond = None, null_cond: Cond = None,
           generator: torch.Generator | None = None, seed: int | None = None,
           noise: torch.Tensor | None = None, known: Known | None = None,
           init: torch.Tensor | None = None, strength: float = 1.0,
           clip_x0: float | None = None, dtype: torch.dtype = torch.float32,
           callback: Callable[[int, int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Draw samples of `shape` (batch first) from the denoiser.

    cond: condition for every sample (batch 1 is repeated). guidance: a scale, or a Guidance;
    with a scale, `negative` (else `null_cond`) is the unguided branch. generator/seed: the
    noise source (seed makes a fresh generator). noise: the starting noise itself.
    init + strength: start from `init` noised to strength * T (0 keeps init, 1 ignores it).
    known: elements kept fixed (inpainting). clip_x0: clamp x0 estimates to [-c, c].
    callback(i, n, x0_estimate) after each step; raise Cancelled in it to stop.
    """
    check_prediction(prediction)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if not 0.0 <= float(strength) <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if isinstance(guidance, (int, float)):
        guidance = Guidance(float(guidance), negative, null_cond)
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
    n = shape[0]
    if cond is not None:
        cond = expand_cond(cond, n)

    ts = schedule.timesteps(steps)
    if init is not None:
        if float(strength) == 0.0:
            return init.to(dtype).clone()
        t_start = int(round(float(strength) * (schedule.num_steps - 1)))
        ts = [t for t in ts if t <= t_start] or [t_start]
    eps0 = noise.to(dtype) if noise is not None else torch.randn(shape, generator=generator, dtype=dtype)
    t0 = torch.full((n,), ts[0], dtype=torch.long)
    if init is not None:
        x = q_sample(schedule, init.to(dtype), t0, eps0)
    else:  # at T-1 alpha is ~0 but not 0: start from the exact marginal's scale
        x = broadcast(schedule.sigma(t0), eps0) * eps0
    if known is not None:
        kv = known.values.to(dtype)
        km = known.mask.to(torch.bool)
        x = torch.where(km, q_sample(schedule, kv, t0, eps0), x)

    def estimate(x_t: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        tt = torch.full((n,), t, dtype=torch.long)
        out = _guided(denoiser, x_t, tt, cond, guidance).to(dtype)
        x0, eps = to_x0_eps(schedule, prediction, x_t, tt, out)
        if clip_x0 is not None or known is not None:
            if clip_x0 is not None:
                x0 = x0.clamp(-clip_x0, clip_x0)
            if known is not None:
                x0 = torch.where(km, kv, x0)
            a, s = schedule.alpha(t).to(dtype), schedule.sigma(t).to(dtype)
            eps = (x_t - a * x0) / s  # keep (x0, eps) consistent with x_t
        return x0, eps

    step = _ddim if sampler == "ddim" else _dpmpp_2m
    repeats = 1 + (max(0, int(known.resample)) if known is not None else 0)
    x = step(estimate, schedule, ts, x, eta=eta, generator=generator, callback=callback,
             repeats=repeats)
    if known is not None:
        x = torch.where(km, kv, x)
    return x


def _renoise(schedule: NoiseSchedule, x: torch.Tensor, t_from: int, t_to: int,
             generator: torch.Generator) -> torch.Tensor:
    """Forward diffusion from step t_from to the noisier t_to: q(x_t_to | x_t_from)."""
    k = schedule.alpha(t_to) / schedule.alpha(t_from)
    extra = (schedule.sigma(t_to) ** 2 - k ** 2 * schedule.sigma(t_from) ** 2).clamp(min=0).sqrt()
    return k.to(x.dtype) * x + extra.to(x.dtype) * torch.randn(x.shape, generator=generator, dtype=x.dtype)


def _ddim(estimate, schedule: NoiseSchedule, ts: list[int], x: torch.Tensor, *, eta: float,
          generator: torch.Generator, callback, repeats: int = 1) -> torch.Tensor:
    """DDIM (Song et al. 2021): eta 0 is deterministic, eta 1 matches DDPM's variance."""
    for i, t in enumerate(ts):
        for rep in range(repeats if i + 1 < len(ts) else 1):
            if rep:
                x = _renoise(schedule, x, ts[i + 1], t, generator)
            x, x0 = _ddim_step(estimate, schedule, ts, i, x, eta, generator)
        if callback is not None:
            callback(i + 1, len(ts), x0)
    return x


def _ddim_step(estimate, schedule: NoiseSchedule, ts: list[int], i: int, x: torch.Tensor,
               eta: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    t = ts[i]
    x0, eps = estimate(x, t)
    if i + 1 == len(ts):
        x = x0
    else:
        t_prev = ts[i + 1]
        a, s = schedule.alpha(t), schedule.sigma(t)
        a_p, s_p = schedule.alpha(t_prev), schedule.sigma(t_prev)
        sig = eta * (s_p / s) * (1 - (a / a_p) ** 2).clamp(min=0).sqrt()
        dir_scale = (s_p ** 2 - sig ** 2).clamp(min=0).sqrt()
        x = a_p.to(x.dtype) * x0 + dir_scale.to(x.dtype) * eps
        if eta > 0:
            x = x + sig.to(x.dtype) * torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return x, x0


def _dpmpp_2m(estimate, schedule: NoiseSchedule, ts: list[int], x: torch.Tensor, *, eta: float,
              generator: torch.Generator, callback, repeats: int = 1) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022): second-order multistep in log-SNR on x0 estimates;
    the final jump to the clean sample is first order (its log-SNR step is infinite).
    eta is unused (the solver is deterministic). With resampling (Known.resample) the steps are
    first order (the multistep history belongs to another trajectory), i.e. DDIM."""
    x0_prev, h_prev = None, None
    for i, t in enumerate(ts):
        x_in = x
        for rep in range(repeats if i + 1 < len(ts) else 1):
            if rep:
                x_in = _renoise(schedule, x, ts[i + 1], t, generator)
            x0, _ = estimate(x_in, t)
            if i + 1 == len(ts):
                x = x0
                continue
            t_next = ts[i + 1]
            lam, lam_n = schedule.log_snr_half(t), schedule.log_snr_half(t_next)
            h = lam_n - lam
            d = x0
            if x0_prev is not None and repeats == 1:  # resampling breaks the multistep history
                r = h_prev / h
                d = (1 + 1 / (2 * r)).to(x.dtype) * x0 - (1 / (2 * r)).to(x.dtype) * x0_prev
            ratio = (schedule.sigma(t_next) / schedule.sigma(t)).to(x.dtype)
            x = ratio * x_in - (schedule.alpha(t_next) * torch.expm1(-h)).to(x.dtype) * d
        if i + 1 < len(ts):
            x0_prev, h_prev = x0, h
        if callback is not None:
            callback(i + 1, len(ts), x0)
    return x
