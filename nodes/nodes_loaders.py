"""Load MicroCinema Model / Load MicroCinema TSR Model: a checkpoint from ``models/microcinema`` -> MODEL.

One node per model kind, so a TSR file in the base slot (or the reverse) is caught at load time with a
message naming the right node. A file that is not a MicroCinema checkpoint (SD checkpoint, LoRA, VAE,
text encoder) gets an error saying what it is and which loader takes it.

``dtype`` is the precision the model computes in; the optional ``weight_dtype`` stores the weight matrices in
fp8 (like ComfyUI's 'Load Diffusion Model'), cast to ``dtype`` layer by layer by ComfyUI's ``comfy.ops``
(docs/memory.md has the measured differences).
"""
from __future__ import annotations

import torch

from ..microcinema_core.errors import CheckpointError
from ..microcinema_core.weights.checkpoint import (DTYPES, WEIGHT_DTYPES, load_checkpoint, read_checkpoint_config,
                                                   resolve_weight_dtype)
from .helpers.comfy_model import comfy_operations, wrap_model
from .helpers.model_files import checkpoint_names, checkpoint_path, describe_file, register_model_folder

DTYPE_CHOICES = ("auto", "fp32", "fp16", "bf16")
LOADER_NAMES = {"base": "Load MicroCinema Model", "tsr": "Load MicroCinema TSR Model"}

register_model_folder()


def resolve_auto_dtype(choice: str):
    """``auto``: ComfyUI's own choice for its diffusion models on this device (fp16/bf16 on most GPUs,
    fp32 on CPU); the other choices are used as given."""
    if choice != "auto":
        return choice
    import comfy.model_management

    return comfy.model_management.unet_dtype()


def compute_dtype_for(dtype: str, weight_dtype: str, load_device):
    """The compute dtype of a load: ``dtype`` as chosen; ``auto`` with fp8 weights is ComfyUI's own compute
    choice for fp8-stored weights on this device (``unet_manual_cast``: fp16/bf16 on GPUs, fp32 on CPU)."""
    import comfy.model_management

    storage = resolve_weight_dtype(weight_dtype)
    if dtype != "auto" or storage is None:
        chosen = resolve_auto_dtype(dtype)
        return DTYPES[chosen] if isinstance(chosen, str) else chosen
    return comfy.model_management.unet_manual_cast(storage, load_device) or torch.float32


def load_microcinema(name: str, dtype: str, kind: str, weight_dtype: str = "default"):
    """The ComfyUI MODEL for checkpoint ``name`` of ``kind`` ("base"/"tsr"), with errors users can act on.

    ``weight_dtype`` ``fp8_e4m3fn`` / ``fp8_e5m2`` stores the weight matrices in fp8, computed in ``dtype``.
    """
    if weight_dtype not in WEIGHT_DTYPES:
        raise CheckpointError(f"weight_dtype {weight_dtype!r} is not one of {', '.join(WEIGHT_DTYPES)}")
    path = checkpoint_path(name)
    try:
        config = read_checkpoint_config(path)
    except CheckpointError as exc:
        raise CheckpointError(f"'{name}' is {describe_file(path)}. ({exc})") from None
    if config.kind != kind:
        raise CheckpointError(
            f"'{name}' is a MicroCinema {config.kind.upper()} checkpoint: load it with "
            f"'{LOADER_NAMES[config.kind]}', not '{LOADER_NAMES[kind]}'")
    import comfy.model_management

    load_device = comfy.model_management.get_torch_device()
    compute = compute_dtype_for(dtype, weight_dtype, load_device)
    storage = resolve_weight_dtype(weight_dtype) or compute
    net = load_checkpoint(path, dtype=compute, device=comfy.model_management.unet_offload_device(),
                          expected_kind=kind, operations=comfy_operations(storage, compute, load_device),
                          weight_dtype=resolve_weight_dtype(weight_dtype))
    return wrap_model(net)


def _loader_inputs(kind: str) -> dict:
    what = "base image&text-to-video" if kind == "base" else "TSR (temporal interpolation, 4x frame rate)"
    return {"required": {
        "ckpt_name": (checkpoint_names(), {
            "tooltip": f"A MicroCinema {what} checkpoint (.safetensors) from ComfyUI/models/microcinema/. "
                       "Its metadata holds the model's config: frames, fps, resolution and the training "
                       "lambda of the noise prior."}),
        "dtype": (list(DTYPE_CHOICES), {
            "default": "auto",
            "tooltip": "Compute precision (and weight precision unless weight_dtype says otherwise). auto: "
                       "ComfyUI's choice for this device (fp16/bf16 on GPUs, fp32 on CPU). fp16 halves memory; "
                       "bf16 avoids fp16 overflow on recent GPUs; fp32 is exact."}),
    }, "optional": {
        "weight_dtype": (list(WEIGHT_DTYPES), {
            "default": "default",
            "tooltip": "How the weights are stored in memory, as in ComfyUI's 'Load Diffusion Model'. default: "
                       "in the 'dtype' precision. fp8_e4m3fn / fp8_e5m2: weight matrices and kernels in 8-bit "
                       "floats (half the memory of fp16, a quarter of fp32), cast to 'dtype' layer by layer as "
                       "the model runs (with auto: fp16/bf16 on GPUs, fp32 on CPU); biases and norms stay in "
                       "'dtype'. e4m3fn keeps more precision (use it), e5m2 more range. Results move slightly "
                       "(docs/memory.md)."}),
    }}


class MicroCinemaModelLoader:
    """Load the MicroCinema base model (keyframe + text -> 9 frames at 2 fps in the paper)."""

    @classmethod
    def INPUT_TYPES(cls):
        return _loader_inputs("base")

    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The MicroCinema base model: sample it with the stock KSampler (after Keyframe "
                       "Conditioning and Appearance Noise Prior) or with 'MicroCinema Sampler'.",)
    FUNCTION = "load"
    CATEGORY = "MicroCinema"
    DESCRIPTION = "Loads a MicroCinema base checkpoint from models/microcinema as a ComfyUI MODEL."

    def load(self, ckpt_name, dtype, weight_dtype="default"):
        return (load_microcinema(ckpt_name, dtype, "base", weight_dtype),)


class MicroCinemaTSRModelLoader:
    """Load the MicroCinema temporal-interpolation (TSR) model (first + last frame -> 5 frames)."""

    @classmethod
    def INPUT_TYPES(cls):
        return _loader_inputs("tsr")

    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The MicroCinema TSR model, for 'MicroCinema TSR Interpolate'.",)
    FUNCTION = "load"
    CATEGORY = "MicroCinema"
    DESCRIPTION = "Loads a MicroCinema TSR (temporal interpolation) checkpoint from models/microcinema."

    def load(self, ckpt_name, dtype, weight_dtype="default"):
        return (load_microcinema(ckpt_name, dtype, "tsr", weight_dtype),)


NODE_CLASS_MAPPINGS = {"MicroCinemaModelLoader": MicroCinemaModelLoader,
                       "MicroCinemaTSRModelLoader": MicroCinemaTSRModelLoader}
NODE_DISPLAY_NAME_MAPPINGS = {"MicroCinemaModelLoader": LOADER_NAMES["base"],
                              "MicroCinemaTSRModelLoader": LOADER_NAMES["tsr"]}
