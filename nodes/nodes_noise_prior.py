"""The Appearance Noise Prior family: the nodes that put the prior on a MODEL, a NOISE or a SAMPLER.

**MicroCinema Appearance Noise Prior** (and its keyframe-latent and deprecated variants): MODEL -> MODEL whose
sampling starts at ``N(mu, I)``, ``mu = (lambda + gamma) [z^c, ..., z^c]`` (paper sec. 3.3, appendix B), so the
stock KSampler honours it (the patch itself: ``helpers/prior_patch.py``).

gamma is the motion-amplitude knob: LARGER gamma -> smaller, steadier motion (the start sits closer to
the keyframe); smaller or negative gamma -> larger motion. The paper uses 0.02; -0.01 gives larger motion.
On hosts with SamplerCustomAdvanced, 'MicroCinema Appearance Noise' gives the same prior as a NOISE.

**MicroCinema Euler Ancestral (prior-corrected)**: a SAMPLER for SamplerCustom that keeps the noise prior.

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
from .helpers.comfy_model import microcinema_config_of, model_object
from .helpers.prior_patch import PriorNoiseScaling, keyframe_from_conditioning, with_appearance_prior
from .helpers.validators import (GAMMA_RANGE, GAMMA_TOOLTIP, LAMBDA_FROM_CHECKPOINT, LAMBDA_TOOLTIP, SAMPLER_NOTE,
                                 check_gamma, resolve_lambda, validate_lambda_widget)


def keyframe_input(positive=None, keyframe_latent=None) -> torch.Tensor:
    """The keyframe latent from the conditioning (preferred) or from a LATENT."""
    if positive is not None:
        return keyframe_from_conditioning(positive)
    if keyframe_latent is not None:
        return keyframe_latent["samples"]
    raise MicroCinemaInputError(
        "connect 'positive' (from MicroCinema Keyframe Conditioning) or 'keyframe_latent' (VAE Encode of "
        "the keyframe)")


PRIOR_WIDGETS = {
    "gamma": ("FLOAT", {"default": 0.02, "min": GAMMA_RANGE[0], "max": GAMMA_RANGE[1],
                        "step": 0.005, "round": 0.0001, "tooltip": GAMMA_TOOLTIP}),
    "prior_lambda": ("FLOAT", {"default": LAMBDA_FROM_CHECKPOINT, "min": -1.0, "max": 1.0,
                               "step": 0.005, "round": 0.0001, "tooltip": LAMBDA_TOOLTIP}),
}
MODEL_INPUT = {"model": ("MODEL", {"tooltip": "A MicroCinema model (base or TSR)."})}
POSITIVE_INPUT = {"positive": ("CONDITIONING", {
    "tooltip": "The positive output of 'MicroCinema Keyframe Conditioning': the keyframe is read from it."})}
KEYFRAME_LATENT_INPUT = {"keyframe_latent": ("LATENT", {
    "tooltip": "The keyframe as a LATENT (VAE Encode of the keyframe, same size as the video)."})}
PRIOR_DESCRIPTION = ("Makes sampling start from N((lambda+gamma)*keyframe, I) as in the paper, for any ComfyUI "
                     "sampler node. " + SAMPLER_NOTE)


class MicroCinemaNoisePrior:
    """Patch a MicroCinema MODEL so every sampler starts from the appearance noise prior; the keyframe comes
    from the Keyframe Conditioning's positive output. Every input is required, so the host validates the graph
    upstream of it before anything runs."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {**MODEL_INPUT, **POSITIVE_INPUT, **PRIOR_WIDGETS}}

    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The model with the prior start: feed it to KSampler / SamplerCustom. " + SAMPLER_NOTE,)
    FUNCTION = "apply"
    CATEGORY = "MicroCinema"
    DESCRIPTION = PRIOR_DESCRIPTION

    @classmethod
    def VALIDATE_INPUTS(cls, prior_lambda=None):
        return validate_lambda_widget(prior_lambda)

    def apply(self, model, gamma, prior_lambda, positive=None, keyframe_latent=None):
        check_gamma(gamma)
        microcinema_config_of(model)
        keyframe = keyframe_input(positive, keyframe_latent)
        return (with_appearance_prior(model, keyframe, resolve_lambda(prior_lambda), gamma),)


