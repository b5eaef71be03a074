"""Builds SD2.1's block lists (encoder, middle, decoder) with temporal layers, and runs one block.

The same builders make the main branch and AppearNet's copy of its encoder and middle, so the two
stay structurally identical (AppearNet is initialised from the main branch's weights, sec. 3.2).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..config import MicroCinemaConfig
from ..nn.ops import resolve_operations
from ..nn.spatial import Downsample, ResBlock, SpatialTransformer, Upsample


class VideoBlock(nn.ModuleList):
    """One entry of ``input_blocks`` / ``middle_block`` / ``output_blocks``: layers applied in order."""

    def forward(self, h, emb, context, num_frames, frames_share_context, spade_feature=None):
        for layer in self:
            if isinstance(layer, ResBlock):
                h = layer(h, emb, num_frames, spade_feature)
            elif isinstance(layer, SpatialTransformer):
                h = layer(h, context, num_frames, frames_share_context)
            else:
                h = layer(h)
        return h


def time_embedding_mlp(config: MicroCinemaConfig, operations=None) -> nn.Sequential:
    ops = resolve_operations(operations)
    dim = config.model_channels * 4
    return nn.Sequential(ops.Linear(config.model_channels, dim), nn.SiLU(), ops.Linear(dim, dim))


def _res_block(config, channels, out_channels, spade_feature_channels=None, operations=None):
    return ResBlock(
        channels, config.model_channels * 4, out_channels, norm_groups=config.norm_groups,
        temporal_kernel=config.temporal_conv_kernel, spade_feature_channels=spade_feature_channels,
        operations=operations,
    )


def _transformer(config, channels, operations=None):
    heads = max(1, channels // config.num_head_channels)
    return SpatialTransformer(
        channels, heads, config.num_head_channels, config.context_dim, norm_groups=config.norm_groups,
        temporal_attention=config.temporal_attention, temporal_max_frames=config.temporal_max_frames,
        operations=operations,
    )


def encoder_channels(config: MicroCinemaConfig) -> list:
    """Output channels after each input block (also the skip channels, and AppearNet's feature channels)."""
    channels = [config.model_channels]
    for level, mult in enumerate(config.channel_mult):
        channels += [config.model_channels * mult] * config.num_res_blocks
        if level != len(config.channel_mult) - 1:
            channels.append(config.model_channels * mult)
    return channels


def build_encoder(config: MicroCinemaConfig, in_channels: int, spade: bool = False, operations=None) -> nn.ModuleList:
    """``input_blocks``; with ``spade`` each ResBlock gets a SPADE layer fed by the same-index feature."""
    ops = resolve_operations(operations)
    feature_channels = encoder_channels(config)
    blocks = nn.ModuleList([VideoBlock([ops.Conv2d(in_channels, config.model_channels, 3, padding=1)])])
    ch = config.model_channels
    for level, mult in enumerate(config.channel_mult):
        for _ in range(config.num_res_blocks):
            out = config.model_channels * mult
            spade_ch = feature_channels[len(blocks)] if spade else None
            layers = [_res_block(config, ch, out, spade_ch, ops)]
            ch = out
            if level in config.attention_levels:
                layers.append(_transformer(config, ch, ops))
            blocks.append(VideoBlock(layers))
        if level != len(config.channel_mult) - 1:
            blocks.append(VideoBlock([Downsample(ch, operations=ops)]))
    return blocks


def build_middle(config: MicroCinemaConfig, spade: bool = False, operations=None) -> VideoBlock:
    ops = resolve_operations(operations)
    ch = config.model_channels * config.channel_mult[-1]
    spade_ch = ch if spade else None
    return VideoBlock([_res_block(config, ch, ch, spade_ch, ops), _transformer(config, ch, ops),
                       _res_block(config, ch, ch, spade_ch, ops)])


def build_decoder(config: MicroCinemaConfig, spade: bool = False, operations=None) -> nn.ModuleList:
    """``output_blocks``; block ``j`` consumes skip ``len(encoder)-1-j`` and is SPADE-fed by that feature."""
    ops = resolve_operations(operations)
    skips = encoder_channels(config)
    ch = config.model_channels * config.channel_mult[-1]
    blocks = nn.ModuleList()
    for level, mult in reversed(list(enumerate(config.channel_mult))):
        for i in range(config.num_res_blocks + 1):
            skip_ch = skips.pop()
            out = config.model_channels * mult
            layers = [_res_block(config, ch + skip_ch, out, skip_ch if spade else None, ops)]
            ch = out
            if level in config.attention_levels:
                layers.append(_transformer(config, ch, ops))
            if level and i == config.num_res_blocks:
                layers.append(Upsample(ch, operations=ops))
            blocks.append(VideoBlock(layers))
    return blocks


def run_block(block, checkpointing: bool, *args):
    """Run a block, through activation checkpointing while training with it enabled."""
    if checkpointing and torch.is_grad_enabled():
        from torch.utils.checkpoint import checkpoint

        return checkpoint(block, *args, use_reentrant=False)
    return block(*args)
