"""The checks several node families share, with the widget ranges and tooltips they go with (one place).

Noise prior widgets (Appearance Noise Prior, MicroCinema Sampler, TSR Interpolate): ``gamma`` and
``prior_lambda``. VAE (Keyframe Conditioning, TSR Interpolate (images)): ``check_vae_family`` refuses what the
VAE object lets us tell apart: TAESDXL (``vae_scale`` 0.13025, ~1.4x off the SD latent scale: silently wrong
otherwise), TAESD variants with a latent shift (SD3/Flux), anything that is not 4-channel. The full SDXL VAE
cannot be told apart: it has the SD VAE's architecture and neither host's VAE object records which family its
weights belong to.
"""
from __future__ import annotations

import math

import torch

from ...microcinema_core.errors import MicroCinemaInputError

GAMMA_RANGE = (-0.1, 0.1)
LAMBDA_FROM_CHECKPOINT = -1.0

GAMMA_TOOLTIP = ("Motion amplitude (gamma of the paper, added to lambda at inference). LARGER gamma = "
                 "SMALLER, steadier motion (frames stay closer to the keyframe); smaller or negative = larger "
                 "motion. Paper: 0.02 (its FVD runs); -0.01 gives visibly larger motion. Range -0.1..0.1. "
                 "The embedded toy models move only ~10 % less at 0.1 than at -0.1.")
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


# -- the VAE ------------------------------------------------------------------------------------------
SIZE_MULTIPLE = 64  # the U-Net downsamples latents 8x: 8 * 8 pixels
SDXL_VAE_SCALE = 0.13025  # SDXL's latent scale: what ComfyUI's VAELoader gives TAESDXL as vae_scale
VAE_FIX = ("connect the VAE the model was trained with: the SD1.x/SD2.1 VAE (or taesd) for SD2.1-based "
           "MicroCinema models, microcinema_toy_vae.safetensors for the toy models")
VAE_TOOLTIP = ("The VAE the MicroCinema model's latents come from: the SD2.1 VAE (= SD1.x's, or taesd) for "
               "SD2.1-based models, microcinema_toy_vae.safetensors for the toy models. NOT the SDXL VAE or "
               "TAESDXL, even for an SDXL keyframe (its latents are ~1.4x off; TAESDXL and non-SD VAEs are "
               "refused, the full SDXL VAE cannot be detected).")


def _scalar(value) -> float | None:
    """A TAESD's ``vae_scale``/``vae_shift`` (a one-element Parameter) as a float; None when absent."""
    if value is None:
        return None
    return float(torch.as_tensor(value).detach().float().reshape(-1)[0])


def check_vae_family(vae, input_name: str = "vae") -> None:
    """Refuse VAEs whose latent space is not SD's, where the VAE object tells (see the module docstring)."""
    channels = getattr(vae, "latent_channels", 4)
    if channels != 4:
        raise MicroCinemaInputError(
            f"'{input_name}' makes {channels}-channel latents (SD3/Flux-style VAE); MicroCinema needs a 4-channel "
            f"SD-family latent: {VAE_FIX}")
    network = getattr(vae, "first_stage_model", None)
    scale, shift = (_scalar(getattr(network, name, None)) for name in ("vae_scale", "vae_shift"))
    if scale is not None and abs(scale - SDXL_VAE_SCALE) <= 1e-6:
        raise MicroCinemaInputError(
            f"'{input_name}' is TAESDXL (SDXL's tiny VAE, latent scale {SDXL_VAE_SCALE}): its latents are ~1.4x off "
            f"the SD latent scale MicroCinema works in, so the video would be silently wrong. Even for an SDXL "
            f"keyframe, {VAE_FIX}")
    if shift is not None and abs(shift) > 1e-6:
        raise MicroCinemaInputError(
            f"'{input_name}' has a latent shift of {shift:.4f} (a TAESD for SD3/Flux): not SD's latent "
            f"space. {VAE_FIX[0].upper() + VAE_FIX[1:]}")
