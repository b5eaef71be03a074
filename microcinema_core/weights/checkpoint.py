"""The MicroCinema checkpoint: one safetensors file, config in its metadata.

Metadata keys ``microcinema.*`` carry the whole :class:`MicroCinemaConfig` (kind base/tsr, injection
mode, the training lambda, frames, fps, resolution). Loading builds the model on the ``meta`` device and
assigns the stored tensors, so a 2 B-parameter model is never initialised twice (and a layer namespace
that skips initialisation, like ComfyUI's ``comfy.ops``, can be passed as ``operations``).

``weight_dtype`` (``fp8_e4m3fn`` / ``fp8_e5m2``) stores the weight matrices and convolution kernels in fp8
while biases and norm scales stay in ``dtype``, the compute dtype (``model.compute_dtype``); such a model
runs only with layers that cast their weights at call time (``comfy.ops.manual_cast``: ``nn/ops.py``).
"""
from __future__ import annotations

from typing import Dict, Optional, Union

import torch

from ..config import MicroCinemaConfig
from ..errors import CheckpointError
from ..models.microcinema import MicroCinemaModel
from .files import atomic_save_safetensors, read_state_dict

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# storage-only dtypes of the weight matrices ("default": stored in the compute dtype)
WEIGHT_DTYPES = {"default": None, "fp8_e4m3fn": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}


def resolve_weight_dtype(weight_dtype: Union[None, str, torch.dtype]) -> Optional[torch.dtype]:
    if weight_dtype is None or isinstance(weight_dtype, torch.dtype):
        return weight_dtype
    if weight_dtype not in WEIGHT_DTYPES:
        raise ValueError(f"weight_dtype must be one of {', '.join(WEIGHT_DTYPES)}; got {weight_dtype!r}")
    return WEIGHT_DTYPES[weight_dtype]


def resolve_dtype(dtype: Union[None, str, torch.dtype]) -> Optional[torch.dtype]:
    if dtype is None or dtype == "auto":
        return None
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of auto, {', '.join(DTYPES)}; got {dtype!r}")
    return DTYPES[dtype]


def save_checkpoint(model: MicroCinemaModel, path, dtype: Union[None, str, torch.dtype] = None,
                    extra_metadata: Optional[Dict[str, str]] = None) -> None:
    target = resolve_dtype(dtype)
    tensors = {k: (v.to(target) if target is not None else v).detach().cpu()
               for k, v in model.state_dict().items()}
    metadata = model.config.to_metadata()
    metadata.update({str(k): str(v) for k, v in (extra_metadata or {}).items()})
    atomic_save_safetensors(tensors, path, metadata)


def read_checkpoint_config(path) -> MicroCinemaConfig:
    """The config stored in a checkpoint, without loading its tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata()
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from exc
    return MicroCinemaConfig.from_metadata(metadata)


def load_checkpoint(path, dtype: Union[None, str, torch.dtype] = None, device="cpu",
                    expected_kind: Optional[str] = None, operations=None,
                    weight_dtype: Union[None, str, torch.dtype] = None) -> MicroCinemaModel:
    """Load a MicroCinema checkpoint; ``dtype`` ``auto``/``None`` keeps the stored precision.

    ``operations``: the layer namespace (``nn/ops.py``). ``weight_dtype``: a storage dtype for the weight
    matrices (fp8), computed in ``dtype`` (see the module docstring).
    """
    tensors, metadata = read_state_dict(path)
    config = MicroCinemaConfig.from_metadata(metadata)
    if expected_kind is not None and config.kind != expected_kind:
        raise CheckpointError(
            f"this is a MicroCinema {config.kind.upper()} checkpoint; this input needs a {expected_kind.upper()} "
            f"model ({'temporal interpolation' if expected_kind == 'tsr' else 'base image&text-to-video'})"
        )
    with torch.device("meta"):
        model = MicroCinemaModel(config, operations=operations)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint does not match its own config ({config.kind}, {config.injection}): "
            f"{len(missing)} tensors missing (first: {missing[:3]}), {len(unexpected)} unexpected "
            f"(first: {unexpected[:3]}); the file is damaged or was written by another tool"
        )
    target = resolve_dtype(dtype)
    storage = resolve_weight_dtype(weight_dtype)
    for key, ref in expected.items():
        if tensors[key].shape != ref.shape:
            raise CheckpointError(f"tensor {key} has shape {tuple(tensors[key].shape)}, expected {tuple(ref.shape)}")
        if storage is not None and tensors[key].ndim >= 2:
            tensors[key] = tensors[key].to(storage)  # fp8 matrices/kernels; 1-D biases and norms stay in dtype
        elif target is not None:
            tensors[key] = tensors[key].to(target)
    model.load_state_dict(tensors, assign=True)
    if storage is not None:
        model.compute_dtype = target or tensors["unet.out.2.bias"].dtype
    return model.use_channels_last().to(device).eval()
