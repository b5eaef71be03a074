"""Appendix B, tested: with the exact denoiser of Gaussian data, the prior start reproduces the data.

Data (one video latent per sample, flattened): ``z_0 ~ N(m, diag(s^2))``; the prior adds
``mu = lambda * z^c`` to the training noise. Forward process in k-diffusion form:
``x = z_0 + sigma (eps + mu)``, so ``x ~ N(m + sigma mu, s^2 + sigma^2)`` and the optimal network output is
``f*(x) = E[eps + mu | x] = mu + sigma (x - m - sigma mu) / (s^2 + sigma^2)``, denoised ``= x - sigma f*``.
Integrating the *unchanged* ODE from the prior start gives the data mean and variance; from ``N(0, I)``
it does not (the mean is off by about ``-mu s``).
"""
import torch

from microcinema_core.diffusion.noise_prior import start_latent
from microcinema_core.diffusion.sampler import sample_euler, sample_euler_ancestral
from microcinema_core.diffusion.schedule import DiscreteSchedule

SAMPLES, DIMS = 4096, 16
LAM = 0.3  # larger than the paper's 0.03 so the offset is far above Monte-Carlo noise; the maths is the same


def _problem():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(DIMS, generator=g) * 0.25
    s = 0.5 + torch.rand(DIMS, generator=g)
    z_c = torch.randn(DIMS, generator=g) * 2.0
    mu = LAM * z_c
    return m, s, mu


def _exact_denoiser(m, s, mu):
    def denoise(x, sigma):
        sigma = torch.as_tensor(sigma, dtype=x.dtype)
        f = mu + sigma * (x - m - sigma * mu) / (s ** 2 + sigma ** 2)
        return x - sigma * f
    return denoise


def _sample(start_mean, sampler="euler", corrected=True, steps=200, seed=1):
    m, s, mu = _problem()
    schedule = DiscreteSchedule()
    sigmas = schedule.sigmas_for(steps, "karras")
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(SAMPLES, DIMS, generator=g)
    x = start_latent(noise, start_mean, float(sigmas[0]))
    if sampler == "euler":
        out = sample_euler(_exact_denoiser(m, s, mu), x, sigmas)
    else:
        out = sample_euler_ancestral(_exact_denoiser(m, s, mu), x, sigmas, generator=g,
                                     prior_mean=mu if corrected else None)
    return out, m, s, mu


def test_prior_start_reproduces_data_mean_and_variance():
    out, m, s, mu = _sample(start_mean=_problem()[2])
    mean_err = (out.mean(0) - m).abs().max().item()
    std_ratio = out.std(0) / s
    # Monte-Carlo std of the mean is s/64 <= 0.023; the start ignores z_0 (error <= s*|m|/sigma_max ~ 0.05)
    assert mean_err < 0.1, mean_err
    assert (std_ratio - 1).abs().max().item() < 0.06, std_ratio


def test_standard_normal_start_misses_the_data_mean():
    out, m, s, mu = _sample(start_mean=None)
    bias = out.mean(0) - m
    # the ODE maps the missing sigma_max*mu offset to about -mu*s at the end
    expected = -mu * s
    assert (bias - expected).abs().max().item() < 0.12
    assert bias.abs().max().item() > 0.5  # far outside the tolerance the prior start meets


def test_ancestral_sampler_needs_the_prior_correction():
    corrected, m, s, mu = _sample(start_mean=_problem()[2], sampler="euler_ancestral", corrected=True, steps=100)
    plain, *_ = _sample(start_mean=_problem()[2], sampler="euler_ancestral", corrected=False, steps=100)
    assert (corrected.mean(0) - m).abs().max().item() < 0.1
    assert ((corrected.std(0) / s) - 1).abs().max().item() < 0.08
    assert (plain.mean(0) - m).abs().max().item() > 0.3  # re-injected N(0, I) noise drifts off the prior