class MicroCinemaNoisePriorFromLatent(MicroCinemaNoisePrior):
    """The same, with the keyframe given as a LATENT (VAE Encode) instead of the conditioning."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {**MODEL_INPUT, **KEYFRAME_LATENT_INPUT, **PRIOR_WIDGETS}}

    DESCRIPTION = PRIOR_DESCRIPTION + " The keyframe comes as a LATENT."


class MicroCinemaAppearanceNoisePrior(MicroCinemaNoisePrior):
    """Deprecated (kept so that older workflows load and run): the keyframe as an OPTIONAL conditioning or latent,
    which the 2024 host does not validate; use 'MicroCinema Appearance Noise Prior' or '... (keyframe latent)'."""

    DEPRECATED = True   # hidden from the node search of current hosts; old graphs still load

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {**MODEL_INPUT, **PRIOR_WIDGETS}, "optional": {
            "positive": POSITIVE_INPUT["positive"],
            "keyframe_latent": ("LATENT", {"tooltip": KEYFRAME_LATENT_INPUT["keyframe_latent"][1]["tooltip"]
                                                      + " Used when 'positive' is not connected."})}}

    DESCRIPTION = ("DEPRECATED: use 'MicroCinema Appearance Noise Prior' (from the conditioning) or '... (keyframe "
                   "latent)'; this node's optional keyframe inputs let a broken graph past validation. "
                   + PRIOR_DESCRIPTION)


class AppearancePriorNoise:
    """A NOISE (SamplerCustomAdvanced protocol): seeded Gaussian noise plus the prior mean ``mu``."""

    def __init__(self, seed: int, prior_model):
        self.seed = int(seed)
        self.prior_model = prior_model  # a clone carrying the PriorNoiseScaling patch

    def generate_noise(self, input_latent):
        import comfy.sample

        samples = input_latent["samples"]
        noise = comfy.sample.prepare_noise(samples, self.seed, input_latent.get("batch_index"))
        return noise + model_object(self.prior_model, "model_sampling").noise_scaling.mean_for(noise)


class MicroCinemaAppearanceNoise:
    """The prior as a NOISE for SamplerCustomAdvanced (use it with the UNpatched MicroCinema model)."""

    @classmethod
    def INPUT_TYPES(cls):
        spec = MicroCinemaAppearanceNoisePrior.INPUT_TYPES()   # the keyframe stays optional here (current hosts only)
        required = {"model": ("MODEL", {"tooltip": "The MicroCinema model (NOT the output of Appearance Noise "
                                                   "Prior: that would add the prior twice)."}),
                    "noise_seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                                           "tooltip": "Seed of the Gaussian part (same noise as RandomNoise)."})}
        required.update({k: v for k, v in spec["required"].items() if k != "model"})
        return {"required": required, "optional": spec["optional"]}

    RETURN_TYPES = ("NOISE",)
    OUTPUT_TOOLTIPS = ("Noise eps_n + mu for SamplerCustomAdvanced.",)
    FUNCTION = "make"
    CATEGORY = "MicroCinema"
    DESCRIPTION = "The appearance noise prior as a NOISE input of SamplerCustomAdvanced."

    @classmethod
    def VALIDATE_INPUTS(cls, prior_lambda=None):
        return validate_lambda_widget(prior_lambda)

    def make(self, model, noise_seed, gamma, prior_lambda, positive=None, keyframe_latent=None):
        (patched,) = MicroCinemaAppearanceNoisePrior().apply(model, gamma, prior_lambda, positive, keyframe_latent)
        return (AppearancePriorNoise(noise_seed, patched),)


def host_has_noise_type() -> bool:
    """True on ComfyUI versions with SamplerCustomAdvanced (and so the NOISE socket type)."""
    try:
        import comfy_extras.nodes_custom_sampler as custom
    except Exception:
        return False
    return hasattr(custom, "SamplerCustomAdvanced")


# -- Euler ancestral, prior-corrected --------------------------------------------------------------------------------
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


NODE_CLASS_MAPPINGS = {"MicroCinemaNoisePrior": MicroCinemaNoisePrior,
                       "MicroCinemaNoisePriorFromLatent": MicroCinemaNoisePriorFromLatent,
                       "MicroCinemaAppearanceNoisePrior": MicroCinemaAppearanceNoisePrior}
NODE_DISPLAY_NAME_MAPPINGS = {"MicroCinemaNoisePrior": "MicroCinema Appearance Noise Prior",
                              "MicroCinemaNoisePriorFromLatent": "MicroCinema Appearance Noise Prior (keyframe latent)",
                              "MicroCinemaAppearanceNoisePrior": "MicroCinema Appearance Noise Prior (deprecated)"}
if host_has_noise_type():
    NODE_CLASS_MAPPINGS["MicroCinemaAppearanceNoise"] = MicroCinemaAppearanceNoise
    NODE_DISPLAY_NAME_MAPPINGS["MicroCinemaAppearanceNoise"] = "MicroCinema Appearance Noise (SamplerCustomAdvanced)"
NODE_CLASS_MAPPINGS.update({"MicroCinemaPriorAncestralSampler": MicroCinemaPriorAncestralSampler})
NODE_DISPLAY_NAME_MAPPINGS.update({"MicroCinemaPriorAncestralSampler": "MicroCinema Euler Ancestral (prior-corrected)"})
