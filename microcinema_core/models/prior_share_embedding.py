"""The prior-share embedding: a toy-scale addition to the paper's network (off in every paper config).

``config.prior_share_embedding``: every frame's timestep embedding also gets ``MLP(sinusoid(1000 s))``, with ``s``
the share of the appearance latent in the network's input, one number per video:

    s = <x - mean(x), a - mean(a)> / <a - mean(a), a - mean(a)>

over the video's frames, channels and pixels (means per frame and channel, so a colour shift of the noise does not
count). At t = 999 of a zero-terminal-SNR schedule the input is the start noise ``eps_n + (lambda + gamma) z^c``
(appendix B.3) and ``s`` reads ``lambda + gamma`` to about +-0.01 on a 9 x 4 x 16 x 16 clip; lower, it also holds
the clip's own likeness to the keyframe (``sqrt(abar)`` of it). Why (docs/model_cards.md, issue 35): trained with
the prior's amount coupled to the motion's size (``training/objective.py`` ``prior_lambdas``), a network must read
that amount from its input to let gamma, the paper's inference knob, set the motion at the step where the motion
is decided; a small model did not learn to compute that global correlation itself in 2,000 CPU steps. The
sampler and the prior are untouched: gamma still only moves the start's mean.

The last layer starts at zero like every new layer (a checkpoint without it behaves the same once it is added).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..config import MicroCinemaConfig
from ..nn.embeddings import sinusoidal_embedding
from ..nn.ops import resolve_operations

SHARE_SCALE = 1000.0   # s in "timestep" units for the sinusoid: 0.01 of share = 10 units


def prior_share(x: torch.Tensor, appearance: torch.Tensor, num_frames: int) -> torch.Tensor:
    """``x``, ``appearance`` ``[B*N, C, h, w]`` -> ``[B]``: the least-squares share of ``appearance`` in ``x``
    per video, both centred per frame and channel (0 when the appearance is flat)."""
    videos = x.shape[0] // num_frames
    xs = x.float().reshape(videos, num_frames, x.shape[1], -1)
    ref = appearance.float().reshape(videos, num_frames, appearance.shape[1], -1)
    xs = xs - xs.mean(dim=-1, keepdim=True)
    ref = ref - ref.mean(dim=-1, keepdim=True)
    return (xs * ref).sum(dim=(1, 2, 3)) / (ref * ref).sum(dim=(1, 2, 3)).clamp(min=1e-6)


class PriorShareEmbedding(nn.Module):
    def __init__(self, config: MicroCinemaConfig, operations=None):
        super().__init__()
        ops = resolve_operations(operations)
        self.channels = config.model_channels
        dim = config.model_channels * 4
        self.mlp = nn.Sequential(ops.Linear(self.channels, dim), nn.SiLU(), ops.Linear(dim, dim))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, x: torch.Tensor, appearance: torch.Tensor, num_frames: int, dtype: torch.dtype) -> torch.Tensor:
        """-> ``[B*N, 4C]`` in ``dtype`` (the forward pass's), the same row for every frame of a video."""
        share = prior_share(x, appearance, num_frames).repeat_interleave(num_frames)
        return self.mlp(sinusoidal_embedding(share * SHARE_SCALE, self.channels).to(dtype))
