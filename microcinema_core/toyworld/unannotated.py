"""Unannotated toy videos: a small fixed set of ``ToyWorld`` clips whose captions are never used.

The second objective of ``docs/customisation.md`` keeps the temporal model with image-to-video training on
videos that have no text. ``UnannotatedToyVideos(sources, split, count, seed)[i]`` is clip ``i`` of a ``ToyWorld``
with those arguments, frames only (``[N, 3, S, S]`` in [0, 1]; the keyframe is ``frames[N // 2]``). The training
split's clips never show a held-out photo, video, subject or scene (``ToyWorld``'s split, which the held-out
subjects and scenes are drawn from).
"""
from __future__ import annotations

import torch

from .sources import Sources
from .world import ToyWorld


class UnannotatedToyVideos:
    def __init__(self, sources: Sources, split: str = "train", count: int = 256, seed: int = 0, size: int = 128,
                 kind: str = "base", **world_options):
        if count < 1:
            raise ValueError(f"count is how many videos the set holds; it must be >= 1, got {count!r}")
        self.count = count
        self.world = ToyWorld(sources, split, kind, seed, size, **world_options)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < self.count:
            raise IndexError(f"video {index} of a set of {self.count}")
        return self.world.clip(index).frames
