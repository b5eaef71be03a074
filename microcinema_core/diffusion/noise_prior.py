"""The Appearance Noise Prior (paper sec. 3.3, eq. 3-5; appendix B).

Training noise (eq. 3): ``eps^i = lambda * z^c + eps_n^i``; the network learns to predict that whole
``eps`` (eq. 5). Appendix B shows the reverse ODE then keeps its usual form, so any ODE sampler works
unchanged once it starts from ``N(mu, I)`` with ``mu = (lambda + gamma) [z^c, ..., z^c]`` (B.3).
``gamma`` is the inference-time motion knob: larger gamma, smaller and steadier motion; negative, larger.

In k-diffusion coordinates ``x = z_t / sqrt(abar)`` the start is ``x_T = sqrt(1 + sigma_max^2) (eps_n + mu)``
(the same scaling ComfyUI applies to plain noise), and a partial denoise from a latent ``z`` starts at
``z + sigma (eps_n + mu)``, eq. 15 exactly.
"""
from __future__ import annotations

from typing import Optional

import torch


def training_noise(reference: torch.Tensor, lam: float, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Eq. 3 for a whole clip: ``reference`` is ``[z^c]*N`` (``[B*N,C,h,w]``); returns ``lam*reference + eps_n``."""
    device = generator.device if generator is not None else reference.device
    eps = torch.randn(reference.shape, generator=generator, dtype=reference.dtype, device=device)
    return lam * reference + eps.to(reference.device)


def noised_latent(clean: torch.Tensor, noise: torch.Tensor, alphas_cumprod_t: torch.Tensor) -> torch.Tensor:
    """Eq. 4: ``z_t = sqrt(abar_t) z_0 + sqrt(1-abar_t) eps`` (``alphas_cumprod_t`` per row)."""
    abar = alphas_cumprod_t.to(clean.dtype).view(-1, *([1] * (clean.ndim - 1)))
    return abar.sqrt() * clean + (1 - abar).sqrt() * noise


def prior_mean(reference: torch.Tensor, lam: float, gamma: float = 0.0) -> torch.Tensor:
    """``mu = (lambda + gamma) [z^c, ..., z^c]`` (appendix B.3)."""
    return (lam + gamma) * reference


def start_latent(noise: torch.Tensor, mean: Optional[torch.Tensor], sigma: float,
                 latent: Optional[torch.Tensor] = None, max_denoise: bool = True) -> torch.Tensor:
    """The sampler's first ``x``: ``sqrt(1+sigma^2) (eps_n + mu)`` from pure noise, else ``latent + sigma (eps_n + mu)``."""
    shifted = noise if mean is None else noise + mean.to(noise.dtype)
    if max_denoise or latent is None:
        scaled = shifted * (1.0 + sigma ** 2) ** 0.5
        return scaled if latent is None else scaled + latent
    return latent + shifted * sigma
