"""The main branch: SD2.1-base U-Net inflated to 3D (paper sec. 3.1, fig. 2), with injection points."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn

from ..config import MicroCinemaConfig
from ..nn.embeddings import sinusoidal_embedding
from ..nn.ops import resolve_operations
from .blocks import build_decoder, build_encoder, build_middle, run_block, time_embedding_mlp


@dataclass
class AppearanceSignals:
    """What AppearNet hands the main branch at one forward pass (sec. 3.2, fig. 3).

    ``features[i]`` is AppearNet's output after input block ``i`` (``features[-1]``: middle), the
    SPADE input of the main ResBlocks at that scale. The ``*_add`` lists are the zero-conv projections
    added to the encoder hidden states, to the decoder's skip inputs, and to the middle output.
    """

    features: Optional[Sequence[torch.Tensor]] = None
    encoder_add: Optional[Sequence[torch.Tensor]] = None
    decoder_add: Optional[Sequence[torch.Tensor]] = None
    middle_add: Optional[torch.Tensor] = None


def _no_check() -> None:
    pass


class UNet3D(nn.Module):
    def __init__(self, config: MicroCinemaConfig, extra_in_channels: int = 0, spade: bool = False, operations=None):
        """``operations``: the layer namespace (``nn/ops.py``; None: plain ``torch.nn``)."""
        super().__init__()
        ops = resolve_operations(operations)
        self.config = config
        self.gradient_checkpointing = False
        self.time_embed = time_embedding_mlp(config, ops)
        self.input_blocks = build_encoder(config, config.in_channels + extra_in_channels, spade=spade, operations=ops)
        self.middle_block = build_middle(config, spade=spade, operations=ops)
        self.output_blocks = build_decoder(config, spade=spade, operations=ops)
        self.out = nn.Sequential(
            ops.GroupNorm(config.norm_groups, config.model_channels), nn.SiLU(),
            ops.Conv2d(config.model_channels, config.out_channels, 3, padding=1),
        )

    def embed_time(self, timesteps: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.time_embed(sinusoidal_embedding(timesteps, self.config.model_channels).to(dtype))

    def forward(self, x, emb, context, num_frames, frames_share_context, signals: Optional[AppearanceSignals] = None,
                between_blocks: Optional[Callable[[], None]] = None):
        """``between_blocks()`` runs before every block (the host's Cancel check; it may raise)."""
        signals = signals or AppearanceSignals()
        check = between_blocks or _no_check
        feats = signals.features
        ckpt = self.gradient_checkpointing
        skips = []
        h = x
        for i, block in enumerate(self.input_blocks):
            check()
            h = run_block(block, ckpt, h, emb, context, num_frames, frames_share_context, feats[i] if feats else None)
            if signals.encoder_add is not None:
                h = h + signals.encoder_add[i]
            skips.append(h)
        check()
        h = run_block(self.middle_block, ckpt, h, emb, context, num_frames, frames_share_context,
                      feats[-1] if feats else None)
        if signals.middle_add is not None:
            h = h + signals.middle_add
        for block in self.output_blocks:
            index = len(skips) - 1
            skip = skips.pop()
            if signals.decoder_add is not None:
                skip = skip + signals.decoder_add[index]
            h = torch.cat([h, skip], dim=1)
            check()
            h = run_block(block, ckpt, h, emb, context, num_frames, frames_share_context,
                          feats[index] if feats else None)
        return self.out(h)
