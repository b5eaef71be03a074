"""MicroCinema Appearance Noise Prior: MODEL -> MODEL whose sampling starts at ``N(mu, I)``,
``mu = (lambda + gamma) [z^c, ..., z^c]`` (paper sec. 3.3, appendix B), so the stock KSampler honours it.

gamma is the motion-amplitude knob: LARGER gamma -> smaller, steadier motion (the start sits closer to
the keyframe); smaller or negative gamma -> larger motion. The paper uses 0.02; -0.01 gives larger motion.
On hosts with SamplerCustomAdvanced, 'MicroCinema Appearance Noise' gives the same prior as a NOISE.
"""
from __future__ import annotations

import math

import torch

from ..microcinema_core.errors import MicroCinemaInputError
from .comfy_model import microcinema_config_of
from .prior_sampling import keyframe_from_conditioning, with_appearance_prior

GAMMA_RANGE = (-0.1, 0.1)
LAMBDA_FROM_CHECKPOINT = -1.0

GAMMA_TOOLTIP = ("Motion amplitude (gamma of the paper, added to lambda at inference). LARGER gamma = "
                 "SMALLER, steadier motion (frames stay closer to the keyframe); smaller or negative = larger "
                 "motion. Paper: 0.02 (its FVD runs); -0.01 gives visibly larger motion. Range -0.1..0.1.")
LAMBDA_TOOLTIP = ("lambda of the noise prior (eq. 3). -1 = the value stored in the checkpoint (the one it "
                  "was trained with, 0.03 in the paper); 0 or more = that value, for experiments only. Other "
                  "negative values are refused.")
SAMPLER_NOTE = ("Deterministic samplers (euler, the paper's; heun, dpmpp_2m, ddim...) honour the prior "
                "exactly. Ancestral/SDE samplers re-inject plain noise and drift off the prior; for stochastic "
                "sampling use 'MicroCinema Euler Ancestral (prior-corrected)' with SamplerCustom.")


def resolve_lambda(value: float, input_name: str = "prior_lambda"):
    """The lambda widget: exactly -1 means the checkpoint's own (None); 0 or more is used as given.

    Any other negative value (e.g. -0.5) or a non-number is an error: it used to be read silently as -1.
    """
    value = float(value)
    if abs(value - LAMBDA_FROM_CHECKPOINT) < 1e-6:
        return None
    if not math.isfinite(value) or value < 0:
        raise MicroCinemaInputError(
            f"{input_name} is {value}: use -1 for the checkpoint's own lambda (the one it was trained with, 0.03 "
            "in the paper), or a value of 0 or more to override it; negative values other than -1 mean nothing.")
    return value


def check_gamma(gamma: float, input_name: str = "gamma") -> None:
    if not (math.isfinite(gamma) and GAMMA_RANGE[0] <= gamma <= GAMMA_RANGE[1]):
        raise MicroCinemaInputError(
            f"{input_name} is {gamma}: it must be a number in {GAMMA_RANGE[0]}..{GAMMA_RANGE[1]} (0.02 is the "
            "paper's; larger = smaller motion).")


def validate_lambda_widget(prior_lambda=None):
    """``VALIDATE_INPUTS`` for the nodes with a prior_lambda widget: a bad value is refused with HTTP 400
    before anything runs (None: the input is linked; ``resolve_lambda`` checks it when the node runs)."""
    if prior_lambda is None:
        return True
    try:
        lam = resolve_lambda(prior_lambda)
    except (MicroCinemaInputError, TypeError, ValueError) as exc:
        return str(exc)
    if lam is not None and lam > 1.0:  # the widget's max (current hosts skip it for inputs validated here)
        return f"prior_lambda is {lam}: at most 1.0 (the paper trains with 0.03; -1 = the checkpoint's)."
    return True


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

        from .comfy_model import model_object

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


NODE_CLASS_MAPPINGS = {"MicroCinemaNoisePrior": MicroCinemaNoisePrior,
                       "MicroCinemaNoisePriorFromLatent": MicroCinemaNoisePriorFromLatent,
                       "MicroCinemaAppearanceNoisePrior": MicroCinemaAppearanceNoisePrior}
NODE_DISPLAY_NAME_MAPPINGS = {"MicroCinemaNoisePrior": "MicroCinema Appearance Noise Prior",
                              "MicroCinemaNoisePriorFromLatent": "MicroCinema Appearance Noise Prior (keyframe latent)",
                              "MicroCinemaAppearanceNoisePrior": "MicroCinema Appearance Noise Prior (deprecated)"}
if host_has_noise_type():
    NODE_CLASS_MAPPINGS["MicroCinemaAppearanceNoise"] = MicroCinemaAppearanceNoise
    NODE_DISPLAY_NAME_MAPPINGS["MicroCinemaAppearanceNoise"] = "MicroCinema Appearance Noise (SamplerCustomAdvanced)"
