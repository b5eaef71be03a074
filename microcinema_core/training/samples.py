"""Sample videos during training (optional, ``train.sample_every``).

At the interval, the model (live weights, eval mode, no grad) generates from the first cached clip's
condition frame(s) and caption with the core's sampler (Euler, prior start ``(lambda + gamma) z^c``,
guidance ``sample_cfg``), and rank 0 writes ``<output_dir>/samples/step_<8-digit step>.safetensors`` with the
generated latents ``[N, 4, h, w]`` and the clip's own latents as ``reference``. The trainer has no VAE
(it needs only microcinema_core): decode them to mp4 with
``python -m microcinema_core.training.encode_cache --sd21 <ckpt> --decode-samples <output_dir>/samples``.
Every process runs the generation (FSDP needs all ranks in each forward); no training state changes.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..diffusion.pipeline import generate
from ..weights.files import atomic_save_safetensors
from .caching import LatentCache
from .objective import condition_latents


@torch.no_grad()
def write_sample(model, cache: LatentCache, out_dir: Path, step: int, *, steps: int, cfg: float, gamma: float,
                 device: torch.device, is_main: bool, seed: int = 0) -> Path:
    item = cache[0]
    latents = item["latents"].unsqueeze(0)
    cond = condition_latents(cache.kind, latents, cache.condition_indices).to(device)
    context = item["text"].unsqueeze(0).to(device)
    empty = cache.empty_text()
    uncond = (empty if empty is not None else torch.zeros_like(item["text"])).unsqueeze(0).to(device)
    was_training = model.training
    model.eval()
    try:
        video = generate(model, cond, context, uncond, num_frames=cache.num_frames, steps=steps, cfg=cfg,
                         gamma=gamma, seed=seed)
    finally:
        model.train(was_training)
    path = Path(out_dir) / "samples" / f"step_{step:08d}.safetensors"
    if is_main:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_save_safetensors({"latents": video.float().cpu(), "reference": item["latents"]}, path,
                                {"step": str(step), "caption": cache.clips[0]["caption"],
                                 "fps": str(cache.clips[0]["fps"]), "kind": cache.kind})
    return path
