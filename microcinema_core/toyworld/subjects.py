"""Subjects for customisation: a region of a toy-world photo and its soft mask, cut out.

Each subject is a hand-placed box on one photo (fractions of the photo's width and height, so the table holds at
any resolution) and its mask is the soft ellipse inscribed in that box (``render.soft_ellipse``). Fourteen photos,
reviewed by eye, fixed in this table: deterministic, independent of any segmentation library, and right on the
photos where automatic saliency has nothing to find (a cat's face filling the frame, the moon's surface, a tray
of coins). The caption words are the photo's own (``Sources.subject``).

Split: the held-out subjects are six of the photos that ``sources.HELD_OUT_PICTURES`` already keeps out of every
toy training clip, so neither the customisation pairs nor the toy videos of the training split ever show them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .render import soft_ellipse, to_tensor
from .sources import Sources


@dataclass(frozen=True)
class Box:
    """A subject's place in its photo: centre and size as fractions of the photo's width / height."""
    cx: float
    cy: float
    w: float
    h: float

    def pixels(self, height: int, width: int) -> tuple:
        """``(top, left, bottom, right)`` in pixels, inside the photo."""
        top = max(0, round((self.cy - self.h / 2) * height))
        left = max(0, round((self.cx - self.w / 2) * width))
        bottom = min(height, round((self.cy + self.h / 2) * height))
        right = min(width, round((self.cx + self.w / 2) * width))
        return top, left, bottom, right


SUBJECT_BOXES = {
    "astronaut": Box(0.37, 0.55, 0.62, 0.90),
    "camera": Box(0.45, 0.55, 0.75, 0.90),
    "flower": Box(0.495, 0.47, 0.42, 0.60),
    "motorcycle": Box(0.52, 0.61, 0.84, 0.72),
    "retina": Box(0.50, 0.50, 1.00, 1.00),
    "logo": Box(0.50, 0.50, 0.98, 0.98),
    "coins": Box(0.50, 0.50, 0.92, 0.92),
    "color": Box(0.50, 0.50, 1.00, 1.00),
    # held out
    "chelsea": Box(0.52, 0.50, 0.85, 1.00),
    "coffee": Box(0.48, 0.52, 0.72, 0.95),
    "rocket": Box(0.50, 0.62, 0.16, 0.75),
    "grace_hopper": Box(0.55, 0.50, 0.90, 1.00),
    "china": Box(0.29, 0.50, 0.50, 0.92),
    "moon": Box(0.50, 0.50, 0.60, 0.60),
}
HELD_OUT_SUBJECTS = ("chelsea", "coffee", "rocket", "grace_hopper", "china", "moon")
MASK_SOFTNESS = 0.12


@dataclass
class Cutout:
    """A subject cut out of its photo: ``image [3, h, w]`` in [0, 1], ``alpha [1, h, w]``, its caption words."""
    name: str
    image: torch.Tensor
    alpha: torch.Tensor
    words: str


def subject_names(split: str) -> list:
    """The subjects of a split (``"train"`` or ``"heldout"``), sorted."""
    if split == "train":
        return sorted(n for n in SUBJECT_BOXES if n not in HELD_OUT_SUBJECTS)
    if split == "heldout":
        return sorted(HELD_OUT_SUBJECTS)
    raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")


def cut_out(sources: Sources, name: str) -> Cutout:
    """The subject ``name``: its box cropped from the photo, with the soft ellipse inscribed in the box as alpha."""
    if name not in SUBJECT_BOXES:
        raise KeyError(f"unknown subject {name!r}; the subjects are {sorted(SUBJECT_BOXES)}")
    photo = to_tensor(sources.pictures[name])
    _, height, width = photo.shape
    top, left, bottom, right = SUBJECT_BOXES[name].pixels(height, width)
    image = photo[:, top:bottom, left:right].contiguous()
    alpha = soft_ellipse(bottom - top, right - left, MASK_SOFTNESS)
    return Cutout(name, image, alpha, sources.subject(name))
