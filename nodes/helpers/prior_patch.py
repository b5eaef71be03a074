"""The Appearance Noise Prior inside ComfyUI's own samplers (paper sec. 3.3, appendix B).

Every ComfyUI sampler builds its start latent with ``model_sampling.noise_scaling(sigma, noise, latent,
max_denoise)``. ``with_appearance_prior`` clones the MODEL and swaps in (``add_object_patch``, as ComfyUI's
ModelSampling* nodes do) a copy of its ``model_sampling`` whose ``noise_scaling`` adds the prior mean
``mu = (lambda + gamma) [z^c, ..., z^c]`` to the noise first. The host's scaling then gives exactly
``sqrt(1 + sigma^2) (eps_n + mu)`` (core ``noise_prior.start_latent``), so the stock KSampler,
SamplerCustom and our Sampler node all start from ``N(mu, I)``; deterministic samplers (euler, the paper's)
are then exact. Ancestral/SDE samplers re-inject plain ``N(0, I)`` noise and drift off the prior.
"""
from __future__ import annotations

import copy

import torch

from ...microcinema_core.diffusion.noise_prior import prior_mean
from ...microcinema_core.errors import MicroCinemaInputError
from .comfy_model import (APPEARANCE_SOURCE_KEY, KEYFRAME_KEY, appearance_for_batch, model_object,
                          microcinema_config_of)

PRIOR_ATTRIBUTE = "microcinema_prior"  # set on the patched model_sampling: (lam, gamma) for inspection


class PriorNoiseScaling:
    """``noise_scaling`` that adds ``mu`` (sized to the noise batch) before the host's own scaling."""

    def __init__(self, original, kind: str, reference: torch.Tensor, lam: float, gamma: float):
        self.original = original
        self.kind, self.reference = kind, reference
        self.lam, self.gamma = float(lam), float(gamma)
        self._cache: dict = {}

    def mean_for(self, noise: torch.Tensor) -> torch.Tensor:
        key = (tuple(noise.shape), noise.device, noise.dtype)
        if key not in self._cache:
            appearance, _ = appearance_for_batch(self.kind, self.reference.to(noise.device), noise.shape)
            self._cache = {key: prior_mean(appearance, self.lam, self.gamma).to(noise.dtype)}
        return self._cache[key]

    def __call__(self, sigma, noise, latent_image, max_denoise=False):
        return self.original(sigma, noise + self.mean_for(noise), latent_image, max_denoise)


def with_appearance_prior(model, keyframe_latent: torch.Tensor, lam: float | None, gamma: float):
    """A clone of ``model`` whose sampling starts at the appearance prior.

    ``keyframe_latent``: the raw VAE latent of the keyframe(s) ([B,4,h,w], or [B,2,4,h,w] first/last for
    TSR), as ComfyUI LATENTs carry it. ``lam`` None: the checkpoint's training lambda.
    """
    config = microcinema_config_of(model)
    lam = config.noise_prior_lambda if lam is None else float(lam)
    expected_ndim = 4 if config.kind == "base" else 5
    if keyframe_latent.ndim != expected_ndim:
        raise MicroCinemaInputError(
            f"the keyframe latent has shape {tuple(keyframe_latent.shape)}; a {config.kind} model needs "
            + ("[keyframes, 4, h, w]" if config.kind == "base" else "[pairs, 2, 4, h, w] (first/last frames)"))
    patched = model.clone()
    original = model_object(model, "model_sampling")
    sampling = copy.deepcopy(original)
    # the class's own noise_scaling: a second prior node replaces an earlier prior, never stacks on it
    plain = type(sampling).noise_scaling.__get__(sampling)
    reference = patched.model.process_latent_in(keyframe_latent.detach().float().cpu())
    sampling.noise_scaling = PriorNoiseScaling(plain, config.kind, reference, lam, gamma)
    setattr(sampling, PRIOR_ATTRIBUTE, (lam, float(gamma)))
    patched.add_object_patch("model_sampling", sampling)
    return patched


def keyframe_from_conditioning(conditioning, input_name: str = "positive") -> torch.Tensor:
    """The keyframe latent that Keyframe Conditioning attached to a CONDITIONING."""
    for _, options in conditioning or []:
        if KEYFRAME_KEY in options:
            return options[KEYFRAME_KEY]
    raise MicroCinemaInputError(
        f"'{input_name}' carries no MicroCinema keyframe: connect it from 'MicroCinema Keyframe Conditioning' "
        "(or, for a subject-driven model, 'MicroCinema Subject Conditioning')")


def with_keyframe(conditioning, keyframe_latent: torch.Tensor, source: str = "keyframe"):
    """A copy of a CONDITIONING list with the keyframe latent attached to every entry; ``source``: what the latent
    is, "keyframe" or "subject" (a subject reference, checked against the model when sampling)."""
    return [[tensor, {**options, KEYFRAME_KEY: keyframe_latent, APPEARANCE_SOURCE_KEY: source}]
            for tensor, options in conditioning]
