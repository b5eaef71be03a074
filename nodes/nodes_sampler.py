"""MicroCinema Sampler: the paper's sampling in one box (Euler, 50 steps, CFG 7.5, noise prior).

Equivalent to 'MicroCinema Appearance Noise Prior' -> stock KSampler with the same settings and seed
(identical result: both go through ``comfy.sample``); progress bar, previews and Cancel are ComfyUI's own.
"""
from __future__ import annotations

from .helpers.comfy_model import require_kind
from .helpers.ksampler import ksample, sampler_names, scheduler_names
from .helpers.prior_patch import keyframe_from_conditioning, with_appearance_prior
from .helpers.validators import (GAMMA_RANGE, GAMMA_TOOLTIP, LAMBDA_FROM_CHECKPOINT, LAMBDA_TOOLTIP, SAMPLER_NOTE,
                                 check_gamma, resolve_lambda, validate_lambda_widget)


class MicroCinemaSampler:
    """Keyframe-conditioned video latent -> sampled video latent, with the appearance noise prior."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The MicroCinema base model (Load MicroCinema Model)."}),
            "positive": ("CONDITIONING", {"tooltip": "positive of 'MicroCinema Keyframe Conditioning'."}),
            "negative": ("CONDITIONING", {"tooltip": "negative of 'MicroCinema Keyframe Conditioning'."}),
            "latent": ("LATENT", {"tooltip": "The empty video latent of 'MicroCinema Keyframe Conditioning'."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                             "tooltip": "Noise seed; the same seed gives the same video as the stock KSampler."}),
            "steps": ("INT", {"default": 50, "min": 1, "max": 1000,
                              "tooltip": "Sampling steps. The paper uses 50; simple motion works in ~5."}),
            "cfg": ("FLOAT", {"default": 7.5, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                              "tooltip": "Classifier-free guidance scale. The paper's base model uses 7.5."}),
            "gamma": ("FLOAT", {"default": 0.02, "min": GAMMA_RANGE[0], "max": GAMMA_RANGE[1], "step": 0.005,
                                "round": 0.0001, "tooltip": GAMMA_TOOLTIP}),
            "prior_lambda": ("FLOAT", {"default": LAMBDA_FROM_CHECKPOINT, "min": -1.0, "max": 1.0, "step": 0.005,
                                       "round": 0.0001, "tooltip": LAMBDA_TOOLTIP}),
            "sampler_name": (sampler_names(), {"default": "euler",
                                               "tooltip": "euler is the paper's sampler. " + SAMPLER_NOTE}),
            "scheduler": (scheduler_names(), {"default": "normal",
                                              "tooltip": "Sigma spacing. normal: timesteps evenly spaced 999 -> 0 "
                                                         "(ComfyUI's default). sgm_uniform: the closest to the "
                                                         "paper's EulerEDM spacing (999 -> 19 in 50 steps)."}),
        }}

    RETURN_TYPES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("The video latent (frames in the batch): VAE Decode -> Save Video (MicroCinema).",)
    FUNCTION = "sample"
    CATEGORY = "MicroCinema"
    DESCRIPTION = ("The paper's sampling in one node: appearance noise prior + Euler + CFG. Same result as "
                   "Appearance Noise Prior -> KSampler with the same settings and seed.")

    @classmethod
    def VALIDATE_INPUTS(cls, prior_lambda=None):
        return validate_lambda_widget(prior_lambda)

    def sample(self, model, positive, negative, latent, seed, steps, cfg, gamma, prior_lambda,
               sampler_name, scheduler):
        check_gamma(gamma)
        require_kind(model, "base")
        keyframe = keyframe_from_conditioning(positive)
        patched = with_appearance_prior(model, keyframe, resolve_lambda(prior_lambda), gamma)
        warn_before_sampling(model, latent["samples"], int(keyframe.shape[0]), steps, cfg)
        return (ksample(patched, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent),)


def warn_before_sampling(model, samples, videos: int, steps: int, cfg: float):
    """The adapter's cost warning, with the run's total time, before the first step (cond+uncond batched)."""
    rows = int(samples.shape[0]) * (1 if cfg == 1.0 else 2)
    model.model.diffusion_model.warn_if_too_slow(
        rows, int(samples.shape[-2]), int(samples.shape[-1]), max(1, int(samples.shape[0]) // max(1, videos)),
        model.model.diffusion_model.compute_dtype, model.load_device, steps=steps)


NODE_CLASS_MAPPINGS = {"MicroCinemaSampler": MicroCinemaSampler}
NODE_DISPLAY_NAME_MAPPINGS = {"MicroCinemaSampler": "MicroCinema Sampler"}
