"""The one diffusion toolkit of Likeness, shared by text-to-avatar generation (core.generate)
and the listener (core.listener): noise schedules, DDPM training helpers and samplers (DDIM,
DPM-Solver++(2M)) with classifier-free guidance, known-element inpainting and edit strength.

Model-agnostic: a model is any callable denoiser(x_t, t, cond) -> prediction (epsilon, v or x0),
t a (B,) long tensor of schedule steps, cond any tensor / dict / list of tensors (or None).

    sched = make_schedule("cosine", 1000)
    loss = diffusion_loss(net, sched, x0, cond, prediction="v", null_cond=null, cond_drop=0.1)
    x = sample(net, sched, (8, D), cond, steps=20, guidance=3.0, negative=neg_cond, seed=1)
"""
from .conditions import cat_cond, expand_cond, map_cond, where_cond
from .sampling import SAMPLERS, Cancelled, Guidance, Known, sample
from .schedule import SCHEDULES, NoiseSchedule, cosine_schedule, linear_schedule, make_schedule
from .training import (PREDICTIONS, diffusion_loss, drop_condition, q_sample, sample_timesteps,
                       target, to_x0_eps)

__all__ = ["SAMPLERS", "SCHEDULES", "PREDICTIONS", "Cancelled", "Guidance", "Known",
           "NoiseSchedule", "cat_cond", "cosine_schedule", "diffusion_loss", "drop_condition",
           "expand_cond", "linear_schedule", "make_schedule", "map_cond", "q_sample", "sample",
           "sample_timesteps", "target", "to_x0_eps", "where_cond"]
