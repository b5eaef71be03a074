"""MicroCinema Euler Ancestral (prior-corrected): a SAMPLER for SamplerCustom that keeps the noise prior.

Ancestral samplers re-inject fresh noise ``N(0, I) * sigma_up`` each step. Under the Appearance Noise
Prior the noise at ``sigma_next`` carries the offset ``sigma_next * mu``, but after the deterministic part
``x`` carries only ``sigma_down * mu``; the stock ``euler_ancestral`` therefore drifts off the prior. This
SAMPLER runs the core's ``sample_euler_ancestral`` with the missing ``(sigma_next - sigma_down) * mu`` added
(``microcinema_core/diffusion/sampler.py``; proved on Gaussian data in ``tests/test_noise_prior_gaussian.py``).
``mu`` is read from the MODEL the Appearance Noise Prior node patched, so connect that same MODEL here and
to SamplerCustom.

Gamma is STRONGER here than with Euler (documented, not a bug): Euler feels gamma only through its start,
``N((lambda+gamma) z^c, I)``; this sampler re-imposes ``(lambda+gamma) z^c`` on the fresh noise at every
step. On Gaussian data with the exact denoiser (tests/test_fidelity.py) gamma moves the samples about
1.4x as far as with Euler (an independent toy measurement: 0.39 vs 0.28 at gamma 0.1). For the motion a
gamma gives with Euler, use about 0.7x that gamma here, or eta 0 (which is Euler).
"""
from __future__ import annotations

import torch

from ..microcinema_core.diffusion.sampler import sample_euler_ancestral
from ..microcinema_core.errors import MicroCinemaInputError
from .comfy_model import model_object
from .prior_sampling import PriorNoiseScaling


GAMMA_NOTE = ("Gamma acts about 1.4x as strongly as with Euler: the prior's offset (lambda+gamma)*keyframe is "
              "re-imposed at every step, not only at the start. For Euler's motion at a given gamma, use about "
              "0.7x that gamma here (or eta 0, which is Euler).")


def prior_of(model) -> PriorNoiseScaling:
    """The prior the Appearance Noise Prior node put on ``model``, or a clear error."""
    scaling = getattr(model_object(model, "model_sampling"), "noise_scaling", None)
    if not isinstance(scaling, PriorNoiseScaling):
        raise MicroCinemaInputError(
            "'model' has no appearance noise prior: connect the MODEL output of 'MicroCinema Appearance Noise "
            "Prior' (the same MODEL that goes into SamplerCustom)")
    return scaling


def prior_corrected_ancestral(prior: PriorNoiseScaling, eta: float):
    """A k-diffusion style sampler function (what ``comfy.samplers.KSAMPLER`` wraps)."""

    @torch.no_grad()
    def sample(model, x, sigmas, extra_args=None, callback=None, disable=None):
        extra_args = {} if extra_args is None else extra_args
        ones = x.new_ones([x.shape[0]])
        seed = extra_args.get("seed")
        # seeds run over ComfyUI's whole 64-bit range: wrap, never overflow (2**64-1 + 1 -> 0)
        generator = torch.Generator().manual_seed((int(seed) + 1) % 2 ** 64) if seed is not None else None

        def denoise(latent, sigma):
            return model(latent, sigma * ones, **extra_args)

        def report(i, total, latent, denoised):  # ComfyUI's progress bar, previews and Cancel
            if callback is not None:
                callback({"x": latent, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})

        return sample_euler_ancestral(denoise, x, sigmas, generator=generator, eta=eta,
                                      prior_mean=prior.mean_for(x), callback=report)

    return sample


class MicroCinemaPriorAncestralSampler:
    """SAMPLER: Euler ancestral that stays on the appearance noise prior."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The MODEL from 'MicroCinema Appearance Noise Prior' (connect the same "
                                           "one to SamplerCustom): its prior mean is what this sampler keeps. "
                                           + GAMMA_NOTE}),
            "eta": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                              "tooltip": "Share of each step's noise that is re-injected fresh (1 = full ancestral, "
                                         "0 = deterministic Euler). The larger eta, the stronger gamma acts."}),
        }}

    RETURN_TYPES = ("SAMPLER",)
    OUTPUT_TOOLTIPS = ("For SamplerCustom's 'sampler' input.",)
    FUNCTION = "get_sampler"
    CATEGORY = "MicroCinema"
    DESCRIPTION = ("Euler ancestral corrected for the appearance noise prior: the re-injected noise carries "
                   "the prior's offset, so stochastic sampling does not drift off the keyframe's prior. "
                   + GAMMA_NOTE)

    def get_sampler(self, model, eta):
        import comfy.samplers

        return (comfy.samplers.KSAMPLER(prior_corrected_ancestral(prior_of(model), float(eta))),)


NODE_CLASS_MAPPINGS = {"MicroCinemaPriorAncestralSampler": MicroCinemaPriorAncestralSampler}
NODE_DISPLAY_NAME_MAPPINGS = {"MicroCinemaPriorAncestralSampler": "MicroCinema Euler Ancestral (prior-corrected)"}
