"""MicroCinema Subject Conditioning: text conditioning + a subject IMAGE (and its optional MASK) -> conditioning that
carries the subject reference, the empty video LATENT, and the reference IMAGE as the model sees it.

For a subject-driven (customisation) model (``config.appearance_input = "subject"``, docs/customisation.md): it is
sampled exactly like the image-to-video model, with the subject reference where the keyframe goes (AppearNet's input
and the noise prior). The reference is prepared the way the model saw references in training
(``helpers/subject_reference.py``): with a mask, the subject is cut out of the mask's box and centred on a plain grey
(``background``) with its longer side 0.85 of the frame; without one, the whole picture is padded to the frame's
shape with its border's mean colour (nothing cropped) and resized. The latent rides in the conditioning as the
keyframe's does, marked as a subject reference: sampling it with an image-to-video model (or a keyframe with a
subject-driven model) is refused by name when the sampler runs (``helpers/comfy_model.check_appearance_source``).

The MASK convention is the segmentation nodes' (1 = subject). ComfyUI's stock Load Image returns 1 - alpha: put the
stock InvertMask node between Load Image and ``subject_mask`` (the shipped "toy subject to video" workflow does).
"""
from __future__ import annotations

import logging

import torch

from ..microcinema_core.errors import MicroCinemaInputError
from ..microcinema_core.models.microcinema import nonfinite_summary
from .helpers.prior_patch import with_keyframe
from .helpers.subject_reference import (FULL_MASK, MASK_THRESHOLD, MIN_SUBJECT_SIDE, REFERENCE_SIZE,
                                        prepare_reference, subject_box)
from .helpers.validators import VAE_TOOLTIP
from .nodes_keyframe import MIN_KEYFRAME_SIDE, MicroCinemaKeyframeConditioning, check_video_size, encode_keyframe

INVERT_HINT = ("ComfyUI's Load Image gives 1 - alpha as its MASK: put the stock 'InvertMask' node between Load Image "
               "and 'subject_mask'")


def _size(tensor: torch.Tensor) -> str:
    return f"{tensor.shape[-1]}x{tensor.shape[-2]} px"


def check_subject(subject: torch.Tensor, subject_mask: torch.Tensor | None) -> tuple:
    """The node's inputs -> ``(image [3, h, w], mask [h, w] or None)``, or a ``MicroCinemaInputError`` that names
    the input and the fix. An RGBA IMAGE without a mask gives its alpha as the mask; a mask that is 1 everywhere
    (any size: e.g. Load Image of a picture without transparency, through InvertMask) counts as no mask."""
    if not isinstance(subject, torch.Tensor) or subject.ndim != 4 or subject.shape[-1] not in (3, 4):
        shape = tuple(subject.shape) if isinstance(subject, torch.Tensor) else type(subject).__name__
        raise MicroCinemaInputError(f"'subject' must be an IMAGE [batch, height, width, 3], got {shape}")
    if subject.shape[0] != 1:
        raise MicroCinemaInputError(
            f"'subject' is a batch of {subject.shape[0]} images; a video shows ONE subject, from one picture: pick "
            "one with 'ImageFromBatch' (or queue one prompt per subject)")
    if subject.shape[1] < MIN_KEYFRAME_SIDE or subject.shape[2] < MIN_KEYFRAME_SIDE:
        raise MicroCinemaInputError(
            f"'subject' is {subject.shape[2]}x{subject.shape[1]} px; it must be at least {MIN_KEYFRAME_SIDE}x"
            f"{MIN_KEYFRAME_SIDE} px: give the picture of the subject (Load Image, or your graph's VAE Decode)")
    seen = nonfinite_summary(subject)
    if seen is not None:
        raise MicroCinemaInputError(
            f"'subject' has {seen}: the node feeding 'subject' produced them (e.g. a VAE Decode of a NaN latent, "
            "or an fp16 VAE that overflowed: start ComfyUI with --fp32-vae or --bf16-vae)")
    image = subject[0].movedim(-1, 0).float()
    if subject_mask is None and image.shape[0] == 4:
        logging.info("MicroCinema Subject Conditioning: 'subject' has an alpha channel and no subject_mask is "
                     "connected: the alpha is the subject's mask")
        subject_mask = image[3]
    image = image[:3]
    if subject_mask is None:
        return image, None
    return image, check_mask(subject_mask, image)


