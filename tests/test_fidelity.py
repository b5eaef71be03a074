"""The documented departures from the paper and choices where it is silent (docs/architecture.md), tested.

* Learning rates: one split everywhere: SD2.1-initialised spatial layers (AppearNet's included) at 2e-6,
  temporal/SPADE/injection layers at 2e-5; the by-name fallback agrees with ``parameter_groups``.
* Sampling spacing: ``legacy_ddpm`` is the paper's EulerEDM spacing (999, 979, ..., 19); ``normal`` is not.
* GroupNorm per frame: with zero temporal layers, a frame's output does not depend on the other frames.
* SPADE after SD2.1's affine GroupNorm: zero-initialised SPADE is the identity.
* The prior-corrected Euler ancestral sampler feels gamma more strongly than Euler (tooltip and docs).
"""
from __future__ import annotations

import pytest
import torch

from microcinema_core.config import MicroCinemaConfig
from microcinema_core.diffusion.noise_prior import start_latent
from microcinema_core.diffusion.sampler import sample_euler, sample_euler_ancestral
from microcinema_core.diffusion.schedule import SCHEDULERS, DiscreteSchedule
from microcinema_core.models.microcinema import MicroCinemaModel, is_new_layer
from microcinema_core.training import optim
from microcinema_core.training.train_config import TrainConfig

SMALL = dict(channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,))


def test_learning_rate_groups_agree_and_appearnet_spatial_layers_are_pretrained():
    torch.manual_seed(0)
    model = MicroCinemaModel(MicroCinemaConfig.tiny("base", **SMALL))
    names = {id(p): n for n, p in model.named_parameters()}
    groups = model.parameter_groups()
    new, spatial = optim.split_parameters(model)
    assert {id(p) for p in new} == {id(p) for p in groups["new"]}
    # the by-name fallback (models without parameter_groups, e.g. wrapped ones) gives the same split
    assert {n for n in names.values() if optim.is_new_layer(n)} == {n for n in names.values() if is_new_layer(n)}
    appearnet_spatial = [n for n in names.values() if n.startswith("appearnet.") and not is_new_layer(n)]
    appearnet_temporal = [n for n in names.values() if n.startswith("appearnet.") and is_new_layer(n)]
    assert appearnet_spatial and appearnet_temporal
    spatial_names = {names[id(p)] for p in spatial}
    assert set(appearnet_spatial) <= spatial_names and not set(appearnet_temporal) & spatial_names

    opt = optim.build_optimizer(model, TrainConfig(preset="tiny", lr=2e-5, spatial_lr_scale=0.1))
    rate = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    (slow,) = {rate[id(p)] for n, p in model.named_parameters() if n in appearnet_spatial}
    assert slow == pytest.approx(2e-6)
    assert {rate[id(p)] for n, p in model.named_parameters() if n in appearnet_temporal} == {2e-5}
    # trained from scratch: one rate for every parameter
    scratch = optim.build_optimizer(model, TrainConfig(preset="tiny", lr=1e-3, spatial_lr_scale=1.0))
    assert {g["lr"] for g in scratch.param_groups} == {1e-3}


def test_legacy_ddpm_is_the_papers_eulerEDM_spacing_and_normal_is_not():
    schedule = DiscreteSchedule()
    assert "legacy_ddpm" in SCHEDULERS
    sigmas = schedule.sigmas_for(50, "legacy_ddpm")
    assert len(sigmas) == 51 and float(sigmas[-1]) == 0.0
    timesteps = schedule.timestep(sigmas[:-1]).long().tolist()
    assert timesteps == list(range(999, 0, -20))  # 999, 979, ..., 19
    assert torch.equal(sigmas[:-1], schedule.sigmas[torch.tensor(timesteps)])  # table values, no interpolation
    normal = schedule.sigmas_for(50, "normal")
    assert schedule.timestep(normal[-2:-1]).item() == 0.0  # "normal" runs down to t = 0: not the paper's
    assert float(normal[-2]) < 0.5 * float(sigmas[-2])
    # ComfyUI's "sgm_uniform" (timesteps linspace(999, 0, 51)[:-1], log-sigma interpolated) is the close one
    sgm = schedule.sigma(torch.linspace(999, 0, 51)[:-1])
    assert ((sgm - sigmas[:-1]).abs() / sigmas[:-1]).max().item() < 0.03
    # denoise < 1 keeps the tail of the longer schedule, like the other spacings
    half = schedule.sigmas_for(5, "legacy_ddpm", denoise=0.5)
    assert torch.equal(half, schedule.sigmas_for(10, "legacy_ddpm")[-6:])


def test_groupnorm_per_frame_keeps_frames_independent_at_init():
    """Zero temporal/injection layers: frame 0's output ignores what the other frames hold (as SD2.1 would).
    A 3D GroupNorm (eq. 1) would couple them through shared statistics."""
    torch.manual_seed(0)
    model = MicroCinemaModel(MicroCinemaConfig.tiny("base", **SMALL)).eval()
    x = torch.randn(4, 4, 8, 8)
    context = torch.randn(1, 77, model.config.context_dim)
    appearance = torch.randn(1, 4, 8, 8).expand(4, -1, -1, -1)
    changed = x.clone()
    changed[1:] = 5 * torch.randn(3, 4, 8, 8)
    with torch.no_grad():
        a = model(x, torch.tensor([500.0]), context, appearance, 4)
        b = model(changed, torch.tensor([500.0]), context, appearance, 4)
    assert torch.allclose(a[0], b[0], atol=1e-5)
    assert not torch.allclose(a[1], b[1], atol=1e-3)


