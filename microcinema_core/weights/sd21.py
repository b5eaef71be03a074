"""Inflating an SD2.1-base U-Net into MicroCinema (paper sec. 3.1-3.2, tab. 3).

Takes the single-file checkpoint users have (original ``model.diffusion_model.*`` keys, fp16 or fp32,
safetensors or ckpt) or a bare U-Net state dict, loads it into the main branch's spatial layers and into
AppearNet's copy of the encoder and middle, and leaves every temporal, SPADE and injection layer at its
zero initialisation: the result computes SD2.1 frame by frame.
"""
from __future__ import annotations

from typing import Dict, Mapping, Union

import torch

from ..config import MicroCinemaConfig
from ..errors import CheckpointError
from ..models.microcinema import MicroCinemaModel, is_new_layer
from .files import read_state_dict

UNET_PREFIX = "model.diffusion_model."


def extract_unet(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The U-Net part of a full checkpoint, keys without prefix (a bare U-Net dict passes through)."""
    if any(k.startswith(UNET_PREFIX) for k in state_dict):
        return {k[len(UNET_PREFIX):]: v for k, v in state_dict.items() if k.startswith(UNET_PREFIX)}
    return dict(state_dict)


def describe_foreign_unet(unet: Mapping[str, torch.Tensor]) -> str:
    """A short guess at what a non-SD2.1 U-Net is, for error messages."""
    if any(k.startswith("microcinema") or "temporal_" in k for k in unet):
        return "a MicroCinema checkpoint (use 'Load MicroCinema Model')"
    if "label_emb.0.0.weight" in unet:
        return "an SDXL-family U-Net"
    key = "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
    if key in unet and unet[key].shape[-1] == 768:
        return "an SD1.x U-Net (768-d text context)"
    if not unet:
        return "a file without U-Net weights (a VAE, text encoder or LoRA?)"
    return "an unknown U-Net layout"


def inflate_from_sd21(source: Union[str, Mapping[str, torch.Tensor]], config: MicroCinemaConfig) -> MicroCinemaModel:
    """A MicroCinema model whose spatial layers and AppearNet hold the SD2.1 weights (fp32)."""
    if isinstance(source, Mapping):
        raw = source
    else:
        raw, _ = read_state_dict(source)
    unet = {k: v.float() for k, v in extract_unet(raw).items()}
    model = MicroCinemaModel(config)
    own = model.unet.state_dict()
    expected = [k for k in own if not is_new_layer(k)]
    missing = [k for k in expected if k not in unet]
    if missing:
        raise CheckpointError(
            f"not an SD2.1-base U-Net: {len(missing)} weights missing (first: {missing[:3]}); it looks like "
            f"{describe_foreign_unet(unet)}. Use an SD2.1-base (512px, eps) checkpoint."
        )
    loaded = {}
    for key in expected:
        weight, target = unet[key], own[key]
        if key == "input_blocks.0.0.weight" and config.injection == "concat":
            padded = torch.zeros_like(target)  # extra appearance channels start at zero
            if weight.shape[1] != config.in_channels:
                raise CheckpointError(f"conv_in of the checkpoint has {weight.shape[1]} input channels, "
                                      f"expected {config.in_channels}")
            padded[:, : config.in_channels] = weight
            weight = padded
        if weight.shape != target.shape:
            raise CheckpointError(
                f"weight {key} has shape {tuple(weight.shape)}, the {'tiny' if config.is_tiny else 'SD2.1'} "
                f"config expects {tuple(target.shape)}: it looks like {describe_foreign_unet(unet)}"
            )
        loaded[key] = weight
    model.unet.load_state_dict(loaded, strict=False)
    if model.appearnet is not None:
        copy = {k: v for k, v in loaded.items()
                if k.startswith(("time_embed.", "input_blocks.", "middle_block."))}
        result = model.appearnet.load_state_dict(copy, strict=False)
        stray = [k for k in result.missing_keys if not is_new_layer(k)]
        if stray or result.unexpected_keys:
            raise CheckpointError(f"AppearNet copy mismatch: missing {stray[:3]}, unexpected {result.unexpected_keys[:3]}")
    return model
