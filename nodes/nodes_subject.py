"""MicroCinema Subject Conditioning, and its masked twin: text conditioning + ONE subject IMAGE (+ its MASK in the
masked node) -> conditioning that carries the subject reference, the empty video LATENT, and the reference IMAGE as
the model sees it.

For a subject-driven (customisation) model (``config.appearance_input = "subject"``, docs/customisation.md): it is
sampled exactly like the image-to-video model, with the subject reference where the keyframe goes (AppearNet's input
and the noise prior). The reference is prepared the way the model saw references in training
(``helpers/subject_reference.py``):

* **MicroCinema Subject Conditioning** (``MicroCinemaSubjectConditioning``): the whole picture, padded to the frame's
  shape with its border's mean colour (nothing cropped) and resized;
* **MicroCinema Subject Conditioning (masked)** (``MicroCinemaSubjectConditioningMasked``): the subject cut out of the
  mask's box and centred on a plain grey (``background``) with its longer side 0.85 of the frame; a mask that is 1
  everywhere is the first node's padded picture.

Two nodes, not one with an optional mask: every input is required, so the 2024 host (which validates only what
required inputs lead to) checks the whole graph before anything runs (issue 38's rule for the main chain; an
optional link to a node that does not exist stopped that host's worker for good). The latent rides in the
conditioning as the keyframe's does, marked as a subject reference: sampling it with an image-to-video model (or a
keyframe with a subject-driven model) is refused by name when the sampler runs
(``helpers/comfy_model.check_appearance_source``).

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

PLAIN_NAME = "MicroCinema Subject Conditioning"
MASKED_NAME = "MicroCinema Subject Conditioning (masked)"
INVERT_HINT = ("ComfyUI's Load Image gives 1 - alpha as its MASK: put the stock 'InvertMask' node between Load Image "
               "and 'subject_mask'")


def _size(tensor: torch.Tensor) -> str:
    return f"{tensor.shape[-1]}x{tensor.shape[-2]} px"


def check_subject(subject: torch.Tensor) -> torch.Tensor:
    """``subject`` (IMAGE ``[1, h, w, 3 or 4]``) -> ``[3 or 4, h, w]`` float, or a ``MicroCinemaInputError`` that names
    the input and the fix."""
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
    return subject[0].movedim(-1, 0).float()


def opaque_picture(image: torch.Tensor) -> torch.Tensor:
    """``[3 or 4, h, w]`` -> ``[3, h, w]`` for the node without a mask: an alpha channel that is not opaque everywhere
    is a cut-out, which that node would pad with whatever colour its transparent pixels hold."""
    if image.shape[0] == 4 and not bool((image[3] >= FULL_MASK).all()):
        raise MicroCinemaInputError(
            f"'subject' has transparency (an RGBA IMAGE): '{PLAIN_NAME}' uses the whole picture, transparent pixels "
            f"included. To cut the subject out, use '{MASKED_NAME}' with its alpha as 'subject_mask' (the stock "
            "'Split Image with Alpha' node gives 1 - alpha: put 'InvertMask' after it)")
    return image[:3]


def check_mask(subject_mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor | None:
    """``subject_mask`` (MASK ``[1, h, w]`` or ``[h, w]``) checked against ``image [3, h, w]`` -> ``[h, w]``, or None
    for a mask that is 1 everywhere (any size: e.g. Load Image of a picture without transparency, through
    InvertMask), which is the same as no mask."""
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
        logging.info(f"{MASKED_NAME}: 'subject_mask' is 1 everywhere (no cut-out): the whole picture is the "
                     "reference, padded to the frame")
        return None
    if subject_box(mask) is None:
        raise MicroCinemaInputError(
            f"'subject_mask' is empty: no pixel is above {MASK_THRESHOLD} (1 marks the subject). Load Image's MASK is "
            "1 - alpha, all 0 for a picture without transparency: put the stock 'InvertMask' node between Load Image "
            "and 'subject_mask' (a cut-out picture then gives its subject; a photo gives 1 everywhere, the whole "
            f"picture padded to the frame), or for a photo use '{PLAIN_NAME}', which takes no mask")
    if tuple(mask.shape) != tuple(image.shape[-2:]):
        raise MicroCinemaInputError(
            f"'subject_mask' is {_size(mask)} but 'subject' is {_size(image)}: the mask must be the subject "
            "picture's own, the same size (Load Image's MASK of the same file, or a segmentation node run on that "
            f"image); resize it with the picture, or use '{PLAIN_NAME}' (no mask: the whole picture)")
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


def subject_conditioning(positive, negative, vae, image: torch.Tensor, mask: torch.Tensor | None, width: int,
                         height: int, frames: int, background: float = 0.5) -> tuple:
    """What both nodes return, for a checked picture ``[3, h, w]`` and mask (None: padded): the two conditionings
    carrying the encoded reference (marked as a subject), the empty video latent and the reference IMAGE."""
    reference = prepare_reference(image, mask, width, height, float(background))[None].movedim(1, -1)
    latent = encode_keyframe(vae, reference, width, height, input_name="subject")
    empty = torch.zeros([frames, 4, height // 8, width // 8])
    return (with_keyframe(positive, latent, source="subject"), with_keyframe(negative, latent, source="subject"),
            {"samples": empty}, reference)


class MicroCinemaSubjectConditioning:
    """Attach the subject's whole picture, padded to the frame, to positive and negative; make the empty latent."""

    SUBJECT_TOOLTIP = ("ONE picture of the subject (Load Image, your graph's VAE Decode), used whole: padded to the "
                       "frame's shape with its border's colour, nothing cropped. For a cut-out (a picture with "
                       f"transparency, or a segmentation mask) use '{MASKED_NAME}'.")

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
                "subject": ("IMAGE", {"tooltip": cls.SUBJECT_TOOLTIP}),
                **cls.MASK_INPUT,
                "width": (keyframe["width"][0], {**keyframe["width"][1], "tooltip": (
                    "Video width in pixels, a multiple of 64; the model's training size (128 for the toy "
                    "models, 320 in the paper).")}),
                "height": (keyframe["height"][0], {**keyframe["height"][1], "tooltip": (
                    "Video height in pixels, a multiple of 64.")}),
                "frames": keyframe["frames"],
                **cls.BACKGROUND_INPUT,
            },
        }

    MASK_INPUT: dict = {}
    BACKGROUND_INPUT: dict = {}
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING", "LATENT", "IMAGE")
    RETURN_NAMES = ("positive", "negative", "latent", "reference")
    OUTPUT_TOOLTIPS = ("positive with the subject reference attached", "negative with the subject reference attached",
                       "an empty video latent, frames in the batch dimension: sample it with KSampler or "
                       "'MicroCinema Sampler', decode it with VAE Decode",
                       "the reference as the model sees it (width x height): preview it to check it")
    FUNCTION = "encode"
    CATEGORY = "MicroCinema"
    DESCRIPTION = ("For a subject-driven (customisation) MicroCinema model: the subject's whole picture, padded to the "
                   "frame as the model was trained on real references, encoded with the VAE and attached to the "
                   "conditioning in the keyframe's place; returns the empty video latent to sample and the prepared "
                   f"reference. For a cut-out subject (a mask) use '{MASKED_NAME}'.")

    @classmethod
    def VALIDATE_INPUTS(cls, width=None, height=None):
        """Sizes not multiples of 64 refused with HTTP 400 before anything runs; linked values (None) are checked when
        the node runs."""
        return MicroCinemaKeyframeConditioning.VALIDATE_INPUTS(width=width, height=height)

    def encode(self, positive, negative, vae, subject, width, height, frames):
        check_video_size(width, height, frames)
        image = opaque_picture(check_subject(subject))
        return subject_conditioning(positive, negative, vae, image, None, width, height, frames)


