"""MicroCinema Keyframe Conditioning: text conditioning + keyframe IMAGE -> conditioning that carries the
keyframe, and the empty video LATENT (frames in the batch dimension).

The keyframe is centre-cropped to the video's aspect ratio, resized, and encoded with the user's VAE (the
model's VAE, see below); its latent rides in both conditionings, and the model's ``extra_conds`` turns it into
AppearNet's input ``[z^c, ..., z^c]`` (paper sec. 3.2). Works with an IMAGE from any graph.

The VAE must be the one the model's latents come from: SD2.1's (= SD1.x's) for SD2.1-based models, the toy VAE
for the toy models. ``check_vae_family`` (``helpers/validators.py``) refuses what the VAE object lets us tell
apart: TAESDXL (``vae_scale`` 0.13025, ~1.4x off the SD latent scale: silently wrong otherwise), TAESD
variants with a latent shift (SD3/Flux), anything that is not 4-channel. The full SDXL VAE cannot be told
apart: it has the SD VAE's architecture and neither host's VAE object records which family its weights belong
to.
"""
from __future__ import annotations

import torch

from ..microcinema_core.errors import MicroCinemaInputError
from ..microcinema_core.models.microcinema import nonfinite_summary
from .helpers.prior_patch import with_keyframe
from .helpers.validators import SIZE_MULTIPLE, VAE_FIX, VAE_TOOLTIP, check_vae_family

MIN_KEYFRAME_SIDE = 8  # px; smaller images carry no picture to animate (it is resized to width x height)


