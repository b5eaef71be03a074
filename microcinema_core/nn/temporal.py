"""Temporal layers that inflate SD2.1 to 3D (paper sec. 3.1).

Both are residual and zero-initialised: ``x + layer(x)`` with the layer's output projection at zero, so a
freshly inflated model is SD2.1 applied frame by frame. A one-frame "video" (the customisation objective's image batches,
``training/customisation_objective.py``) has no time: both layers pass it through unchanged. Frames travel in the batch dimension
(``[B*N, C, H, W]``, frame index fastest), the way ComfyUI carries video latents.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .attention import attention
from .embeddings import sinusoidal_embedding
from .ops import resolve_operations


def frames_last_tokens(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """``[B*N, C, H, W] -> [B, N, H*W, C]`` (free when ``x`` is channels_last)."""
    bn, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(bn // num_frames, num_frames, h * w, c)


def tokens_to_image(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``[B, N, H*W, C] -> [B*N, C, H, W]`` as a channels_last view."""
    b, n, _, c = tokens.shape
    return tokens.reshape(b * n, height, width, c).permute(0, 3, 1, 2)


class TemporalConv(nn.Module):
    """``x + conv_t(x)``: a 1D convolution over frames, kernel ``(k, 1, 1)``, zero padding in time.

    The frames-in-batch tensor ``[B*N, C, H, W]`` in channels-last memory is already ``[B, C, N, H, W]``
    in channels-last-3d memory, so the Conv3d runs on a free view (oneDNN's direct kernel, no im2col).
    """

    def __init__(self, channels: int, kernel_size: int = 3, operations=None):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError("temporal kernel size must be odd")
        self.conv = resolve_operations(operations).Conv3d(channels, channels, (kernel_size, 1, 1), padding=(kernel_size // 2, 0, 0))
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        if num_frames == 1:
            return x
        bn, c, height, width = x.shape
        video = x.view(bn // num_frames, num_frames, c, height, width).transpose(1, 2)  # [B, C, N, H, W]
        out = self.conv(video)
        out += video
        return out.transpose(1, 2).reshape(bn, c, height, width)


class TemporalAttention(nn.Module):
    """``x + attn_t(x)``: self-attention across the frames at each pixel, sinusoidal frame positions.

    Tokens are layer-normed, the frame-position code is added, queries/keys/values attend over the
    ``N`` frames of the same pixel; the output projection is zero-initialised.
    """

    def __init__(self, channels: int, head_channels: int, max_frames: int = 64, operations=None):
        super().__init__()
        ops = resolve_operations(operations)
        self.heads = max(1, channels // head_channels)
        self.max_frames = max_frames
        self.norm = ops.LayerNorm(channels)
        self.to_q = ops.Linear(channels, channels, bias=False)
        self.to_k = ops.Linear(channels, channels, bias=False)
        self.to_v = ops.Linear(channels, channels, bias=False)
        self.to_out = ops.Linear(channels, channels)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        if num_frames == 1:
            return x
        if num_frames > self.max_frames:
            raise ValueError(f"{num_frames} frames exceed the temporal attention's {self.max_frames}")
        _, c, height, width = x.shape
        tokens = frames_last_tokens(x, num_frames)  # [B, N, HW, C]
        b, n, hw, _ = tokens.shape
        positions = sinusoidal_embedding(torch.arange(n, device=x.device), c).to(x.dtype)
        h = self.norm(tokens) + positions[None, :, None, :]
        h = h.transpose(1, 2).reshape(b * hw, n, c)  # one sequence of N frames per pixel
        out = attention(self.to_q(h), self.to_k(h), self.to_v(h), self.heads)
        out = self.to_out(out).view(b, hw, n, c).transpose(1, 2)
        return tokens_to_image(tokens + out, height, width)
