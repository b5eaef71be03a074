"""SD2.1-base's discrete noise schedule (tab. 3: 1000 steps, betas 0.00085 -> 0.012) in k-diffusion form.

``z_t = sqrt(abar_t) z_0 + sqrt(1-abar_t) eps`` (eq. 4) becomes ``x = z_t / sqrt(abar_t) = z_0 + sigma_t eps``
with ``sigma_t = sqrt((1-abar_t)/abar_t)``. The betas are SD's "linear" schedule: linear in sqrt(beta).
Sigma -> timestep uses the nearest training timestep, as ComfyUI does, so both paths feed the network the
same ``t``.

Spacings (``sigmas_for``). The paper samples with EulerEDM (app. tab. 1/3), Stability's ``generative-models``
sampler, whose discretisation of this schedule takes the integer timesteps
``floor(linspace(999, 0, steps, endpoint=False))`` reversed: 999, 979, ..., 19 for 50 steps, then sigma 0.
That is ``"legacy_ddpm"`` here. ComfyUI's ``"normal"`` is NOT that spacing: it spans 999 -> 0 (the last
sigma before 0 is sigma(t=0), about 0.03, where the paper's is sigma(t=19), about 0.13); ComfyUI's
``"sgm_uniform"`` is the close one (the same timesteps before rounding: 999, 979.02, ..., 19.98).
"""
from __future__ import annotations

import math
from typing import Optional

import torch

SCHEDULERS = ("normal", "legacy_ddpm", "karras")
# abar at the last timestep of a zero-terminal-SNR schedule: not exactly 0, so that sigma stays finite (~4519);
# the same value ComfyUI's ModelSamplingDiscrete uses for its "zsnr" option
TERMINAL_ABAR = 4.8973451890853435e-08


def zero_terminal_snr(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Lin et al. 2024 (alg. 1): shift and scale sqrt(abar_t) so that it is unchanged at t = 0 and 0 at the last
    step (then ``TERMINAL_ABAR`` there). Why (not in the paper): SD's schedule keeps sqrt(abar_999) = 0.068 of the
    clean video in z_999. A network that also sees the keyframe (AppearNet) finds the frames' shift in that
    residue, learns to read the motion from z_t even at t = 999 instead of from the text, and at sampling, where
    the start holds no clip, reads a random direction out of the noise (docs/model_cards.md)."""
    root = alphas_cumprod.double().sqrt()
    first, last = root[0].clone(), root[-1].clone()
    root = (root - last) * first / (first - last)
    abar = root ** 2
    abar[-1] = TERMINAL_ABAR
    return abar.float()


class DiscreteSchedule:
    def __init__(self, num_timesteps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012,
                 zero_terminal: bool = False):
        betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, num_timesteps, dtype=torch.float64) ** 2
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0).float()
        if zero_terminal:
            self.alphas_cumprod = zero_terminal_snr(self.alphas_cumprod)
        self.sigmas = ((1 - self.alphas_cumprod) / self.alphas_cumprod) ** 0.5
        self.log_sigmas = self.sigmas.log()

    @classmethod
    def from_config(cls, config) -> "DiscreteSchedule":
        return cls(config.num_train_timesteps, config.beta_start, config.beta_end,
                   zero_terminal=bool(getattr(config, "zero_terminal_snr", False)))

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """Nearest training timestep (float tensor, same shape as ``sigma``)."""
        log_sigma = torch.as_tensor(sigma, dtype=torch.float32).log()
        dists = log_sigma.reshape(-1)[None, :] - self.log_sigmas.to(log_sigma.device)[:, None]
        return dists.abs().argmin(dim=0).float().view(log_sigma.shape)

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        """Sigma at a (possibly fractional) timestep, interpolating log-sigma."""
        t = torch.as_tensor(timestep, dtype=torch.float32).clamp(0, len(self.sigmas) - 1)
        low = t.floor().long()
        high = t.ceil().long()
        w = t.frac()
        return ((1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]).exp()

    def sigmas_for(self, steps: int, scheduler: str = "normal", denoise: float = 1.0,
                   start_sigma: Optional[float] = None) -> torch.Tensor:
        """``steps + 1`` decreasing sigmas ending in 0.

        ``normal``: timesteps evenly spaced from 999 down to 0 inclusive (ComfyUI's "normal");
        ``legacy_ddpm``: the paper's EulerEDM spacing, integer timesteps 999, 979, ..., 19 for 50 steps
        (see the module docstring); ``karras``: Karras et al. rho=7 spacing.
        ``start_sigma``: the spacing starts at the training timestep nearest that sigma instead of the last one
        (``None`` or anything at or above ``sigma_max``: the whole schedule).
        """
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        if not 0.0 < denoise <= 1.0:
            raise ValueError(f"denoise must be in (0, 1], got {denoise}")
        total = steps if denoise >= 1.0 else int(math.ceil(steps / denoise))
        top = self.sigma_max if start_sigma is None else min(float(start_sigma), self.sigma_max)
        if top <= self.sigma_min:
            raise ValueError(f"start_sigma must be above sigma_min {self.sigma_min:.4f}, got {start_sigma}")
        first = int(self.timestep(torch.tensor(top)))
        if scheduler == "normal":
            ts = torch.linspace(float(first),
                                float(self.timestep(torch.tensor(self.sigma_min))), total)
            sigmas = self.sigma(ts)
        elif scheduler == "legacy_ddpm":
            import numpy as np

            ts = np.linspace(first, 0, total, endpoint=False).astype(int)  # 999, 979, ..., 19 (50 steps)
            sigmas = self.sigmas[torch.from_numpy(ts.copy())]
        elif scheduler == "karras":
            rho = 7.0
            ramp = torch.linspace(0, 1, total)
            lo, hi = self.sigma_min ** (1 / rho), float(self.sigmas[first]) ** (1 / rho)
            sigmas = (hi + ramp * (lo - hi)) ** rho
        else:
            raise ValueError(f"unknown scheduler {scheduler!r}; use one of {', '.join(SCHEDULERS)}")
        sigmas = torch.cat([sigmas, sigmas.new_zeros(1)])
        return sigmas[-(steps + 1):]