class MicroCinemaSubjectConditioningMasked(MicroCinemaSubjectConditioning):
    """Attach the subject, cut out with its mask and centred on grey, to positive and negative; make the empty
    latent."""

    SUBJECT_TOOLTIP = ("ONE picture of the subject (Load Image, a segmentation node's image, your graph's VAE "
                       "Decode); 'subject_mask' marks the subject in it.")
    MASK_INPUT = {"subject_mask": ("MASK", {
        "tooltip": "Where the subject is in 'subject' (1 = subject, as segmentation nodes give; same size as the "
                   f"picture). Its box is cut out and scaled to {REFERENCE_SIZE} of the frame on the 'background' "
                   f"grey. {INVERT_HINT}. A mask of 1 everywhere (a photo without transparency, inverted): the whole "
                   "picture, padded to the frame."})}
    BACKGROUND_INPUT = {"background": ("FLOAT", {
        "default": 0.5, "min": 0.0, "max": 1.0, "step": 0.05,
        "tooltip": "Grey level behind the cut-out subject (0 black, 1 white). Training used plain greys of "
                   "0.25..0.95."})}
    DESCRIPTION = ("For a subject-driven (customisation) MicroCinema model: the subject cut out with its mask and "
                   f"centred on a plain grey at {REFERENCE_SIZE} of the frame, as the model was trained, encoded with "
                   "the VAE and attached to the conditioning in the keyframe's place; returns the empty video latent "
                   f"to sample and the prepared reference. Without a mask use '{PLAIN_NAME}'.")

    @classmethod
    def VALIDATE_INPUTS(cls, width=None, height=None, background=None):
        """Sizes not multiples of 64 and a background outside 0..1 (NaN included) refused with HTTP 400 before
        anything runs; linked values (None) are checked when the node runs."""
        size = super().VALIDATE_INPUTS(width=width, height=height)
        if size is not True:
            return size
        if background is not None:
            try:
                check_background(background)
            except MicroCinemaInputError as exc:
                return str(exc)
        return True

    def encode(self, positive, negative, vae, subject, subject_mask, width, height, frames, background):
        check_video_size(width, height, frames)
        check_background(background)
        image = check_subject(subject)[:3]
        mask = check_mask(subject_mask, image)
        return subject_conditioning(positive, negative, vae, image, mask, width, height, frames, background)


NODE_CLASS_MAPPINGS = {"MicroCinemaSubjectConditioning": MicroCinemaSubjectConditioning,
                       "MicroCinemaSubjectConditioningMasked": MicroCinemaSubjectConditioningMasked}
NODE_DISPLAY_NAME_MAPPINGS = {"MicroCinemaSubjectConditioning": PLAIN_NAME,
                              "MicroCinemaSubjectConditioningMasked": MASKED_NAME}
