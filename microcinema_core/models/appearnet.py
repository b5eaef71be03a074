"""AppearNet: a trainable copy of the 3D U-Net's encoder and middle (paper sec. 3.2, ControlNet-like).

Input: the appearance sequence (``[z^c]*N`` for the base model, first/last-frame interpolation for TSR),
the timestep and the text. Output: its hidden state after every input block and after the middle, which
:class:`AppearanceInjection` turns into the additive signals and the main branch's SPADE layers use.
"""
from __future__ import annotations

from typing import Callable, List, Optional

import torch
import torch.nn as nn

from ..config import MicroCinemaConfig
from ..nn.embeddings import sinusoidal_embedding
from ..nn.ops import resolve_operations
from .blocks import build_encoder, build_middle, encoder_channels, run_block, time_embedding_mlp
from .unet3d import AppearanceSignals


class AppearNet(nn.Module):
    def __init__(self, config: MicroCinemaConfig, operations=None):
        super().__init__()
        ops = resolve_operations(operations)
        self.config = config
        self.gradient_checkpointing = False
        self.time_embed = time_embedding_mlp(config, ops)
        self.input_blocks = build_encoder(config, config.in_channels, operations=ops)
        self.middle_block = build_middle(config, operations=ops)

    def forward(self, appearance, timesteps, context, num_frames, frames_share_context,
                between_blocks: Optional[Callable[[], None]] = None) -> List[torch.Tensor]:
        """``between_blocks()`` runs before every block (the host's Cancel check; it may raise)."""
        emb = self.time_embed(sinusoidal_embedding(timesteps, self.config.model_channels).to(appearance.dtype))
        features = []
        h = appearance
        for block in self.input_blocks:
            if between_blocks is not None:
                between_blocks()
            h = run_block(block, self.gradient_checkpointing, h, emb, context, num_frames, frames_share_context)
            features.append(h)
        if between_blocks is not None:
            between_blocks()
        h = run_block(self.middle_block, self.gradient_checkpointing, h, emb, context, num_frames, frames_share_context)
        features.append(h)
        return features


def zero_conv(channels: int, operations=None) -> nn.Conv2d:
    conv = resolve_operations(operations).Conv2d(channels, channels, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class AppearanceInjection(nn.Module):
    """Zero-initialised 1x1 convolutions from AppearNet features to the main branch (sec. 3.2).

    ``add_dec``: into the decoder (its skip inputs) and the middle, as ControlNet does.
    ``add_encdec`` / ``add_encdec_spade``: also into the encoder's hidden states at the same scale.
    """

    def __init__(self, config: MicroCinemaConfig, operations=None):
        super().__init__()
        ops = resolve_operations(operations)
        channels = encoder_channels(config)
        middle = config.model_channels * config.channel_mult[-1]
        self.into_encoder = config.injection in ("add_encdec", "add_encdec_spade")
        self.encoder = nn.ModuleList([zero_conv(c, ops) for c in channels]) if self.into_encoder else None
        self.decoder = nn.ModuleList([zero_conv(c, ops) for c in channels])
        self.middle = zero_conv(middle, ops)
        self.use_spade = config.injection == "add_encdec_spade"

    def forward(self, features: List[torch.Tensor]) -> AppearanceSignals:
        encoder_feats, middle_feat = features[:-1], features[-1]
        return AppearanceSignals(
            features=features if self.use_spade else None,
            encoder_add=[conv(f) for conv, f in zip(self.encoder, encoder_feats)] if self.encoder is not None else None,
            decoder_add=[conv(f) for conv, f in zip(self.decoder, encoder_feats)],
            middle_add=self.middle(middle_feat),
        )
