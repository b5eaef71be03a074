"""One call from a keyframe latent and text embeddings to a video latent (stage 2 of the paper).

``generate`` = appearance input (sec. 3.2) + prior start (appendix B.3) + Euler with classifier-free
guidance. Noise comes from a CPU generator seeded like ComfyUI's, so the same seed gives the same start.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..errors import MicroCinemaInputError
from .appearance_input import appearance_sequence
from .noise_prior import prior_mean, start_latent
from .sampler import StepCallback, sample_euler, sample_euler_ancestral
from .schedule import DiscreteSchedule


class GuidedDenoiser:
    """``(x, sigma) -> denoised`` for a MicroCinema model with classifier-free guidance (eps space).

    With guidance, the conditional and unconditional halves run as one batch (cond first).
    """

    def __init__(self, model, schedule: DiscreteSchedule, context, uncond_context, appearance, num_frames, cfg):
        self.model, self.schedule = model, schedule
        self.context, self.uncond_context = context, uncond_context
        self.appearance, self.num_frames, self.cfg = appearance, num_frames, cfg

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=torch.float32)
        z_t = x / (1.0 + sigma ** 2) ** 0.5
        t = self.schedule.timestep(sigma)
        guided = self.uncond_context is not None and self.cfg != 1.0
        if guided:
            eps_c, eps_u = self.model(
                torch.cat([z_t, z_t]), t, torch.cat([self.context, self.uncond_context]),
                torch.cat([self.appearance, self.appearance]), self.num_frames,
            ).chunk(2)
            eps = eps_u + self.cfg * (eps_c - eps_u)
        else:
            eps = self.model(z_t, t, self.context, self.appearance, self.num_frames)
        return x - sigma * eps.to(x.dtype)


@torch.no_grad()
def generate(model, cond_latents: torch.Tensor, context: torch.Tensor, uncond_context: Optional[torch.Tensor] = None,
             *, num_frames: Optional[int] = None, steps: int = 50, cfg: float = 7.5, lam: Optional[float] = None,
             gamma: float = 0.02, seed: int = 0, sampler: str = "euler", scheduler: str = "normal",
             denoise: float = 1.0, start_sigma: Optional[float] = None,
             callback: Optional[StepCallback] = None) -> torch.Tensor:
    """Video latent ``[B*N,4,h,w]`` for keyframe latents ``[B,4,h,w]`` (base) or ``[B,2,4,h,w]`` (TSR).

    ``lam`` defaults to the checkpoint's training lambda; ``gamma`` shifts the prior at inference
    (0.02 in the paper's FVD runs). ``sampler``: ``euler`` (the paper's, exact for the prior) or
    ``euler_ancestral`` (prior-corrected re-injected noise). ``denoise`` < 1 starts part-way, from AppearNet's input
    (the keyframe repeated; for TSR the interpolation of the two given frames) noised to the first of ``steps``
    sigmas, as ComfyUI's KSampler does with that latent and ``denoise``; the prior's mean is added as usual.
    ``start_sigma``: the first sigma of the spacing (``DiscreteSchedule.sigmas_for``); the start is still
    ``N(mu, I)`` in ``z`` (appendix B.3), now at a noise level where the network sees ``mu`` as part of the clip.
    ``num_frames`` 1 (one image per keyframe) only where ``model.single_frames`` is set (customisation mode).
    """
    config = model.config
    num_frames = int(num_frames or config.num_frames)
    lam = config.noise_prior_lambda if lam is None else float(lam)
    if not torch.isfinite(cond_latents).all():
        raise MicroCinemaInputError("keyframe latent contains NaN/inf: re-encode the keyframe (fp32 or bf16 VAE)")
    appearance = appearance_sequence(config.kind, cond_latents, num_frames,
                                     min_frames=1 if getattr(model, "single_frames", False) else 2)
    schedule = DiscreteSchedule.from_config(config)
    sigmas = schedule.sigmas_for(steps, scheduler, denoise=denoise, start_sigma=start_sigma)
    generator = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(appearance.shape, generator=generator).to(appearance.device)
    mean = prior_mean(appearance.float(), lam, gamma)
    partial = denoise < 1.0
    x = start_latent(noise, mean, float(sigmas[0]), latent=appearance.float() if partial else None,
                     max_denoise=not partial)
    denoiser = GuidedDenoiser(model, schedule, context, uncond_context, appearance, num_frames, cfg)
    if sampler == "euler":
        return sample_euler(denoiser, x, sigmas, callback=callback)
    if sampler == "euler_ancestral":
        return sample_euler_ancestral(denoiser, x, sigmas, generator=generator, prior_mean=mean, callback=callback)
    raise MicroCinemaInputError(f"sampler must be 'euler' or 'euler_ancestral', got {sampler!r}")
