"""SPADE de-normalisation of the main branch by AppearNet features (paper eq. 1-2, after Park et al.).

``out = (gamma_a + 1) * GN(h) + beta_a`` with ``gamma_a, beta_a = conv(f_a)``. The convolution is
zero-initialised so the model starts as SD2.1.

Deliberate departure (docs/architecture.md): eq. 2 modulates the bare normalised activation ``h_bar``; here
``GN(h)`` is SD2.1's GroupNorm WITH its learned affine ``w * h_bar + b``, and SPADE is applied after it. With
``gamma_a = beta_a = 0`` this is exactly SD2.1's layer; on the bare ``h_bar`` the zero-init model would drop
SD2.1's learned scale and shift (the affine could be folded into gamma/beta, but not at zero init). The
GroupNorm is per frame, and SPADE sits on the second GroupNorm of each ResBlock in the encoder, middle and
decoder (``nn/spatial.py``, ``ResBlock``).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .ops import resolve_operations


class SpadeModulation(nn.Module):
    def __init__(self, feature_channels: int, channels: int, kernel_size: int = 3, operations=None):
        super().__init__()
        self.conv = resolve_operations(operations).Conv2d(feature_channels, 2 * channels, kernel_size, padding=kernel_size // 2)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, normalized: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.conv(feature).chunk(2, dim=1)
        out = torch.addcmul(beta, normalized, gamma)
        out += normalized
        return out
