"""The operations namespace the network's weighted layers are built from.

Every layer that holds weights (``Linear``, ``Conv2d``, ``Conv3d``, ``GroupNorm``, ``LayerNorm``) is made
as ``operations.<Name>(...)`` with the usual ``torch.nn`` constructor arguments, never as ``nn.<Name>``.
The default, :class:`TorchOps`, is plain ``torch.nn``; a host hands in its own namespace of ``torch.nn``
subclasses. The ComfyUI nodes pass ``comfy.ops.disable_weight_init`` / ``manual_cast`` (or what
``comfy.ops.pick_operations`` picks), the same way ComfyUI builds its own U-Net, so ComfyUI can cast
weights on the fly (fp8 storage, fp16/bf16/fp32 compute) and load the network partially (low VRAM).
The core never imports a host: it only calls what it was given.

Duck-typed contract with such layers (see :func:`casts_weights`): a layer whose weights must not be read
directly (stored in another dtype or on another device than the activations, or patched on the fly) says
so with a truthy ``comfy_cast_weights``, ``weight_function`` or ``bias_function`` attribute; the network
then calls the layer instead of using its ``weight`` in a fused kernel.

Namespaces that skip weight initialisation (ComfyUI's do) leave new tensors uninitialised: build such a
model on the ``meta`` device and assign loaded weights (``weights/checkpoint.py``), or convert an
initialised model with :func:`microcinema_core.models.microcinema.MicroCinemaModel.with_operations`.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

REQUIRED_OPERATIONS = ("Linear", "Conv2d", "Conv3d", "GroupNorm", "LayerNorm")


class TorchOps:
    """Plain ``torch.nn`` layers (the default namespace)."""

    Linear = nn.Linear
    Conv2d = nn.Conv2d
    Conv3d = nn.Conv3d
    GroupNorm = nn.GroupNorm
    LayerNorm = nn.LayerNorm


def resolve_operations(operations: Any = None) -> Any:
    """``operations`` itself (checked to have every layer the network builds), or :class:`TorchOps`."""
    if operations is None:
        return TorchOps
    missing = [name for name in REQUIRED_OPERATIONS if not callable(getattr(operations, name, None))]
    if missing:
        raise TypeError(f"operations namespace {operations!r} lacks {', '.join(missing)} "
                        f"(it needs {', '.join(REQUIRED_OPERATIONS)})")
    return operations


def casts_weights(layer: nn.Module) -> bool:
    """True when ``layer`` casts or patches its weights at call time (its ``weight`` must not be used directly)."""
    return bool(getattr(layer, "comfy_cast_weights", False) or getattr(layer, "weight_function", None)
                or getattr(layer, "bias_function", None))


def weights_usable_with(layer: nn.Module, inputs: torch.Tensor) -> bool:
    """True when ``layer.weight`` can enter a kernel with ``inputs`` as it is (same dtype and device, no cast)."""
    weight = getattr(layer, "weight", None)
    return (weight is not None and not casts_weights(layer) and weight.dtype == inputs.dtype
            and weight.device == inputs.device)