def check_video_size(width: int, height: int, frames: int) -> None:
    for name, value in (("width", width), ("height", height)):
        if value % SIZE_MULTIPLE:
            lower = max(SIZE_MULTIPLE, value // SIZE_MULTIPLE * SIZE_MULTIPLE)
            raise MicroCinemaInputError(
                f"{name} {value} is not a multiple of {SIZE_MULTIPLE} px; use {lower} or {lower + SIZE_MULTIPLE}")
    if frames < 2:
        raise MicroCinemaInputError(f"frames must be at least 2, got {frames}")


def fit_image(images: torch.Tensor, width: int, height: int, input_name: str = "keyframe") -> torch.Tensor:
    """IMAGE ``[B,H,W,C]`` -> ``[B,height,width,3]``: centre crop to the aspect ratio, then resize."""
    import comfy.utils

    if images.ndim != 4 or images.shape[-1] not in (3, 4):
        raise MicroCinemaInputError(
            f"'{input_name}' must be an IMAGE [batch, height, width, 3], got shape {tuple(images.shape)}")
    if images.shape[1] < MIN_KEYFRAME_SIDE or images.shape[2] < MIN_KEYFRAME_SIDE:
        raise MicroCinemaInputError(
            f"'{input_name}' is {images.shape[2]}x{images.shape[1]} px; it must be at least {MIN_KEYFRAME_SIDE}x"
            f"{MIN_KEYFRAME_SIDE} px (it is centre-cropped and resized to {width}x{height}: give an image about "
            "that size, e.g. from Load Image or your text-to-image graph's VAE Decode)")
    pixels = images[..., :3].movedim(-1, 1)
    if tuple(pixels.shape[-2:]) != (height, width):
        method = "area" if pixels.shape[-1] > width and pixels.shape[-2] > height else "bicubic"
        pixels = comfy.utils.common_upscale(pixels, width, height, method, "center").clamp(0.0, 1.0)
    return pixels.movedim(1, -1)


def encode_keyframe(vae, keyframe: torch.Tensor, width: int, height: int,
                    input_name: str = "keyframe") -> torch.Tensor:
    """The raw VAE latent ``[1,4,h,w]`` of one keyframe IMAGE (``input_name``: the input the errors name)."""
    if keyframe.ndim == 4 and keyframe.shape[0] != 1:
        raise MicroCinemaInputError(
            f"'{input_name}' is a batch of {keyframe.shape[0]} images; MicroCinema animates one keyframe per video: "
            "pick one with 'ImageFromBatch' (or queue one prompt per keyframe)")
    check_vae_family(vae)
    seen = nonfinite_summary(keyframe)
    if seen is not None:
        raise MicroCinemaInputError(
            f"'{input_name}' has {seen}: the node feeding '{input_name}' produced them (e.g. a VAE Decode of a NaN "
            "latent, or an fp16 VAE that overflowed: start ComfyUI with --fp32-vae or --bf16-vae)")
    latent = vae.encode(fit_image(keyframe, width, height, input_name))
    if latent.shape[1] != 4:
        raise MicroCinemaInputError(
            f"'vae' makes {latent.shape[1]}-channel latents; MicroCinema needs a 4-channel one: {VAE_FIX}")
    seen = nonfinite_summary(latent)
    if seen is not None:  # finite pixels in, NaN out: the VAE itself
        raise MicroCinemaInputError(
            f"the 'vae' encoded the (finite) {input_name} to a latent with {seen}: the VAE overflowed (fp16: start "
            "ComfyUI with --fp32-vae or --bf16-vae) or its weights are broken (a file that does not match its "
            "loader).")
    return latent.float().cpu()


class MicroCinemaKeyframeConditioning:
    """Attach an encoded keyframe to positive and negative; make the empty video latent."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "positive": ("CONDITIONING", {
                "tooltip": "The text prompt: CLIP Text Encode with the model's text encoder (SD2.1's OpenCLIP-H "
                           "for SD2.1-based models; 'Load MicroCinema Text Encoder (MiniLM)' for the toy models)."}),
            "negative": ("CONDITIONING", {
                "tooltip": "The negative prompt; it carries the keyframe too, as classifier-free guidance "
                           "needs it in both."}),
            "vae": ("VAE", {"tooltip": "Encodes the keyframe. " + VAE_TOOLTIP}),
            "keyframe": ("IMAGE", {
                "tooltip": "ONE image: the video's centre frame (from SDXL, SD2.1, Load Image...). It is "
                           "centre-cropped to width:height and resized."}),
            "width": ("INT", {
                "default": 320, "min": 64, "max": 2048, "step": 64,
                "tooltip": "Video width in pixels, a multiple of 64. The paper trains at 320x320; 512 works too."}),
            "height": ("INT", {
                "default": 320, "min": 64, "max": 2048, "step": 64,
                "tooltip": "Video height in pixels, a multiple of 64."}),
            "frames": ("INT", {
                "default": 9, "min": 2, "max": 64, "step": 1,
                "tooltip": "Frames of the video. The base model is trained on 9 frames at 2 fps: other "
                           "counts work but leave the training distribution."}),
        }}

    RETURN_TYPES = ("CONDITIONING", "CONDITIONING", "LATENT")
    RETURN_NAMES = ("positive", "negative", "latent")
    OUTPUT_TOOLTIPS = ("positive with the keyframe attached", "negative with the keyframe attached",
                       "an empty video latent, frames in the batch dimension: sample it with KSampler or "
                       "'MicroCinema Sampler', decode it with VAE Decode")
    FUNCTION = "encode"
    CATEGORY = "MicroCinema"
    DESCRIPTION = ("Encodes the keyframe with the VAE and attaches it to the conditioning (AppearNet's input); "
                   "returns the empty video latent to sample.")

    @classmethod
    def VALIDATE_INPUTS(cls, width=None, height=None):
        """Sizes that are not multiples of 64 refused with HTTP 400 before anything runs (the widget's step is only a
        hint; a typed or API value can be anything). ``frames`` keeps the host's own min/max check (left out here:
        a host skips those for the inputs a node validates itself, and the 2024 host repeats a message once per
        input named). Linked values (None) are checked when the node runs."""
        for name, value in (("width", width), ("height", height)):
            if value is not None and not 64 <= value <= 2048:
                return f"{name} is {value}: it must be 64..2048, a multiple of 64"
        try:
            check_video_size(64 if width is None else int(width), 64 if height is None else int(height), 2)
        except (MicroCinemaInputError, TypeError, ValueError) as exc:
            return str(exc)
        return True

    def encode(self, positive, negative, vae, keyframe, width, height, frames):
        check_video_size(width, height, frames)
        latent = encode_keyframe(vae, keyframe, width, height)
        empty = torch.zeros([frames, 4, height // 8, width // 8])
        return (with_keyframe(positive, latent), with_keyframe(negative, latent), {"samples": empty})


NODE_CLASS_MAPPINGS = {"MicroCinemaKeyframeConditioning": MicroCinemaKeyframeConditioning}
NODE_DISPLAY_NAME_MAPPINGS = {"MicroCinemaKeyframeConditioning": "MicroCinema Keyframe Conditioning"}
