"""Load MicroCinema Model / Load MicroCinema TSR Model: a checkpoint from ``models/microcinema`` -> MODEL.

One node per model kind, so a TSR file in the base slot (or the reverse) is caught at load time with a
message naming the right node. A file that is not a MicroCinema checkpoint (SD checkpoint, LoRA, VAE,
text encoder) gets an error saying what it is and which loader takes it.
"""
from __future__ import annotations

from ..microcinema_core.errors import CheckpointError
from ..microcinema_core.weights.checkpoint import load_checkpoint, read_checkpoint_config
from .comfy_model import wrap_model
from .model_files import checkpoint_names, checkpoint_path, describe_file, register_model_folder

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


def load_microcinema(name: str, dtype: str, kind: str):
    """The ComfyUI MODEL for checkpoint ``name`` of ``kind`` ("base"/"tsr"), with errors users can act on."""
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

    net = load_checkpoint(path, dtype=resolve_auto_dtype(dtype), device=comfy.model_management.unet_offload_device(),
                          expected_kind=kind)
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
            "tooltip": "Weight precision. auto: ComfyUI's choice for this device (fp16/bf16 on GPUs, fp32 on "
                       "CPU). fp16 halves memory; bf16 avoids fp16 overflow on recent GPUs; fp32 is exact."}),
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

    def load(self, ckpt_name, dtype):
        return (load_microcinema(ckpt_name, dtype, "base"),)


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

    def load(self, ckpt_name, dtype):
        return (load_microcinema(ckpt_name, dtype, "tsr"),)


NODE_CLASS_MAPPINGS = {"MicroCinemaModelLoader": MicroCinemaModelLoader,
                       "MicroCinemaTSRModelLoader": MicroCinemaTSRModelLoader}
NODE_DISPLAY_NAME_MAPPINGS = {"MicroCinemaModelLoader": LOADER_NAMES["base"],
                              "MicroCinemaTSRModelLoader": LOADER_NAMES["tsr"]}
