"""One call of ComfyUI's own sampling, exactly as the stock KSampler node makes it (``comfy.sample``).

Same noise (``comfy.sample.prepare_noise`` from the seed), same sigmas, same CFG, same progress bar and
previews (``latent_preview``), same Cancel (the host's progress hook raises on ``POST /interrupt`` after
each step). So a MicroCinema node built on it gives the stock KSampler's result bit for bit.
"""
from __future__ import annotations

import torch


def ksample(model, seed: int, steps: int, cfg: float, sampler_name: str, scheduler: str, positive, negative,
            latent: dict, noise: torch.Tensor | None = None) -> dict:
    """The stock KSampler's ``common_ksampler`` at denoise 1.0; ``noise`` overrides the seeded noise."""
    import comfy.sample
    import comfy.utils
    import latent_preview

    latent_image = latent["samples"]
    fix = getattr(comfy.sample, "fix_empty_latent_channels", None)  # newer hosts only
    if fix is not None:
        latent_image = fix(model, latent_image)
    if noise is None:
        noise = comfy.sample.prepare_noise(latent_image, seed, latent.get("batch_index"))
    callback = latent_preview.prepare_callback(model, steps)
    samples = comfy.sample.sample(
        model, noise, steps, cfg, sampler_name, scheduler, positive, negative, latent_image,
        denoise=1.0, disable_noise=False, start_step=None, last_step=None, force_full_denoise=False,
        noise_mask=latent.get("noise_mask"), callback=callback,
        disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
    out = latent.copy()
    out["samples"] = samples
    return out


def sampler_names() -> list:
    import comfy.samplers

    return list(comfy.samplers.KSampler.SAMPLERS)


def scheduler_names() -> list:
    import comfy.samplers

    return list(comfy.samplers.KSampler.SCHEDULERS)
