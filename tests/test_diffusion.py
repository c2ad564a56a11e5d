"""core.diffusion against analytic denoisers: a 2-D Gaussian mixture has an exact posterior
mean E[x0 | x_t], so the samplers' output distribution can be checked without training."""
from __future__ import annotations

import math

import pytest
import torch

from core.diffusion import (Cancelled, Known, cosine_schedule, diffusion_loss, drop_condition,
                            linear_schedule, make_schedule, q_sample, sample, target, to_x0_eps)

MU = torch.tensor([[-2.0, -1.0], [2.0, 1.5], [0.5, 3.0]], dtype=torch.float64)
STD = torch.tensor([0.3, 0.5, 0.4], dtype=torch.float64)
W = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)


def gmm_x0(sched, x_t: torch.Tensor, t: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Exact E[x0 | x_t] for the mixture with per-sample component weights (B, K)."""
    x = x_t.double()
    a = sched.alpha(t)[:, None, None]
    s2 = sched.sigma(t)[:, None, None] ** 2
    var = a ** 2 * STD[None, :, None] ** 2 + s2                            # (B, K, 1)
    diff = x[:, None, :] - a * MU[None]                                    # (B, K, 2)
    logr = (torch.log(weights.double().clamp_min(1e-300)) - (diff ** 2 / var).sum(-1) / 2
            - torch.log(var[..., 0]))                                      # 2-D: d/2 log var
    r = torch.softmax(logr, 1)[..., None]
    post = MU[None] + a * STD[None, :, None] ** 2 / var * diff
    return (r * post).sum(1)


def make_denoiser(sched, prediction: str = "epsilon"):
    def denoiser(x_t, t, cond):
        weights = W[None].expand(len(x_t), -1) if cond is None else cond
        x0 = gmm_x0(sched, x_t, t, weights)
        a, s = sched.alpha(t)[:, None], sched.sigma(t)[:, None]
        eps = (x_t.double() - a * x0) / s
        out = {"epsilon": eps, "x0": x0, "v": a * eps - s * x0}[prediction]
        return out.to(x_t.dtype)
    return denoiser


def mode_of(x: torch.Tensor) -> torch.Tensor:
    return torch.cdist(x.double(), MU).argmin(1)


def check_mixture(x: torch.Tensor, weights=W, tol_w: float = 0.03) -> None:
    m = mode_of(x)
    frac = torch.bincount(m, minlength=3).double() / len(x)
    assert torch.allclose(frac, weights, atol=tol_w), frac
    for k in range(3):
        if weights[k] < 0.05:
            continue
        xs = x[m == k].double()
        assert torch.allclose(xs.mean(0), MU[k], atol=0.08), (k, xs.mean(0))
        std = xs.std(0)
        assert ((std / STD[k]) - 1).abs().max() < 0.15, (k, std)


def test_schedules_are_valid():
    for sched in (cosine_schedule(1000), linear_schedule(1000), make_schedule("cosine", 50)):
        t = torch.arange(sched.num_steps)
        assert torch.allclose(sched.alpha(t) ** 2 + sched.sigma(t) ** 2, torch.ones(len(t), dtype=torch.float64))
        assert (sched.alpha(t)[1:] < sched.alpha(t)[:-1]).all()
        assert sched.alpha(0) > 0.99 and sched.alpha(sched.num_steps - 1) < 0.1
        lam = sched.log_snr_half(t)
        assert (lam[1:] < lam[:-1]).all()
    ts = cosine_schedule(1000).timesteps(10)
    assert ts[0] == 999 and ts[-1] == 99 and len(set(ts)) == 10
    assert cosine_schedule(10).timesteps(10) == list(range(9, -1, -1))
    with pytest.raises(ValueError):
        make_schedule("quadratic")
    with pytest.raises(ValueError):
        cosine_schedule(100).timesteps(0)


def test_targets_round_trip():
    sched = cosine_schedule(1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(64, 5, generator=g, dtype=torch.float64)
    eps = torch.randn(64, 5, generator=g, dtype=torch.float64)
    t = torch.randint(0, 1000, (64,), generator=g)
    x_t = q_sample(sched, x0, t, eps)
    for kind in ("epsilon", "v", "x0"):
        x0_hat, eps_hat = to_x0_eps(sched, kind, x_t, t, target(sched, kind, x0, t, eps))
        assert torch.allclose(x0_hat, x0, atol=1e-6) and torch.allclose(eps_hat, eps, atol=1e-6)


@pytest.mark.parametrize("sampler,steps,eta", [("dpm++2m", 25, 0.0), ("ddim", 50, 0.0), ("ddim", 200, 1.0)])
def test_samplers_reach_the_mixture(sampler, steps, eta):
    sched = cosine_schedule(1000)
    x = sample(make_denoiser(sched), sched, (4000, 2), sampler=sampler, steps=steps, eta=eta,
               seed=3, dtype=torch.float64)
    check_mixture(x)


def test_linear_schedule_and_prediction_kinds_agree():
    sched = linear_schedule(1000)
    outs = [sample(make_denoiser(sched, kind), sched, (500, 2), prediction=kind, steps=20, seed=5,
                   dtype=torch.float64) for kind in ("epsilon", "v", "x0")]
    assert torch.allclose(outs[0], outs[1], atol=1e-6) and torch.allclose(outs[0], outs[2], atol=1e-6)
    check_mixture(sample(make_denoiser(sched, "v"), sched, (4000, 2), prediction="v", steps=25,
                         seed=6, dtype=torch.float64))


def test_deterministic_given_seed_or_noise():
    sched = cosine_schedule(1000)
    den = make_denoiser(sched)
    for sampler in ("ddim", "dpm++2m"):
        a = sample(den, sched, (64, 2), sampler=sampler, steps=10, seed=11)
        b = sample(den, sched, (64, 2), sampler=sampler, steps=10, generator=torch.Generator().manual_seed(11))
        c = sample(den, sched, (64, 2), sampler=sampler, steps=10, seed=12)
        assert torch.equal(a, b) and not torch.allclose(a, c)
    # eta = 0 is a deterministic map of the starting noise: the generator no longer matters
    noise = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    a = sample(den, sched, (64, 2), sampler="ddim", steps=10, noise=noise, seed=1)
    b = sample(den, sched, (64, 2), sampler="ddim", steps=10, noise=noise, seed=2)
    assert torch.equal(a, b)
    a = sample(den, sched, (64, 2), sampler="ddim", steps=10, eta=1.0, noise=noise, seed=1)
    b = sample(den, sched, (64, 2), sampler="ddim", steps=10, eta=1.0, noise=noise, seed=2)
    assert not torch.allclose(a, b)


def onehot(k: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor([k]), 3).double()


def test_conditions_and_guidance_move_samples():
    sched = cosine_schedule(1000)
    den = make_denoiser(sched)
    null = W[None]
    frac0 = {}
    for scale in (0.0, 1.0, 3.0):
        x = sample(den, sched, (2000, 2), onehot(0) * 0.5 + onehot(1) * 0.5, guidance=scale,
                   negative=onehot(1), seed=2, dtype=torch.float64)
        frac0[scale] = (mode_of(x) == 0).double().mean().item()
    # scale 0 samples the negative condition, 1 the condition (half/half), > 1 pushes away from
    # the negative: mode 0 takes over
    assert frac0[0.0] < 0.02 and abs(frac0[1.0] - 0.5) < 0.05 and frac0[3.0] > 0.9, frac0
    # the null condition as the unguided branch: scale 1 gives the conditional distribution
    x = sample(den, sched, (2000, 2), onehot(2), guidance=1.0, null_cond=null, seed=4, dtype=torch.float64)
    check_mixture(x, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    # guidance > 1 against the null condition pushes samples away from the other modes
    x3 = sample(den, sched, (2000, 2), onehot(2), guidance=3.0, null_cond=null, seed=4, dtype=torch.float64)
    assert (mode_of(x3) == 2).all()
    centre = (W[:, None] * MU).sum(0)
    assert (x3.mean(0) - centre).norm() > (x.mean(0) - centre).norm() + 0.1
    # dict conditions (separate calls when structures differ)
    def dict_den(x_t, t, cond):
        return den(x_t, t, cond["w"])
    xd = sample(dict_den, sched, (500, 2), {"w": onehot(0)}, guidance=2.0, negative={"w": onehot(1)},
                seed=4, dtype=torch.float64)
    assert (mode_of(xd) == 0).double().mean() > 0.98


@pytest.mark.parametrize("sampler", ["ddim", "dpm++2m"])
def test_known_elements_inpaint(sampler):
    """Frames-around-a-join analogue: the first coordinate is known, the second is generated
    consistently with it (x[0] = 2 -> the mode at (2, 1.5); x[0] = -2 -> (-2, -1)); RePaint
    resampling makes the rest agree more often."""
    sched = cosine_schedule(1000)
    den = make_denoiser(sched)
    vals = torch.zeros(400, 2, dtype=torch.float64)
    vals[:200, 0], vals[200:, 0] = 2.0, -2.0
    mask = torch.tensor([True, False])
    right = {}
    for resample in (0, 10):
        x = sample(den, sched, (400, 2), known=Known(vals, mask, resample), sampler=sampler,
                   steps=30, seed=8, dtype=torch.float64)
        assert torch.equal(x[:, 0], vals[:, 0])
        right[resample] = ((mode_of(x[:200]) == 1).double().mean().item(),
                           (mode_of(x[200:]) == 0).double().mean().item())
    assert min(right[0]) > 0.75 and min(right[10]) > 0.95, right
    assert right[10][1] > right[0][1] + 0.1, right


def test_edit_strength_starts_from_init():
    sched = cosine_schedule(1000)
    den = make_denoiser(sched)
    init = MU[[0] * 200].clone() + 0.1
    same = sample(den, sched, (200, 2), init=init, strength=0.0, seed=1, dtype=torch.float64)
    assert torch.equal(same, init)
    near = sample(den, sched, (200, 2), init=init, strength=0.3, steps=20, seed=1, dtype=torch.float64)
    far = sample(den, sched, (200, 2), init=init, strength=1.0, steps=20, seed=1, dtype=torch.float64)
    d_near = (near - init).norm(dim=1).mean()
    d_far = (far - init).norm(dim=1).mean()
    assert (mode_of(near) == 0).all() and d_near < 0.5 < d_far


def test_callback_progress_and_cancel():
    sched = cosine_schedule(1000)
    seen = []
    sample(make_denoiser(sched), sched, (8, 2), steps=7, callback=lambda i, n, x0: seen.append((i, n)))
    assert seen == [(i, 7) for i in range(1, 8)]

    def stop(i, n, x0):
        if i == 3:
            raise Cancelled
    with pytest.raises(Cancelled):
        sample(make_denoiser(sched), sched, (8, 2), steps=7, callback=stop)


def test_condition_dropout():
    cond = {"emb": torch.ones(1000, 4), "mask": torch.ones(1000, 3, dtype=torch.bool)}
    null = {"emb": torch.zeros(1, 4), "mask": torch.zeros(1, 3, dtype=torch.bool)}
    g = torch.Generator().manual_seed(0)
    out = drop_condition(cond, null, 0.25, 1000, g)
    dropped = out["emb"].sum(1) == 0
    assert torch.equal(dropped, ~out["mask"].any(1))
    assert abs(dropped.double().mean().item() - 0.25) < 0.05
    assert drop_condition(cond, null, 0.0, 1000, g) is cond


def test_training_a_small_conditional_model():
    """A few hundred steps of the loss (v-prediction, condition dropout) give a model whose
    guided samples land in the requested mode: the helpers train what the samplers expect."""
    torch.manual_seed(0)
    sched = cosine_schedule(100)
    g = torch.Generator().manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.f = torch.nn.Sequential(torch.nn.Linear(2 + 3 + 2, 64), torch.nn.SiLU(),
                                         torch.nn.Linear(64, 64), torch.nn.SiLU(), torch.nn.Linear(64, 2))

        def forward(self, x, t, cond):
            ang = t.float()[:, None] / 100 * math.pi / 2
            return self.f(torch.cat([x, cond, ang.sin(), ang.cos()], 1))

    net = Net()
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    null = torch.zeros(1, 3)
    losses = []
    for it in range(600):
        k = torch.multinomial(W.float(), 256, replacement=True, generator=g)
        x0 = (MU[k] + STD[k, None] * torch.randn(256, 2, generator=g, dtype=torch.float64)).float()
        cond = torch.nn.functional.one_hot(k, 3).float()
        loss = diffusion_loss(net, sched, x0, cond, prediction="v", null_cond=null, cond_drop=0.2, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-50:]) < 0.6 * sum(losses[:50])
    with torch.no_grad():
        for k in range(3):
            x = sample(net, sched, (200, 2), torch.nn.functional.one_hot(torch.tensor([k]), 3).float(),
                       prediction="v", guidance=2.0, null_cond=null, steps=20, seed=k)
            assert (mode_of(x) == k).double().mean() > 0.9, k
