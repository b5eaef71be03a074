"""The pack imported in the test process, on the 2024 ComfyUI host's ``comfy`` package (CPU mode).

``load_pack()`` returns the pack's root package (imported as ``mc_pack`` so its relative imports work);
its node modules are ``mc_pack.nodes.<name>``. Also: tiny random MicroCinema checkpoints, fake
CONDITIONING, and ComfyUI's own SD2.x MODEL at a tiny size (the peer of the inflation test).
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

from core_helpers import comfy_sd21_unet, import_comfy_unet, randomize_, randomize_new_layers_

REPO = Path(__file__).resolve().parent.parent
PACK_NAME = "mc_pack"
CONTEXT_DIM = 768  # the test text encoder is a random CLIP-L (the smallest one ComfyUI's CLIPLoader makes)


def load_pack():
    """Import the pack like ComfyUI does (a package from the repo's ``__init__.py``), once."""
    if PACK_NAME in sys.modules:
        return sys.modules[PACK_NAME]
    import_comfy_unet()  # comfy on sys.path, CPU mode, torchvision shim
    spec = importlib.util.spec_from_file_location(PACK_NAME, REPO / "__init__.py",
                                                  submodule_search_locations=[str(REPO)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_NAME] = module
    spec.loader.exec_module(module)
    return module


def load_pack_single_threaded():
    """``load_pack()`` for a module fixture (``yield from``) whose comparisons assume one CPU thread: torch runs on
    one thread for the module and gets its threads back after it, so the rest of the suite keeps both cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield load_pack()
    finally:
        torch.set_num_threads(threads)


def tiny_config(kind: str = "base", **overrides):
    from microcinema_core.config import MicroCinemaConfig

    values = dict(context_dim=CONTEXT_DIM)
    values.update(overrides)
    return MicroCinemaConfig.tiny(kind, **values)


def tiny_model(kind: str = "base", seed: int = 0, **overrides):
    """A tiny MicroCinema network with random weights everywhere (temporal/injection layers too)."""
    from microcinema_core.models.microcinema import MicroCinemaModel

    torch.manual_seed(seed)
    model = MicroCinemaModel(tiny_config(kind, **overrides))
    randomize_(model, seed)
    randomize_new_layers_(model, seed + 1)
    return model.eval()


def write_tiny_checkpoint(path, kind: str = "base", seed: int = 0, **overrides) -> Path:
    from microcinema_core.weights.checkpoint import save_checkpoint

    save_checkpoint(tiny_model(kind, seed, **overrides), path)
    return Path(path)


def text_conditioning(seed: int, tokens: int = 77, dim: int = CONTEXT_DIM):
    """A CONDITIONING list like CLIP Text Encode makes ([[cond, {"pooled_output": ...}]])."""
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, tokens, dim, generator=g), {"pooled_output": torch.randn(1, dim, generator=g)}]]


def comfy_sd21_model(config, seed: int = 0):
    """ComfyUI's own SD2.x BaseModel (eps) in a ModelPatcher, U-Net at ``config``'s size, random weights."""
    load_pack()
    import comfy.model_management
    import comfy.model_patcher
    import comfy.supported_models

    unet = comfy_sd21_unet(config, seed)
    depth = [1 if level in config.attention_levels else 0 for level in range(len(config.channel_mult))
             for _ in range(config.num_res_blocks)]
    unet_config = {"context_dim": config.context_dim, "model_channels": config.model_channels,
                   "use_linear_in_transformer": True, "adm_in_channels": None, "use_temporal_attention": False,
                   "in_channels": 4, "out_channels": 4, "num_res_blocks": [config.num_res_blocks] * len(config.channel_mult),
                   "channel_mult": list(config.channel_mult), "transformer_depth": depth,
                   "transformer_depth_output": [1 if level in config.attention_levels else 0
                                                for level in range(len(config.channel_mult))
                                                for _ in range(config.num_res_blocks + 1)],
                   "transformer_depth_middle": 1, "image_size": 32, "use_spatial_transformer": True,
                   "legacy": False}
    model_config = comfy.supported_models.SD20(unet_config)
    model_config.unet_config["num_head_channels"] = config.num_head_channels
    import comfy.model_base

    model = comfy.model_base.BaseModel(model_config, model_type=comfy.model_base.ModelType.EPS)
    model.diffusion_model.load_state_dict(unet.state_dict())
    return comfy.model_patcher.ModelPatcher(model, load_device=comfy.model_management.get_torch_device(),
                                            offload_device=comfy.model_management.unet_offload_device())
