"""Scenes for customisation targets: the backgrounds a subject is pasted into, and how a caption names them.

A scene is a toy-world photo (``"grass"``) or a still of a toy-world video (``"bunny#37"``). Each has
"where" phrases, the second half of a target's caption ("a cat" + " on the moon"): training phrasings and
held-out phrasings, as ``captions.py`` has for motions.

Split: the held-out scenes are the moon and the temple (photos in ``sources.HELD_OUT_PICTURES``) and stills of the
held-out video ``carphone`` (``sources.HELD_OUT_VIDEOS``): no toy training clip and no training pair shows them.
"""
from __future__ import annotations

import numpy as np
import torch

from .render import camera_views, to_tensor
from .sources import Sources

# scene -> (training "where" phrases, held-out "where" phrases)
WHERE = {
    "gravel": (["on gravel", "lying on gravel"], ["on a bed of small stones"]),
    "grass": (["on grass", "in the grass"], ["on a green lawn"]),
    "brick": (["in front of a brick wall", "against a brick wall"], ["before a wall of bricks"]),
    "hubble": (["in deep space", "floating among galaxies"], ["out among the distant stars"]),
    "bunny": (["in a cartoon meadow", "in a meadow"], ["in a grassy cartoon field"]),
    "bikes": (["on a street", "on a city street"], ["out on the road"]),
    # held out
    "moon": (["on the moon", "on the lunar surface"], ["standing in the grey dust of the moon"]),
    "china": (["in front of a temple", "by a temple"], ["beside an old pagoda"]),
    "carphone": (["in a car", "inside a car"], ["in the seat of a car"]),
}
VIDEO_SCENES = ("bunny", "bikes", "carphone")
HELD_OUT_SCENES = ("moon", "china", "carphone")
VIEW_FRACTION = (0.6, 1.0)   # a scene view's side, as a fraction of the scene picture's short side


def scene_base(scene: str) -> str:
    """The photo or video a scene comes from (``"bunny#37"`` -> ``"bunny"``)."""
    return scene.partition("#")[0]


def scene_names(split: str) -> list:
    """The photos and videos a split's scenes come from, sorted."""
    if split == "train":
        return sorted(n for n in WHERE if n not in HELD_OUT_SCENES)
    if split == "heldout":
        return sorted(HELD_OUT_SCENES)
    raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")


def where(scene: str, phrasing: str, rng) -> str:
    """One "where" phrase for ``scene``; ``phrasing`` ``"train"`` or ``"heldout"`` picks the list."""
    train, held = WHERE[scene_base(scene)]
    if phrasing not in ("train", "heldout"):
        raise ValueError(f"phrasing must be 'train' or 'heldout', got {phrasing!r}")
    phrases = train if phrasing == "train" else held
    return phrases[int(rng.integers(len(phrases)))]


def draw_scene(sources: Sources, base: str, rng) -> str:
    """A scene of ``base``: the photo itself, or a random still (``"<video>#<frame>"``) of a video."""
    if base in VIDEO_SCENES:
        return f"{base}#{int(rng.integers(len(sources.videos[base])))}"
    return base


def scene_picture(sources: Sources, scene: str) -> torch.Tensor:
    """The scene's whole picture, float ``[3, H, W]`` in [0, 1]."""
    base, _, frame = scene.partition("#")
    if frame:
        return to_tensor(sources.videos[base][int(frame)])
    return to_tensor(sources.pictures[base])


def scene_view(picture: torch.Tensor, rng, size: int) -> tuple:
    """A random square view of ``picture`` (side ``VIEW_FRACTION`` of its short side, anywhere inside it),
    ``size`` px; returns ``(view [3, size, size], {"centre": (x, y) px, "half": px})``."""
    _, h, w = picture.shape
    half = min(h, w) / 2 * rng.uniform(*VIEW_FRACTION)
    cx = rng.uniform(half, w - half)
    cy = rng.uniform(half, h - half)
    view = camera_views(picture, np.array([[cx, cy]]), np.array([half]), np.zeros(1), size)[0]
    return view, {"centre": (float(cx), float(cy)), "half": float(half)}
