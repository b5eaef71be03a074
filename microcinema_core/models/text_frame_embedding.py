"""The text-and-frame embedding: a toy-scale addition to the paper's network (off in every paper config).

``config.text_frame_embedding``: every frame's timestep embedding also gets

    e_f = MLP([mean of the prompt's token vectors, sinusoid(f - (N-1)/2)])

so each ResBlock at every scale learns, per frame, which way and how far that frame sits from the centre
keyframe *for this prompt* (a motion code). In SD2.1 the text reaches the network only through
cross-attention; at the toy's 8x8 latent that sits at the 4x4 and 2x2 levels, and a 9.6 M-parameter model
trained on 2 CPU cores did not learn to turn direction words into motion through it (docs/model_cards.md).
SDXL adds a pooled text vector to the time embedding in the same way; the frame offset is what lets the MLP
say "this frame is shifted left by three steps" rather than only "the clip moves left".

The pooled vector is computed here from the conditioning itself (the mean of its non-zero token rows: the
MiniLM encoder zeroes the padding), so a host passes nothing new. The last layer starts at zero like every
new layer (a checkpoint without it behaves the same once it is added); trainers wake it (training/trainer.py).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..config import MicroCinemaConfig
from ..nn.embeddings import sinusoidal_embedding
from ..nn.ops import resolve_operations


def pooled_text(context: torch.Tensor) -> torch.Tensor:
    """``[B, T, D] -> [B, D]``: the mean of the token rows that are not all zero (a zero vector if none are)."""
    real = (context != 0).any(dim=-1, keepdim=True).to(context.dtype)
    return (context * real).sum(dim=1) / real.sum(dim=1).clamp(min=1.0)


class TextFrameEmbedding(nn.Module):
    def __init__(self, config: MicroCinemaConfig, operations=None):
        super().__init__()
        ops = resolve_operations(operations)
        self.position_channels = config.model_channels
        dim = config.model_channels * 4
        self.mlp = nn.Sequential(ops.Linear(config.context_dim + self.position_channels, dim), nn.SiLU(),
                                 ops.Linear(dim, dim))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, context: torch.Tensor, num_frames: int, frames_share_context: bool,
                batch_frames: int) -> torch.Tensor:
        """``context``: one row per video when ``frames_share_context``, else one per frame -> ``[frames, 4C]``."""
        pooled = pooled_text(context)
        if frames_share_context:
            pooled = pooled.repeat_interleave(num_frames, dim=0)
        offsets = torch.arange(num_frames, device=context.device, dtype=torch.float32) - (num_frames - 1) / 2
        positions = sinusoidal_embedding(offsets.repeat(batch_frames // num_frames), self.position_channels)
        return self.mlp(torch.cat([pooled, positions.to(pooled.dtype)], dim=-1))
