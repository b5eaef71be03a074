"""Toy clips -> the trainer's latent cache, through the toy VAE and the frozen MiniLM text encoder."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import torch

from ..text.minilm import MiniLMTextEncoder
from ..training.caching import CacheWriter
from ..training.train_config import DataConfig
from ..vae.taesd_layout import ToyVAE
from ..toyworld.world import ToyWorld


class ToyFrozenEncoder:
    """The frozen parts of the toy bundle (the ``FrozenEncoder`` protocol of ``training.caching``)."""

    def __init__(self, vae: ToyVAE, text: MiniLMTextEncoder, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.vae = vae.to(self.device).eval()
        self.text = text
        self._captions: dict = {}

    @torch.no_grad()
    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(frames.to(self.device)).float().cpu()

    def encode_text(self, captions: list[str]) -> torch.Tensor:
        missing = [c for c in dict.fromkeys(captions) if c not in self._captions]
        if missing:
            for caption, row in zip(missing, self.text(missing)):
                self._captions[caption] = row.half()
        return torch.stack([self._captions[c].float() for c in captions])

    def describe(self) -> dict:
        return {"vae": "toy TAESD-layout VAE", "vae_scale": float(self.vae.vae_scale),
                "text": "all-MiniLM-L6-v2 (frozen), 77 tokens x 384, zeros at padding"}


def _collate(items):
    return list(zip(*items))


class _Clips(torch.utils.data.Dataset):
    def __init__(self, world: ToyWorld, count: int):
        self.world, self.count = world, count

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        clip = self.world.clip(index)
        return index, clip.frames, clip.caption, clip.motion, clip.speed, clip.picture, clip.meta.get("amplitude", 1.0)


def _single_thread(_):
    torch.set_num_threads(1)


def build_toy_cache(world: ToyWorld, count: int, encoder: ToyFrozenEncoder, out_dir: str | Path,
                    batch: int = 16, workers: int = 0, progress: Optional[Callable[[int], None]] = None) -> Path:
    """Encode clips ``0..count-1`` of ``world`` into one cache shard (random access without reloading).

    Clips are drawn by ``workers`` processes (each clip depends on its index alone, so the cache is the same
    for any worker count) and written in index order."""
    fps = 2.0 / world.interval
    cfg = DataConfig(kind=world.kind, num_frames=world.num_frames, fps=[fps], resolution=world.size,
                     clips_per_video=1, min_motion=None, max_motion=None, max_jump=None, shard_size=count)
    writer = CacheWriter(out_dir, cfg, encoder.describe())
    writer.set_empty_text(encoder.encode_text([""])[0])
    # spawned workers: a forked worker inherits the parent's OpenMP/CUDA state and can deadlock
    loader = torch.utils.data.DataLoader(_Clips(world, count), batch_size=batch, num_workers=workers,
                                         collate_fn=_collate, worker_init_fn=_single_thread if workers else None,
                                         multiprocessing_context="spawn" if workers else None)
    for indices, frames, captions, motions, speeds, pictures, amplitudes in loader:
        latents = encoder.encode_video(torch.cat(frames))
        latents = latents.view(len(indices), world.num_frames, *latents.shape[1:])
        texts = encoder.encode_text(list(captions))
        for i, index in enumerate(indices):
            writer.add(latents[i], texts[i], {"key": f"{world.split}/{world.kind}/{index}", "caption": captions[i],
                                              "motion": motions[i], "speed": speeds[i], "picture": pictures[i],
                                              "fps": fps, "amplitude": round(float(amplitudes[i]), 6)})
        if progress is not None:
            progress(len(indices))
    return writer.close()
