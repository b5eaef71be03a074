"""Temporal super-resolution over a whole video (paper sec. 3.1, "Temporal interpolation model").

The TSR model makes an N-frame clip (N = 5) whose first and last frames are given; run on every pair of
adjacent frames it multiplies the frame rate by N-1 = 4 per pass: 2 fps -> 8 fps -> 32 fps. The given
frames are kept exactly, so F frames become (F-1)*(N-1)+1 (9 -> 33 -> 129).
"""
from __future__ import annotations

import torch

from ..errors import MicroCinemaInputError


def adjacent_pairs(frames: torch.Tensor) -> torch.Tensor:
    """``[F, C, h, w]`` -> ``[F-1, 2, C, h, w]`` (first, last) for every adjacent pair."""
    if frames.ndim != 4 or frames.shape[0] < 2:
        raise MicroCinemaInputError(
            f"TSR needs a video latent [frames >= 2, 4, h, w], got {tuple(frames.shape)}")
    return torch.stack([frames[:-1], frames[1:]], dim=1)


def assemble_clips(pairs: torch.Tensor, clips: torch.Tensor, clip_frames: int) -> torch.Tensor:
    """Join per-pair clips ``[P*N, C, h, w]`` into one video; each clip's ends are the given frames."""
    clips = clips.view(pairs.shape[0], clip_frames, *clips.shape[1:]).clone()
    clips[:, 0] = pairs[:, 0].to(clips.dtype)
    clips[:, -1] = pairs[:, 1].to(clips.dtype)
    return torch.cat([clips[:, :-1].flatten(0, 1), clips[-1:, -1]], dim=0)


def interpolated_length(frames: int, clip_frames: int, passes: int = 1) -> int:
    for _ in range(passes):
        frames = (frames - 1) * (clip_frames - 1) + 1
    return frames


@torch.no_grad()
def interpolate_video(model, frames: torch.Tensor, context: torch.Tensor, *, passes: int = 1, steps: int = 50,
                      cfg: float = 1.0, uncond_context=None, gamma: float = 0.02, seed: int = 0,
                      pairs_per_batch: int = 8, callback=None) -> torch.Tensor:
    """``passes`` TSR passes over a video latent ``[F, 4, h, w]`` with a TSR model (CFG 1.0 as in tab. 3).

    ``context``: ``[1, 77, D]``, shared by every pair. Each pass samples its pairs in batches of
    ``pairs_per_batch`` with seed ``seed + pass`` (batch b uses ``seed + pass + 1000*b``).
    """
    from .pipeline import generate

    if model.config.kind != "tsr":
        raise MicroCinemaInputError(f"interpolate_video needs a TSR model, got a {model.config.kind} model")
    clip_frames = model.config.num_frames
    for index in range(passes):
        pairs = adjacent_pairs(frames)
        clips = []
        for batch, start in enumerate(range(0, pairs.shape[0], pairs_per_batch)):
            chunk = pairs[start:start + pairs_per_batch]
            count = chunk.shape[0]
            clips.append(generate(
                model, chunk, context.expand(count, -1, -1),
                None if uncond_context is None else uncond_context.expand(count, -1, -1),
                num_frames=clip_frames, steps=steps, cfg=cfg, gamma=gamma, seed=seed + index + 1000 * batch,
                callback=callback))
        frames = assemble_clips(pairs, torch.cat(clips), clip_frames)
    return frames
