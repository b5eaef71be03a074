"""Inflate SD2.1 to MicroCinema: an SD2.1-base MODEL (or checkpoint file) -> an untrained MicroCinema MODEL.

The spatial layers and AppearNet's encoder/middle copy take the SD2.1 weights; every temporal, SPADE and
injection layer starts at zero, so the result computes SD2.1 frame by frame (paper sec. 3.1-3.2): the
starting point for fine-tuning and a sanity check of the pipeline.
"""
from __future__ import annotations

from ..microcinema_core.config import INJECTION_MODES, KINDS, MicroCinemaConfig
from ..microcinema_core.errors import CheckpointError, MicroCinemaInputError
from ..microcinema_core.weights.sd21 import inflate_from_sd21
from .helpers.comfy_model import MicroCinemaComfyModel, wrap_model

NO_FILE = "(none: use the sd21_model input)"


def config_from_comfy_unet(model, kind: str, injection: str) -> MicroCinemaConfig:
    """A MicroCinema config with the spatial sizes of a ComfyUI SD2.x MODEL (any size, for tiny tests too)."""
    import comfy.model_base

    inner = model.model
    if isinstance(inner, MicroCinemaComfyModel):
        raise MicroCinemaInputError("'sd21_model' is already a MicroCinema model")
    unet = dict(getattr(inner.model_config, "unet_config", {}) or {})
    if inner.model_type != comfy.model_base.ModelType.EPS:
        raise MicroCinemaInputError(
            f"'sd21_model' is a {inner.model_type.name} model; MicroCinema starts from SD2.1-base (512 px, "
            "eps prediction), not the 768-v model")
    problems = []
    if unet.get("context_dim") is None or not unet.get("use_linear_in_transformer", False):
        problems.append("not an SD2.x U-Net (SD2 has linear transformer projections and OpenCLIP text context)")
    if unet.get("adm_in_channels"):
        problems.append("it has an ADM/pooled input (SDXL or unCLIP)")
    if unet.get("in_channels", 4) != 4 or unet.get("use_temporal_attention") or unet.get("use_temporal_resblock"):
        problems.append("it is an inpainting or video U-Net")
    if problems:
        raise MicroCinemaInputError(f"'sd21_model' cannot be inflated: {'; '.join(problems)}. "
                                    "Use an SD2.1-base checkpoint (v2-1_512-ema-pruned).")
    mult = tuple(unet["channel_mult"])
    blocks = unet["num_res_blocks"]
    per_level = blocks[0] if isinstance(blocks, (list, tuple)) else int(blocks)
    depth = list(unet.get("transformer_depth") or [])
    levels = tuple(level for level in range(len(mult))
                   if any(depth[level * per_level:(level + 1) * per_level]))
    head_channels = unet.get("num_head_channels", 64)
    if head_channels in (None, -1):
        head_channels = unet["model_channels"] // unet["num_heads"]
    preset = MicroCinemaConfig.base if kind == "base" else MicroCinemaConfig.tsr
    return preset(injection=injection, model_channels=unet["model_channels"], channel_mult=mult,
                  num_res_blocks=per_level, attention_levels=levels, num_head_channels=head_channels,
                  context_dim=unet["context_dim"])


def unet_state_dict(model) -> dict:
    """The U-Net weights of a ComfyUI MODEL, with any LoRA/weight patches of the patcher applied."""
    if getattr(model, "patches", None):
        import comfy.model_management

        comfy.model_management.load_models_gpu([model])  # applies the patches to the weights
    return {k: v.detach() for k, v in model.model.diffusion_model.state_dict().items()}


class MicroCinemaInflateSD21:
    """SD2.1-base -> untrained MicroCinema model (zero temporal/injection layers)."""

    @classmethod
    def INPUT_TYPES(cls):
        import folder_paths

        return {
            "required": {
                "kind": (list(KINDS), {
                    "default": "base",
                    "tooltip": "base: keyframe + text -> 9 frames (2 fps). tsr: first + last frame -> 5 frames "
                               "(temporal interpolation, 4x frame rate)."}),
                "injection": (list(INJECTION_MODES), {
                    "default": "add_encdec_spade",
                    "tooltip": "How AppearNet's features enter the U-Net (paper tab. 2): add_encdec_spade (the "
                               "paper's best), add_encdec, add_dec, or concat (keyframe as extra input "
                               "channels). Must match the checkpoint you will fine-tune."}),
            },
            "optional": {
                "sd21_model": ("MODEL", {
                    "tooltip": "An SD2.1-base MODEL (Load Checkpoint). Its size decides the MicroCinema "
                               "config; LoRAs applied to it are baked in."}),
                "ckpt_name": ([NO_FILE] + folder_paths.get_filename_list("checkpoints"), {
                    "default": NO_FILE,
                    "tooltip": "Or an SD2.1-base checkpoint file from models/checkpoints (used when "
                               "sd21_model is not connected)."}),
            },
        }

    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("An untrained MicroCinema model that equals SD2.1 frame by frame.",)
    FUNCTION = "inflate"
    CATEGORY = "MicroCinema"
    DESCRIPTION = ("Builds a MicroCinema model from SD2.1-base weights, with zero-initialised temporal and "
                   "injection layers: it reproduces SD2.1 frame by frame until trained.")

    def inflate(self, kind, injection, sd21_model=None, ckpt_name=NO_FILE):
        if sd21_model is not None:
            config = config_from_comfy_unet(sd21_model, kind, injection)
            net = inflate_from_sd21(unet_state_dict(sd21_model), config)
        elif ckpt_name and ckpt_name != NO_FILE:
            import folder_paths

            preset = MicroCinemaConfig.base if kind == "base" else MicroCinemaConfig.tsr
            net = inflate_from_sd21(folder_paths.get_full_path("checkpoints", ckpt_name), preset(injection=injection))
        else:
            raise CheckpointError("connect an SD2.1 MODEL to 'sd21_model' or choose a checkpoint in 'ckpt_name'")
        return (wrap_model(net.eval()),)


NODE_CLASS_MAPPINGS = {"MicroCinemaInflateSD21": MicroCinemaInflateSD21}
NODE_DISPLAY_NAME_MAPPINGS = {"MicroCinemaInflateSD21": "Inflate SD2.1 to MicroCinema"}
