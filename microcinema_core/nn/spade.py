"""SPADE de-normalisation of the main branch by AppearNet features (paper eq. 1-2, after Park et al.).

``out = (gamma_a + 1) * GN(h) + beta_a`` with ``gamma_a, beta_a = conv(f_a)``. The convolution is
zero-initialised so the model starts as SD2.1. ``GN`` keeps SD2.1's learned affine (the modulation is
applied to the affine output), which is what makes the zero-init model equal SD2.1.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class SpadeModulation(nn.Module):
    def __init__(self, feature_channels: int, channels: int, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(feature_channels, 2 * channels, kernel_size, padding=kernel_size // 2)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, normalized: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.conv(feature).chunk(2, dim=1)
        out = torch.addcmul(beta, normalized, gamma)
        out += normalized
        return out
