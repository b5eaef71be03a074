"""Time-reversal augmentation (``train.reverse_rate``; not in the paper): a fraction of base clips is played
backwards and captioned with the reversed caption the cache carries (``LatentCache.reversed_text``).

The base clip's keyframe is its centre frame, so a reversed clip keeps the keyframe and shows the opposite
motion: the model sees the same keyframe moving both ways and can only tell which from the text
(``experiments/reversal.py`` writes the captions and says why). The draw is seeded by (seed, step, slot) like every
other per-sample choice, so a resumed or split run reverses the same clips.
"""
from __future__ import annotations

import torch

from .data_order import sample_generator

SEED_OFFSET = 7919   # a stream of its own: the objective's draws (t, noise, dropout) stay as they were


def reverse_some(latents: torch.Tensor, text: torch.Tensor, indices: list[int], slots: list[int],
                 reversed_text: dict, rate: float, seed: int, step: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``latents [B, N, C, h, w]``, ``text [B, 77, D]`` -> the same with some clips reversed, and how many."""
    latents, text = latents.clone(), text.clone()
    count = 0
    for b, (index, slot) in enumerate(zip(indices, slots)):
        g = sample_generator(seed + SEED_OFFSET, step, slot)
        if bool(reversed_text["reversible"][index]) and bool(torch.rand((), generator=g) < rate):
            latents[b] = latents[b].flip(0)
            text[b] = reversed_text["text"][index].to(text.dtype)
            count += 1
    return latents, text, count
