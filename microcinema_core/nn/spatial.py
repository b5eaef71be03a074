"""SD2.1's spatial layers, with MicroCinema's temporal layers and SPADE hook inside them.

Parameter names follow the original (CompVis/Stability) single-file layout (``in_layers.0``,
``transformer_blocks.0.attn1.to_q`` ...) so an SD2.1 U-Net state dict loads without a key map; the new
layers have names containing ``temporal_`` or ``spade`` and are the only parameters SD2.1 lacks.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import attention
from .ops import resolve_operations, weights_usable_with
from .spade import SpadeModulation
from .temporal import TemporalAttention, TemporalConv


class ResBlock(nn.Module):
    """GN-SiLU-conv, + timestep, GN-(SPADE)-SiLU-conv, with a temporal conv after each spatial conv.

    Deliberate departures from the paper (also in docs/architecture.md):

    * GroupNorm is per frame: ``nn.GroupNorm`` over ``[B*N, C, H, W]`` takes each frame's own statistics.
      Eq. 1 describes a 3D GroupNorm (statistics over all N frames of a video). Per frame is what makes the
      inflated model, temporal and injection layers at zero, compute exactly SD2.1 on every frame (a 3D norm
      would mix the frames' statistics and change each frame's output), so SD2.1's weights start where
      they were trained; tests/test_core_peer_agreement.py holds it to ComfyUI's own SD2.1 U-Net.
    * SPADE placement (the paper says only "into the GroupNorm layers"): on the SECOND GroupNorm of every
      ResBlock (``out_layers[0]``), in the encoder, the middle block and the decoder, fed by AppearNet's
      feature of the same scale (the decoder block by the feature of the skip it consumes). Not on the first
      GroupNorm, not on the transformers' norms. It modulates the output of SD2.1's GroupNorm INCLUDING
      its learned affine: ``(gamma_a + 1) * (w * GN(h) + b) + beta_a`` (see ``nn/spade.py``).
    """

    def __init__(self, channels, emb_channels, out_channels, *, norm_groups=32, temporal_kernel=3,
                 spade_feature_channels: Optional[int] = None, spade_kernel: int = 3, operations=None):
        super().__init__()
        ops = resolve_operations(operations)
        self.in_layers = nn.Sequential(
            ops.GroupNorm(norm_groups, channels), nn.SiLU(), ops.Conv2d(channels, out_channels, 3, padding=1)
        )
        self.emb_layers = nn.Sequential(nn.SiLU(), ops.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(
            ops.GroupNorm(norm_groups, out_channels), nn.SiLU(), nn.Dropout(0.0),
            ops.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        self.skip_connection = nn.Identity() if channels == out_channels else ops.Conv2d(channels, out_channels, 1)
        self.temporal_conv_in = TemporalConv(out_channels, temporal_kernel, operations=ops)
        self.temporal_conv_out = TemporalConv(out_channels, temporal_kernel, operations=ops)
        self.spade = (
            SpadeModulation(spade_feature_channels, out_channels, spade_kernel, operations=ops)
            if spade_feature_channels is not None else None
        )

    def forward(self, x, emb, num_frames, spade_feature=None):
        # In-place updates below only touch fresh outputs whose old values no backward pass needs
        # (sums and convolution outputs), so they are safe under autograd and save a memory pass each.
        h = self.in_layers(x)
        h = self.temporal_conv_in(h, num_frames)
        h += self.emb_layers(emb)[:, :, None, None].to(h.dtype)
        h = self.out_layers[0](h)
        if self.spade is not None and spade_feature is not None:
            h = self.spade(h, spade_feature)
        h = F.silu(h, inplace=not torch.is_grad_enabled())
        h = self.out_layers[3](self.out_layers[2](h))
        h = self.temporal_conv_out(h, num_frames)
        h += self.skip_connection(x)
        return h


def add_linear_(residual: torch.Tensor, inputs: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
    """``residual + linear(inputs)`` for a residual the caller owns.

    Without autograd it is written into ``residual`` with ``addmm_``: no fresh output tensor (on CPU, large
    fresh tensors cost page faults), no bias broadcast copy, no separate residual pass. Same sum, another
    rounding order (~1 ulp). With autograd it is computed out of place, and so it is when the layer casts
    or patches its weights at call time (a host's ops: fp8 storage, low-VRAM offload, see ``nn/ops.py``).
    """
    if torch.is_grad_enabled() or not residual.is_contiguous() or not weights_usable_with(linear, inputs):
        out = linear(inputs)
        out += residual
        return out
    flat = residual.view(-1, residual.shape[-1])
    if linear.bias is not None:
        flat.add_(linear.bias)
    flat.addmm_(inputs.reshape(-1, inputs.shape[-1]), linear.weight.t())
    return residual


class CrossAttention(nn.Module):
    def __init__(self, query_dim, context_dim, heads, head_dim, operations=None):
        super().__init__()
        ops = resolve_operations(operations)
        inner = heads * head_dim
        self.heads = heads
        self.to_q = ops.Linear(query_dim, inner, bias=False)
        self.to_k = ops.Linear(context_dim, inner, bias=False)
        self.to_v = ops.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(ops.Linear(inner, query_dim), nn.Dropout(0.0))

    def forward(self, x, context=None, residual=None):
        """Attention of ``x`` over ``context`` (itself when None); with ``residual``, returns ``residual + out``."""
        context = x if context is None else context
        attended = attention(self.to_q(x), self.to_k(context), self.to_v(context), self.heads)
        if residual is None:
            return self.to_out(attended)
        return add_linear_(residual, attended, self.to_out[0])


class GEGLU(nn.Module):
    def __init__(self, dim_in, dim_out, operations=None):
        super().__init__()
        self.proj = resolve_operations(operations).Linear(dim_in, dim_out * 2)

    def forward(self, x):
        value, gate = self.proj(x).chunk(2, dim=-1)
        if torch.is_grad_enabled():
            return value * F.gelu(gate)
        return F.gelu(gate).mul_(value)  # inference: one fresh tensor instead of two


class FeedForward(nn.Module):
    def __init__(self, dim, mult=4, operations=None):
        super().__init__()
        ops = resolve_operations(operations)
        self.net = nn.Sequential(GEGLU(dim, dim * mult, operations=ops), nn.Dropout(0.0), ops.Linear(dim * mult, dim))

    def forward(self, x, residual=None):
        hidden = self.net[1](self.net[0](x))
        if residual is None:
            return self.net[2](hidden)
        return add_linear_(residual, hidden, self.net[2])


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, heads, head_dim, context_dim, operations=None):
        super().__init__()
        ops = resolve_operations(operations)
        self.attn1 = CrossAttention(dim, dim, heads, head_dim, operations=ops)
        self.ff = FeedForward(dim, operations=ops)
        self.attn2 = CrossAttention(dim, context_dim, heads, head_dim, operations=ops)
        self.norm1 = ops.LayerNorm(dim)
        self.norm2 = ops.LayerNorm(dim)
        self.norm3 = ops.LayerNorm(dim)

    def forward(self, tokens, context, num_frames, frames_share_context):
        """``tokens``: ``[B*N, HW, C]``; ``context``: ``[B, L, D]`` when ``frames_share_context`` else ``[B*N, L, D]``."""
        # ``tokens`` is this block's own tensor (proj_in's output), so the residual sums may reuse it.
        tokens = self.attn1(self.norm1(tokens), residual=tokens)
        if frames_share_context:
            # Cross-attention is independent per query token, so the N frames of a video can be one
            # long query sequence against the video's single context: keys and values are computed once
            # per video instead of once per frame (exact).
            bn, hw, c = tokens.shape
            video_tokens = tokens.reshape(bn // num_frames, num_frames * hw, c)
            tokens = self.attn2(self.norm2(video_tokens), context, residual=video_tokens).reshape(bn, hw, c)
        else:
            tokens = self.attn2(self.norm2(tokens), context, residual=tokens)
        return self.ff(self.norm3(tokens), residual=tokens)


class SpatialTransformer(nn.Module):
    """SD2.1's linear-projection transformer over the pixels of each frame, then temporal attention."""

    def __init__(self, channels, heads, head_dim, context_dim, *, norm_groups=32, temporal_attention=True,
                 temporal_max_frames=64, operations=None):
        super().__init__()
        ops = resolve_operations(operations)
        self.norm = ops.GroupNorm(norm_groups, channels, eps=1e-6)
        self.proj_in = ops.Linear(channels, heads * head_dim)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(heads * head_dim, heads, head_dim, context_dim, operations=ops)])
        self.proj_out = ops.Linear(heads * head_dim, channels)
        self.temporal_attention = (
            TemporalAttention(channels, head_dim, temporal_max_frames, operations=ops) if temporal_attention else None
        )

    def forward(self, x, context, num_frames, frames_share_context):
        bn, c, height, width = x.shape
        h = self.norm(x).permute(0, 2, 3, 1).reshape(bn, height * width, c)
        h = self.proj_in(h)
        for block in self.transformer_blocks:
            h = block(h, context, num_frames, frames_share_context)
        out = self.proj_out(h).reshape(bn, height, width, c).permute(0, 3, 1, 2)
        out += x
        if self.temporal_attention is not None:
            out = self.temporal_attention(out, num_frames)
        return out


class Downsample(nn.Module):
    def __init__(self, channels, operations=None):
        super().__init__()
        self.op = resolve_operations(operations).Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x):
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, channels, operations=None):
        super().__init__()
        self.conv = resolve_operations(operations).Conv2d(channels, channels, 3, padding=1)

    def forward(self, x, output_size=None):
        if output_size is None:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        else:
            x = F.interpolate(x, size=output_size, mode="nearest")
        return self.conv(x)
