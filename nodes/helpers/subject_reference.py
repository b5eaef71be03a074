"""The subject reference the way the customisation model saw it in training, on plain tensors (no ComfyUI).

A customisation model (``config.appearance_input = "subject"``, docs/customisation.md) was trained on references
made two ways (``microcinema_core/toyworld/customisation.py``, ``training/customisation_data.py``):

* **cut out**: the subject, masked, centred on a plain grey with its longer side ``REFERENCE_SIZE`` of the frame;
* **whole picture**: the picture padded to a square with the mean colour of its border (nothing cropped, so the
  subject stays whole), then resized.

``prepare_reference(image, mask, width, height, background)`` makes the first when a mask is given (the node
"MicroCinema Subject Conditioning (masked)") and the second when not ("MicroCinema Subject Conditioning"). For a frame that is not square, "longer side 0.85 of the frame" becomes "fits inside 0.85 of the frame's
width and height", and the padding goes to the frame's aspect ratio: both are the training rules at width = height.

Kept free of ComfyUI and of the core's toy world (``nodes`` may not import ``toyworld`` or ``training``: the layering
of docs/architecture.md); the tests check ``REFERENCE_SIZE`` against the toy world's and the padding against
``training.customisation_data.pad_resize``. It could move to the core (e.g. ``microcinema_core/diffusion`` or a
new ``reference`` module) once a core driver needs it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...microcinema_core.errors import MicroCinemaInputError

REFERENCE_SIZE = 0.85   # the cut-out subject's longer side, a fraction of the frame (toyworld.customisation)
MASK_THRESHOLD = 0.05   # a pixel is part of the subject's box where the mask is above this (soft edges included)
FULL_MASK = 0.999       # a mask at least this everywhere marks the whole picture: the same as no mask
MIN_SUBJECT_SIDE = 8    # px: a subject box smaller than this on its longer side carries no picture


def _resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``[C, h, w]`` -> ``[C, height, width]``, bilinear, antialiased where it shrinks (as the training data)."""
    if tuple(image.shape[-2:]) == (height, width):
        return image
    shrink = image.shape[-2] > height or image.shape[-1] > width
    return F.interpolate(image[None], size=(height, width), mode="bilinear", antialias=shrink,
                         align_corners=False)[0]


def border_mean(image: torch.Tensor) -> torch.Tensor:
    """The mean colour ``[C]`` of the outermost rows and columns of ``[C, h, w]`` (corners counted twice, as
    ``training.customisation_data.pad_resize``)."""
    return torch.cat([image[:, 0], image[:, -1], image[:, :, 0], image[:, :, -1]], dim=1).mean(dim=1)


def padded_reference(image: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """``[3, h, w]`` -> ``[3, height, width]``: padded to the frame's aspect ratio with its border's mean colour,
    centred, then resized. Nothing is cropped."""
    _, h, w = image.shape
    if w * height >= h * width:   # wider than the frame: pad above and below
        side_h, side_w = max(h, round(w * height / width)), w
    else:
        side_h, side_w = h, max(w, round(h * width / height))
    canvas = border_mean(image)[:, None, None].expand(3, side_h, side_w).clone()
    top, left = (side_h - h) // 2, (side_w - w) // 2
    canvas[:, top:top + h, left:left + w] = image
    return _resize(canvas, height, width).clamp(0.0, 1.0)


def subject_box(mask: torch.Tensor) -> tuple | None:
    """``(top, left, bottom, right)`` (bottom/right exclusive) of the mask's pixels above ``MASK_THRESHOLD``;
    None when there are none."""
    inside = mask > MASK_THRESHOLD
    rows, cols = inside.any(dim=1).nonzero(), inside.any(dim=0).nonzero()
    if rows.numel() == 0:
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def cut_out_reference(image: torch.Tensor, mask: torch.Tensor, width: int, height: int,
                      background: float) -> torch.Tensor:
    """``[3, h, w]`` and its mask ``[h, w]`` (1 = subject) -> ``[3, height, width]``: the mask's box, masked,
    centred on plain ``background`` grey, its longer side ``REFERENCE_SIZE`` of the frame."""
    box = subject_box(mask)
    if box is None:
        raise MicroCinemaInputError("the mask is empty")
    top, left, bottom, right = box
    box_h, box_w = bottom - top, right - left
    scale = REFERENCE_SIZE * min(width / box_w, height / box_h)
    new_h, new_w = max(1, round(box_h * scale)), max(1, round(box_w * scale))
    layer = torch.cat([image[:, top:bottom, left:right], mask[None, top:bottom, left:right]])
    layer = _resize(layer, new_h, new_w)
    pixels, alpha = layer[:3].clamp(0.0, 1.0), layer[3:].clamp(0.0, 1.0)
    out = torch.full((3, height, width), float(background), dtype=image.dtype)
    y, x = (height - new_h) // 2, (width - new_w) // 2
    region = out[:, y:y + new_h, x:x + new_w]
    out[:, y:y + new_h, x:x + new_w] = region * (1 - alpha) + pixels * alpha
    return out


def prepare_reference(image: torch.Tensor, mask: torch.Tensor | None, width: int, height: int,
                      background: float = 0.5) -> torch.Tensor:
    """The reference ``[3, height, width]`` in [0, 1] for one subject picture ``image [3, h, w]`` in [0, 1] and its
    optional ``mask [h, w]`` (1 = subject, same size): cut out on ``background`` grey with a mask, padded without.
    A mask that is ``FULL_MASK`` or more everywhere (any size) counts as no mask. The caller checks the inputs
    (``nodes_subject.check_subject``, ``check_mask``) and names them in its errors."""
    image = image.float().clamp(0.0, 1.0)
    if mask is None or bool((mask >= FULL_MASK).all()):
        return padded_reference(image, width, height)
    return cut_out_reference(image, mask.float().clamp(0.0, 1.0), width, height, background)