def test_zero_spade_after_the_affine_groupnorm_is_the_identity():
    from microcinema_core.nn.spade import SpadeModulation

    spade = SpadeModulation(8, 16)
    norm = torch.nn.GroupNorm(4, 16)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
        h = norm(torch.randn(2, 16, 6, 6))
        assert torch.equal(spade(h.clone(), torch.randn(2, 8, 6, 6)), h)


def _gaussian_shift(sampler: str, gamma: float, eta: float = 1.0, steps: int = 50):
    """Sample mean on Gaussian data (tests/test_noise_prior_gaussian.py's exact denoiser, lambda 0.3)
    started from the prior with ``lambda + gamma``; returns the mean and the data's (z_c, s)."""
    g = torch.Generator().manual_seed(0)
    dims, samples, lam = 16, 4096, 0.3
    m = torch.randn(dims, generator=g) * 0.25
    s = 0.5 + torch.rand(dims, generator=g)
    z_c = torch.randn(dims, generator=g) * 2.0

    def denoise(x, sigma):
        sigma = torch.as_tensor(sigma, dtype=x.dtype)
        mu = lam * z_c
        return x - sigma * (mu + sigma * (x - m - sigma * mu) / (s ** 2 + sigma ** 2))

    sigmas = DiscreteSchedule().sigmas_for(steps, "normal")
    mean = (lam + gamma) * z_c
    gen = torch.Generator().manual_seed(1)
    x = start_latent(torch.randn(samples, dims, generator=gen), mean, float(sigmas[0]))
    if sampler == "euler":
        out = sample_euler(denoise, x, sigmas)
    else:
        out = sample_euler_ancestral(denoise, x, sigmas, generator=gen, eta=eta, prior_mean=mean)
    return out.mean(0), z_c, s


def _gamma_effect(sampler: str, eta: float = 1.0) -> float:
    """How far gamma = 0.1 moves the samples, in units of gamma * z_c * s (Euler: about 1)."""
    shifted, z_c, s = _gaussian_shift(sampler, 0.1, eta)
    base, _, _ = _gaussian_shift(sampler, 0.0, eta)
    return ((shifted - base) / (0.1 * z_c * s)).median().item()


def test_gamma_acts_about_1_4x_as_strongly_with_the_prior_corrected_ancestral_sampler():
    euler = _gamma_effect("euler")
    half = _gamma_effect("ancestral", eta=0.5)
    full = _gamma_effect("ancestral", eta=1.0)
    assert 0.85 < euler < 1.15, euler
    assert 1.2 < full / euler < 1.6, (euler, full)  # the "about 1.4x" of the node's tooltip
    assert euler < half < full, (euler, half, full)  # the larger eta, the stronger gamma


def test_zero_terminal_snr_schedule_keeps_t0_and_leaves_no_clip_at_t999():
    """Lin et al. 2024 alg. 1 (config.zero_terminal_snr, not in the paper): sqrt(abar) is unchanged at t = 0,
    0 at the end but for the finite floor, and still decreasing; SD's own table is untouched by default."""
    from microcinema_core.diffusion.schedule import TERMINAL_ABAR

    sd, zero = DiscreteSchedule(), DiscreteSchedule(zero_terminal=True)
    assert abs(float(sd.alphas_cumprod[-1]) ** 0.5 - 0.0683) < 1e-3     # SD2.1: 6.8 % of the clip left at t=999
    assert torch.allclose(zero.alphas_cumprod[0], sd.alphas_cumprod[0])
    assert float(zero.alphas_cumprod[-1]) == pytest.approx(TERMINAL_ABAR)
    assert bool((zero.alphas_cumprod[1:] < zero.alphas_cumprod[:-1]).all())
    assert bool((zero.alphas_cumprod[1:] <= sd.alphas_cumprod[1:]).all())
    assert 4000 < zero.sigma_max < 5000 and zero.sigmas_for(20)[0] == pytest.approx(zero.sigma_max)


def test_start_sigma_begins_the_spacing_at_that_noise_level_and_changes_nothing_above_sigma_max():
    """``start_sigma`` (bench/gamma_start.py): the zero-terminal-SNR schedule sampled from SD2.1's own sigma_max,
    the level where SD's t = 999 still holds 6.8 % of the clip."""
    sd, zero = DiscreteSchedule(), DiscreteSchedule(zero_terminal=True)
    for scheduler in ("normal", "legacy_ddpm", "karras"):
        assert torch.equal(zero.sigmas_for(20, scheduler, start_sigma=1e9), zero.sigmas_for(20, scheduler))
        started = zero.sigmas_for(20, scheduler, start_sigma=sd.sigma_max)
        assert len(started) == 21 and float(started[-1]) == 0.0
        assert float(started[0]) == pytest.approx(sd.sigma_max, rel=0.02)
        assert bool((started[1:] < started[:-1]).all())
    with pytest.raises(ValueError, match="start_sigma"):
        zero.sigmas_for(20, start_sigma=zero.sigma_min / 2)
