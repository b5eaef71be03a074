"""What AppearNet sees (paper sec. 3.1-3.2, tab. 3 "Extending into video").

Base model: the centre-frame latent repeated, ``[z^c, ..., z^c]``. TSR model: the latents linearly
interpolated between the first and the last frame. Frames go in the batch dimension, frame index fastest.
"""
from __future__ import annotations

import torch

from ..errors import MicroCinemaInputError


def appearance_sequence(kind: str, cond_latents: torch.Tensor, num_frames: int, min_frames: int = 2) -> torch.Tensor:
    """``base``: ``[B,C,h,w] -> [B*N,C,h,w]``; ``tsr``: ``[B,2,C,h,w]`` (first, last) ``-> [B*N,C,h,w]``.
    ``min_frames`` 1 only for a model that takes one-frame videos (``MicroCinemaModel.single_frames``)."""
    if num_frames < min_frames:
        raise MicroCinemaInputError(f"num_frames must be at least {min_frames}, got {num_frames}")
    if kind == "base":
        if cond_latents.ndim != 4:
            raise MicroCinemaInputError(
                f"the keyframe latent must be [batch, 4, h, w], got {tuple(cond_latents.shape)}")
        return cond_latents.repeat_interleave(num_frames, dim=0)
    if kind == "tsr":
        if cond_latents.ndim != 5 or cond_latents.shape[1] != 2:
            raise MicroCinemaInputError(
                f"TSR needs [batch, 2, 4, h, w] (first and last frame latents), got {tuple(cond_latents.shape)}")
        w = torch.linspace(0, 1, num_frames, dtype=cond_latents.dtype, device=cond_latents.device)
        w = w.view(1, num_frames, 1, 1, 1)
        first, last = cond_latents[:, :1], cond_latents[:, 1:]
        return ((1 - w) * first + w * last).flatten(0, 1)
    raise MicroCinemaInputError(f"model kind must be 'base' or 'tsr', got {kind!r}")
