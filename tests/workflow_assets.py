"""Test-time stand-ins for the model files the shipped workflows name, and the test variant of a workflow.

What is real and what is substituted (so the host tests stay honest):
* MicroCinema base/TSR checkpoints: real files of this pack's format, TINY configs, random weights,
  loaded by our loader nodes from the host's ``models/microcinema`` under the shipped file names.
* Text encoder: a random-weight CLIP-L text model (the smallest that ComfyUI's stock ``CLIPLoader``
  builds; the tiny MicroCinema models take its 768-d context instead of SD2.1's 1024-d OpenCLIP-H), with
  the exact keys ComfyUI's own class expects, under the shipped text-encoder file name.
* VAE: a random-weight TAESD (ComfyUI's ``VAELoader`` accepts it; same 4-channel latent, 8x down-scaling,
  same SD latent scale in the model), under the shipped VAE file name.
* SDXL keyframe stage (stock nodes only): no SDXL weights exist offline. The unmodified shipped prompt is
  queued to prove every node and value validates except the missing SDXL checkpoint; the test variant
  then feeds the keyframe conditioning from ``LoadImage`` instead.
* Sizes: 64x64 px and 2 sampling steps instead of 320x320 and 50; frame counts, fps, CFG, gamma unchanged.
* The toy workflow runs on the files the pack ships (``models/`` of the pack, which the pack adds to ComfyUI's
  folders) and its own keyframe; only while the trained toy bundle is not in ``models/`` yet, random-weight
  stand-ins of the same format and names (``scripts/toy_standins.py``) go into the host's models folder. The same
  for the subject-driven toy model (the subject workflow), on its own: it ships later than the other three.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from pack_inprocess import write_tiny_checkpoint
from scripts.toy_standins import (CUSTOM, IMAGE_TO_VIDEO, shipped_custom_file_present, shipped_toy_files_present,
                                  write_toy_standins)
from workflows import definitions as wf

TEST_SIZE = 64
TEST_STEPS = 2
SMALL = dict(channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,))


def _random_like(state: dict, seed: int, std: float | None = None) -> dict:
    """Random tensors shaped like ``state``: norm weights 1, biases 0, matrices ~ N(0, std or 1/fan_in)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, ref in state.items():
        if ref.ndim <= 1:
            value = torch.ones(ref.shape) if name.endswith("weight") or name.endswith("scale") else torch.zeros(ref.shape)
        else:
            scale = std if std is not None else (ref[0].numel() ** -0.5)
            value = torch.randn(ref.shape, generator=g) * scale
        out[name] = value
    return out


def write_text_encoder(path: Path, seed: int = 0) -> None:
    """A random CLIP-L text encoder with the keys of ComfyUI's own ``SDClipModel``."""
    from safetensors.torch import save_file

    import comfy.sd1_clip

    with torch.no_grad():
        state = comfy.sd1_clip.SDClipModel(device="cpu").transformer.state_dict()
    tensors = _random_like(state, seed, std=0.02)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.half().contiguous() for k, v in tensors.items()}, str(path))


def write_vae(path: Path, seed: int = 0) -> None:
    """A random TAESD, the small VAE ComfyUI's ``VAELoader`` accepts."""
    from safetensors.torch import save_file

    import comfy.taesd.taesd

    tensors = _random_like(comfy.taesd.taesd.TAESD().state_dict(), seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))


def write_keyframe(path: Path, width: int = 96, height: int = 80) -> None:
    """A non-square colour-gradient PNG (exercises the centre crop)."""
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], -1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)


def install_test_models(models_dir: Path, input_dir: Path) -> None:
    """Every file the shipped workflows name, as tiny/random stand-ins, in the host's folders."""
    from core_helpers import import_comfy_unet

    import_comfy_unet()  # ComfyUI's own classes give the exact keys its loaders expect
    write_tiny_checkpoint(models_dir / "microcinema" / wf.BASE_CKPT, "base", seed=0, **SMALL)
    write_tiny_checkpoint(models_dir / "microcinema" / wf.TSR_CKPT, "tsr", seed=10, **SMALL)
    write_text_encoder(models_dir / "clip" / wf.TEXT_ENCODER)
    write_vae(models_dir / "vae" / wf.VAE)
    write_keyframe(input_dir / wf.KEYFRAME_IMAGE)
    if not shipped_toy_files_present():
        write_toy_standins(models_dir, kinds=IMAGE_TO_VIDEO)
    if not shipped_custom_file_present():   # the subject-driven model ships later than the other three
        write_toy_standins(models_dir, kinds=(CUSTOM,))


def _reachable(prompt: dict, roots) -> set:
    seen, todo = set(), list(roots)
    while todo:
        nid = todo.pop()
        if nid in seen:
            continue
        seen.add(nid)
        todo.extend(v[0] for v in prompt[nid]["inputs"].values() if isinstance(v, list) and len(v) == 2)
    return seen


def as_test_prompt(prompt: dict, steps: int = TEST_STEPS, size: int = TEST_SIZE) -> dict:
    """The workflow as the tests run it: keyframe from LoadImage, 64x64 px, 2 steps (see module doc)."""
    prompt = copy.deepcopy(prompt)
    for nid, node in list(prompt.items()):
        inputs = node["inputs"]
        if node["class_type"] == "MicroCinemaKeyframeConditioning":
            source = inputs["keyframe"][0]
            if prompt[source]["class_type"] != "LoadImage":
                prompt[source] = {"class_type": "LoadImage", "inputs": {"image": wf.KEYFRAME_IMAGE}}
        if node["class_type"] in ("MicroCinemaKeyframeConditioning", "MicroCinemaSubjectConditioning",
                                   "MicroCinemaSubjectConditioningMasked"):
            inputs["width"] = inputs["height"] = size
        if node["class_type"] in ("MicroCinemaSampler", "KSampler", "MicroCinemaTSRInterpolate",
                                   "MicroCinemaTSRInterpolateLatent", "MicroCinemaTSRInterpolateImages"):
            inputs["steps"] = steps
    outputs = [nid for nid, node in prompt.items() if node["class_type"] in ("MicroCinemaSaveVideo", "SaveLatent")]
    keep = _reachable(prompt, outputs)
    return {nid: node for nid, node in prompt.items() if nid in keep}
