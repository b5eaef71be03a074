"""Samplers in k-diffusion/EDM form on SD2.1's discrete schedule, made exact for the noise prior.

A denoiser maps ``(x, sigma) -> denoised`` with ``denoised = x - sigma * f_theta(z_t, t)``; the network's
output ``f_theta`` estimates the whole prior noise ``eps_n + mu`` (eq. 5), so the Euler step
``x <- x + (sigma_next - sigma) (x - denoised) / sigma`` integrates the unchanged reverse ODE (appendix B,
eq. 24). The paper's sampler is EulerEDM with gamma-dagger = 0: :func:`sample_euler`.

Ancestral (SDE) samplers re-inject fresh noise: ``N(0, I) * sigma_up``. Under the prior the noise at
``sigma_next`` must carry the offset ``sigma_next * mu``, but after the deterministic part ``x`` carries
only ``sigma_down * mu``; :func:`sample_euler_ancestral` adds the missing ``(sigma_next - sigma_down) * mu``
when given ``prior_mean`` (tested in ``tests/test_noise_prior_gaussian.py``: without it the sample mean drifts).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
StepCallback = Callable[[int, int, torch.Tensor, torch.Tensor], None]  # (step, total, x, denoised)


def sample_euler(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor,
                 callback: Optional[StepCallback] = None) -> torch.Tensor:
    """Deterministic Euler (EulerEDM, gamma-dagger = 0): exact for the noise prior without any change."""
    total = len(sigmas) - 1
    for i in range(total):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoiser(x, sigma)
        derivative = (x - denoised) / sigma
        x = x + derivative * (sigma_next - sigma)
        if callback is not None:
            callback(i, total, x, denoised)
    return x


def ancestral_sigmas(sigma: torch.Tensor, sigma_next: torch.Tensor, eta: float = 1.0):
    """Split a step into a deterministic part down to ``sigma_down`` and fresh noise ``sigma_up``."""
    if float(sigma_next) == 0.0:
        return sigma_next, sigma_next * 0
    sigma_up = min(float(sigma_next), eta * float(
        (sigma_next ** 2 * (sigma ** 2 - sigma_next ** 2) / sigma ** 2) ** 0.5))
    sigma_down = (float(sigma_next) ** 2 - sigma_up ** 2) ** 0.5
    return torch.as_tensor(sigma_down), torch.as_tensor(sigma_up)


def sample_euler_ancestral(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *,
                           generator: Optional[torch.Generator] = None, eta: float = 1.0,
                           prior_mean: Optional[torch.Tensor] = None,
                           callback: Optional[StepCallback] = None) -> torch.Tensor:
    """Euler ancestral; with ``prior_mean`` (= mu) the re-injected noise carries the prior's offset."""
    total = len(sigmas) - 1
    for i in range(total):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoiser(x, sigma)
        sigma_down, sigma_up = ancestral_sigmas(sigma, sigma_next, eta)
        x = x + (x - denoised) / sigma * (sigma_down - sigma)
        if float(sigma_next) > 0:
            device = generator.device if generator is not None else x.device
            fresh = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=device).to(x.device)
            x = x + fresh * sigma_up
            if prior_mean is not None:
                x = x + prior_mean.to(x.dtype) * (sigma_next - sigma_down)
        if callback is not None:
            callback(i, total, x, denoised)
    return x
