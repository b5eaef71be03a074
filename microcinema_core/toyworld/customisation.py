"""Toy image-customisation pairs: ``CustomisationSet(sources, split, seed, size).pair(index)``.

A pair is what an image-customisation data set holds (the first objective of ``docs/customisation.md``):

* **reference**: the subject unflipped and in its own colours, either alone on a plain grey (``PLAIN_SHARE`` of
  pairs), centred, its longer side ``REFERENCE_SIZE`` of the frame, or on its own photo (the view of the photo
  centred on it at that size, moved and shrunk to stay inside the photo where it must: no mirrored edges);
* **target**: the same subject pasted into another scene (a random view of another photo or a video still), at
  another size (longer side in ``TARGET_SIZE``), another place (anywhere it fits whole), flipped half the time,
  and the whole picture recoloured (one brightness / contrast / saturation change, as another camera would);
* **caption**: ``"<subject> <where>"`` ("a cat on the moon"), the subject in the photo's own words.

Alongside, for the checks: both masks (where the subject is in each picture), the target's scene without the
subject (``background``: same view, same colour) and the drawn geometry in ``meta``. Every pair is a function of
``(seed, split, index)`` alone. ``split="heldout"`` uses only held-out subjects, scenes and phrasings
(``subjects.py``, ``scenes.py``); ``phrasing`` and the overrides of ``pair`` mix them for the evaluation.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import torch

from .render import camera_views, paste, to_tensor
from .scenes import draw_scene, scene_base, scene_names, scene_picture, scene_view, where
from .sources import Sources
from .subjects import SUBJECT_BOXES, Cutout, cut_out, subject_names

REFERENCE_SIZE = 0.85          # the reference subject's longer side, a fraction of the frame
TARGET_SIZE = (0.35, 0.7)      # the target subject's longer side, a fraction of the frame
PLAIN_SHARE = 0.5              # share of references on a plain grey (the rest: on their own photo)
PLAIN_GREY = (0.25, 0.95)      # the plain background's grey level
BRIGHTNESS, CONTRAST, SATURATION = 0.15, 0.15, 0.2   # the target's colour change, +- around 1


@dataclass
class CustomisationPair:
    reference: torch.Tensor        # [3, S, S] in [0, 1]
    target: torch.Tensor           # [3, S, S] in [0, 1]
    caption: str
    subject: str                   # the subject's photo ("chelsea")
    scene: str                     # the target's scene ("moon", "bunny#37")
    reference_mask: torch.Tensor   # [1, S, S]: the subject's alpha in the reference
    target_mask: torch.Tensor      # [1, S, S]: the subject's alpha in the target
    background: torch.Tensor       # [3, S, S]: the target's scene without the subject
    meta: dict = field(default_factory=dict)


def recolour(image: torch.Tensor, brightness: float, contrast: float, saturation: float) -> torch.Tensor:
    """A per-pixel colour change (saturation around the pixel's grey, contrast around 0.5, then brightness)."""
    grey = image.mean(dim=-3, keepdim=True)
    out = grey + (image - grey) * saturation
    out = 0.5 + (out - 0.5) * contrast
    return (out * brightness).clamp(0, 1)


def subject_extent(cutout: Cutout, longer_side: float) -> tuple:
    """The cut-out's width and height as fractions of the frame when its longer side is ``longer_side``."""
    _, h, w = cutout.image.shape
    return longer_side * w / max(h, w), longer_side * h / max(h, w)


def alpha_at(cutout: Cutout, centre: tuple, width: float, size: int) -> torch.Tensor:
    """The cut-out's alpha drawn into a ``[1, size, size]`` frame at ``centre`` ([-1, 1]) and ``width`` (fraction)."""
    blank = torch.zeros(1, 3, size, size)
    white = torch.ones_like(cutout.image)
    return paste(blank, white, cutout.alpha, np.array([centre], dtype=np.float64), width)[0, :1]


class CustomisationSet:
    def __init__(self, sources: Sources, split: str = "train", seed: int = 0, size: int = 128,
                 phrasing: str | None = None):
        self.sources, self.split, self.seed, self.size = sources, split, seed, size
        self.subjects = subject_names(split)
        self.scenes = scene_names(split)
        self.phrasing = phrasing or split
        self._cutouts: dict = {}

    def rng(self, index: int) -> np.random.Generator:
        key = zlib.crc32(f"customisation/{self.split}".encode())
        return np.random.default_rng([self.seed, key, int(index)])

    def cutout(self, name: str) -> Cutout:
        if name not in self._cutouts:
            self._cutouts[name] = cut_out(self.sources, name)
        return self._cutouts[name]

    def pair(self, index: int, subject: str | None = None, scene: str | None = None) -> CustomisationPair:
        """Pair ``index``; ``subject`` (a photo) and ``scene`` (a photo, a video, or ``"<video>#<frame>"``) override
        the drawn ones."""
        rng = self.rng(index)
        if subject is None:
            subject = self.subjects[int(rng.integers(len(self.subjects)))]
        if scene is None:
            others = [s for s in self.scenes if s != subject]
            scene = others[int(rng.integers(len(others)))]
        if subject not in SUBJECT_BOXES:
            raise KeyError(f"unknown subject {subject!r}; the subjects are {sorted(SUBJECT_BOXES)}")
        if scene_base(scene) == subject:
            raise ValueError(f"a target's scene must be another photo than its subject's, got {scene!r} for {subject!r}")
        scene = draw_scene(self.sources, scene, rng) if "#" not in scene else scene
        cutout = self.cutout(subject)
        reference, reference_mask, reference_meta = self._reference(cutout, rng)
        target, target_mask, background, target_meta = self._target(cutout, scene, rng)
        caption = f"{cutout.words} {where(scene, self.phrasing, rng)}"
        return CustomisationPair(reference, target, caption, subject, scene, reference_mask, target_mask,
                                 background, meta={**reference_meta, **target_meta})

    def _reference(self, cutout: Cutout, rng) -> tuple:
        if rng.uniform() < PLAIN_SHARE:
            width, _ = subject_extent(cutout, REFERENCE_SIZE)
            mask = alpha_at(cutout, (0.0, 0.0), width, self.size)
            grey = float(rng.uniform(*PLAIN_GREY))
            plain = torch.full((1, 3, self.size, self.size), grey)
            image = paste(plain, cutout.image, cutout.alpha, np.zeros((1, 2)), width)[0]
            return image, mask, {"reference_background": "plain", "plain_grey": grey}
        photo = to_tensor(self.sources.pictures[cutout.name])
        _, h, w = photo.shape
        top, left, bottom, right = SUBJECT_BOXES[cutout.name].pixels(h, w)
        # centred on the subject at REFERENCE_SIZE where the photo allows; else the nearest view inside the photo
        half = min(max(bottom - top, right - left) / 2 / REFERENCE_SIZE, min(h, w) / 2)
        cx = float(np.clip((left + right) / 2, half, w - half))
        cy = float(np.clip((top + bottom) / 2, half, h - half))
        image = camera_views(photo, np.array([[cx, cy]]), np.array([half]), np.zeros(1), self.size)[0]
        centre = (((left + right) / 2 - cx) / half, ((top + bottom) / 2 - cy) / half)
        mask = alpha_at(cutout, centre, (right - left) / (2 * half), self.size)
        return image, mask, {"reference_background": "own", "reference_centre": centre}

    def _target(self, cutout: Cutout, scene: str, rng) -> tuple:
        view, view_meta = scene_view(scene_picture(self.sources, scene), rng, self.size)
        longer = float(rng.uniform(*TARGET_SIZE))
        width, height = subject_extent(cutout, longer)
        centre = (float(rng.uniform(-(1 - width), 1 - width)), float(rng.uniform(-(1 - height), 1 - height)))
        flip = bool(rng.integers(2))
        image, alpha = (cutout.image.flip(-1), cutout.alpha.flip(-1)) if flip else (cutout.image, cutout.alpha)
        pasted = paste(view[None], image, alpha, np.array([centre]), width)[0]
        mask = alpha_at(Cutout(cutout.name, image, alpha, cutout.words), centre, width, self.size)
        colour = tuple(float(1 + rng.uniform(-r, r)) for r in (BRIGHTNESS, CONTRAST, SATURATION))
        meta = {"centre": centre, "width": width, "height": height, "size": longer, "flip": flip,
                "colour": colour, "view": view_meta}
        return recolour(pasted, *colour), mask, recolour(view, *colour), meta