def check_mask(subject_mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor | None:
    """``subject_mask`` (MASK ``[1, h, w]`` or ``[h, w]``) checked against ``image [3, h, w]`` -> ``[h, w]``, or None
    for a mask that is 1 everywhere."""
    if not isinstance(subject_mask, torch.Tensor) or subject_mask.ndim not in (2, 3):
        shape = tuple(subject_mask.shape) if isinstance(subject_mask, torch.Tensor) else type(subject_mask).__name__
        raise MicroCinemaInputError(f"'subject_mask' must be a MASK [batch, height, width], got {shape}")
    if subject_mask.ndim == 3:
        if subject_mask.shape[0] != 1:
            raise MicroCinemaInputError(
                f"'subject_mask' holds {subject_mask.shape[0]} masks (a segmentation node that found several "
                "objects?); the video shows ONE subject: combine them into one mask (e.g. the stock 'MaskComposite' "
                "node, operation 'add') or keep the one of your subject")
        subject_mask = subject_mask[0]
    mask = subject_mask.float()
    seen = nonfinite_summary(mask)
    if seen is not None:
        raise MicroCinemaInputError(
            f"'subject_mask' has {seen}: the node feeding 'subject_mask' produced them; a mask holds values in 0..1 "
            "(1 = subject)")
    if bool((mask >= FULL_MASK).all()):
        logging.info("MicroCinema Subject Conditioning: 'subject_mask' is 1 everywhere (no cut-out): the whole "
                     "picture is the reference, padded to the frame")
        return None
    if subject_box(mask) is None:
        raise MicroCinemaInputError(
            f"'subject_mask' is empty: no pixel is above {MASK_THRESHOLD} (1 marks the subject). Load Image's MASK is "
            "1 - alpha, all 0 for a picture without transparency: for a cut-out picture (transparent background) "
            "put the stock 'InvertMask' node between Load Image and 'subject_mask'; for a photo, leave "
            "'subject_mask' unconnected (the whole picture is used, padded to the frame)")
    if tuple(mask.shape) != tuple(image.shape[-2:]):
        raise MicroCinemaInputError(
            f"'subject_mask' is {_size(mask)} but 'subject' is {_size(image)}: the mask must be the subject "
            "picture's own, the same size (Load Image's MASK of the same file, or a segmentation node run on that "
            "image); resize it with the picture, or leave 'subject_mask' unconnected")
    border = torch.cat([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    if bool((border > 0.5).all()):
        raise MicroCinemaInputError(
            "'subject_mask' covers the whole border of the picture and leaves the subject out: it looks inverted "
            f"(1 must mark the subject, 0 the background). {INVERT_HINT}")
    top, left, bottom, right = subject_box(mask)
    if max(bottom - top, right - left) < MIN_SUBJECT_SIDE:
        raise MicroCinemaInputError(
            f"the subject in 'subject_mask' is only {right - left}x{bottom - top} px (at least {MIN_SUBJECT_SIDE} px "
            f"on its longer side): a mask of a few stray pixels? It is scaled to {REFERENCE_SIZE} of the frame, so "
            "give a picture where the subject is larger, or check the segmentation")
    return mask


def check_background(background) -> None:
    try:
        value = float(background)
    except (TypeError, ValueError):
        raise MicroCinemaInputError(f"background is {background!r}: it must be a grey level in 0..1") from None
    if not 0.0 <= value <= 1.0:  # NaN too
        raise MicroCinemaInputError(
            f"background is {background}: it must be a grey level in 0..1 (0 black, 1 white; 0.5 is the default, "
            "training used 0.25..0.95)")


class MicroCinemaSubjectConditioning:
    """Attach a prepared subject reference to positive and negative; make the empty video latent."""

    @classmethod
    def INPUT_TYPES(cls):
        keyframe = MicroCinemaKeyframeConditioning.INPUT_TYPES()["required"]
        return {
            "required": {
                "positive": ("CONDITIONING", {
                    "tooltip": "The text prompt: CLIP Text Encode with the model's text encoder ('Load MicroCinema "
                               "Text Encoder (MiniLM)' for the toy models). Name the subject, the place and the "
                               "motion: \"a cup of coffee on the moon, the camera sweeps left\"."}),
                "negative": ("CONDITIONING", {
                    "tooltip": "The negative prompt; it carries the subject reference too, as classifier-free "
                               "guidance needs it in both."}),
                "vae": ("VAE", {"tooltip": "Encodes the subject reference. " + VAE_TOOLTIP}),
                "subject": ("IMAGE", {
                    "tooltip": "ONE picture of the subject (Load Image, a segmentation node's image, your graph's "
                               "VAE Decode). With 'subject_mask' the subject is cut out and centred on a plain grey; "
                               "without, the whole picture is padded to the frame (nothing cropped). An RGBA image "
                               "without a mask uses its alpha as the mask."}),
                "width": (keyframe["width"][0], {**keyframe["width"][1], "tooltip": (
                    "Video width in pixels, a multiple of 64; the model's training size (128 for the toy "
                    "models, 320 in the paper).")}),
                "height": (keyframe["height"][0], {**keyframe["height"][1], "tooltip": (
                    "Video height in pixels, a multiple of 64.")}),
                "frames": keyframe["frames"],
                "background": ("FLOAT", {
                    "default": 0.5, "min": 0.0, "max": 1.0, "step": 0.05,
                    "tooltip": "Grey level behind the cut-out subject (0 black, 1 white), used only with "
                               "'subject_mask'. Training used plain greys of 0.25..0.95."}),
            },
            "optional": {
                "subject_mask": ("MASK", {
                    "tooltip": "Where the subject is in 'subject' (1 = subject, as segmentation nodes give; same "
                               f"size as the picture). Its box is cut out and scaled to {REFERENCE_SIZE} of the frame "
                               f"on the 'background' grey. {INVERT_HINT}. Unconnected, or 1 everywhere: the whole "
                               "picture is the reference."}),
            },
        }

    RETURN_TYPES = ("CONDITIONING", "CONDITIONING", "LATENT", "IMAGE")
    RETURN_NAMES = ("positive", "negative", "latent", "reference")
    OUTPUT_TOOLTIPS = ("positive with the subject reference attached", "negative with the subject reference attached",
                       "an empty video latent, frames in the batch dimension: sample it with KSampler or "
                       "'MicroCinema Sampler', decode it with VAE Decode",
                       "the reference as the model sees it (width x height): preview it to check the cut-out")
    FUNCTION = "encode"
    CATEGORY = "MicroCinema"
    DESCRIPTION = ("For a subject-driven (customisation) MicroCinema model: prepares the subject reference as the "
                   "model was trained (cut out on grey with a mask, padded without), encodes it with the VAE and "
                   "attaches it to the conditioning in the keyframe's place; returns the empty video latent to sample "
                   "and the prepared reference.")

    @classmethod
    def VALIDATE_INPUTS(cls, width=None, height=None, background=None):
        """Sizes not multiples of 64 and a background outside 0..1 (NaN included) refused with HTTP 400 before
        anything runs; linked values (None) are checked when the node runs."""
        size = MicroCinemaKeyframeConditioning.VALIDATE_INPUTS(width=width, height=height)
        if size is not True:
            return size
        if background is not None:
            try:
                check_background(background)
            except MicroCinemaInputError as exc:
                return str(exc)
        return True

    def encode(self, positive, negative, vae, subject, width, height, frames, background, subject_mask=None):
        check_video_size(width, height, frames)
        check_background(background)
        image, mask = check_subject(subject, subject_mask)
        reference = prepare_reference(image, mask, width, height, float(background))[None].movedim(1, -1)
        latent = encode_keyframe(vae, reference, width, height, input_name="subject")
        empty = torch.zeros([frames, 4, height // 8, width // 8])
        return (with_keyframe(positive, latent, source="subject"), with_keyframe(negative, latent, source="subject"),
                {"samples": empty}, reference)


NODE_CLASS_MAPPINGS = {"MicroCinemaSubjectConditioning": MicroCinemaSubjectConditioning}
NODE_DISPLAY_NAME_MAPPINGS = {"MicroCinemaSubjectConditioning": "MicroCinema Subject Conditioning"}
