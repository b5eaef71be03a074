"""Shared helpers of the training tests: synthetic videos, a stand-in frozen encoder, a tiny config.

No SD2.1 weights exist offline, so the cache tests inject :class:`StandInEncoder` (a fixed, deterministic
map with the VAE's shapes: 8x downsampling to 4 channels, and a caption-seeded ``[77, D]`` context).
"""
from __future__ import annotations

import csv
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# a very small model of the real structure: 2 levels, 1 res block, 16 channels, 32-px clips (4x4 latents)
TINY_MODEL = {"channel_mult": [1, 2], "model_channels": 16, "norm_groups": 8, "num_res_blocks": 1,
              "attention_levels": [1], "context_dim": 32}
TEXT_DIM = 32


def write_video(path: Path, frames: int = 50, fps: float = 10.0, size=(64, 48), seed: int = 0,
                speed: float = 2.0) -> Path:
    """A moving coloured square on a gradient (H.264 via imageio-ffmpeg)."""
    import imageio.v2 as imageio

    rng = np.random.default_rng(seed)
    w, h = size
    colour = rng.integers(60, 255, size=3)
    yy, xx = np.mgrid[0:h, 0:w]
    background = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 90)], axis=-1).astype(np.uint8)
    writer = imageio.get_writer(str(path), fps=fps, codec="libx264", quality=8, macro_block_size=16,
                                ffmpeg_log_level="error")
    for i in range(frames):
        frame = background.copy()
        x0 = int((i * speed) % (w - 16))
        frame[16:32, x0:x0 + 16] = colour
        writer.append_data(frame)
    writer.close()
    return path


def write_static_video(path: Path, frames: int = 50, fps: float = 10.0, size=(64, 48)) -> Path:
    import imageio.v2 as imageio

    writer = imageio.get_writer(str(path), fps=fps, codec="libx264", quality=8, macro_block_size=16,
                                ffmpeg_log_level="error")
    frame = np.full((size[1], size[0], 3), 128, np.uint8)
    frame[10:30, 10:30] = (200, 40, 40)
    for _ in range(frames):
        writer.append_data(frame)
    writer.close()
    return path


def write_caption_csv(folder: Path, rows: list[tuple[str, str]]) -> Path:
    path = folder / "captions.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "caption"])
        writer.writerows(rows)
    return path


class StandInEncoder:
    """Deterministic stand-in for the frozen SD2.1 VAE + OpenCLIP (same output shapes)."""

    def __init__(self, text_dim: int = TEXT_DIM):
        self.text_dim = text_dim
        self.mix = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, -0.5, 0.25]])

    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        pooled = F.avg_pool2d(frames * 2.0 - 1.0, 8)               # [N, 3, S/8, S/8]
        return torch.einsum("nchw,kc->nkhw", pooled, self.mix) * 0.9

    def encode_text(self, captions: list[str]) -> torch.Tensor:
        out = []
        for caption in captions:
            g = torch.Generator().manual_seed(zlib.crc32(caption.encode()))
            out.append(torch.randn(77, self.text_dim, generator=g) * (0.0 if caption == "" else 0.5))
        return torch.stack(out)

    def describe(self) -> dict:
        return {"name": "stand-in (tests)"}


def make_video_folder(folder: Path, count: int = 4, fps: float = 10.0, frames: int = 50) -> Path:
    """``count`` moving-square videos and a ``path,caption`` CSV; returns the CSV path."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        name = f"clip{i}.mp4"
        write_video(folder / name, frames=frames, fps=fps, seed=i, speed=1.0 + i)
        rows.append((name, f"a square moving right, video {i}"))
    return write_caption_csv(folder, rows)


def build_test_cache(tmp: Path, kind: str = "base", count: int = 4, num_frames: int = 5) -> Path:
    """Videos -> clips -> stand-in encoder -> cache; returns the cache folder."""
    from microcinema_core.training.caching import build_cache
    from microcinema_core.training.captions import read_caption_csv
    from microcinema_core.training.train_config import DataConfig

    csv_path = make_video_folder(tmp / "videos", count=count)
    cfg = DataConfig(kind=kind, num_frames=num_frames, fps=[2.0] if kind == "base" else [8.0],
                     resolution=32, min_motion=0.0005)
    build_cache(read_caption_csv(csv_path), cfg, StandInEncoder(), tmp / "cache", dtype=torch.float32)
    return tmp / "cache"


def tiny_run_config(cache: Path, out: Path, **train_overrides):
    from microcinema_core.training.train_config import DataConfig, RunConfig, TrainConfig

    values = dict(kind="base", preset="tiny", model_overrides=dict(TINY_MODEL), cache_dir=str(cache),
                  output_dir=str(out), batch_size=2, lr=1e-3, spatial_lr_scale=0.1, warmup_steps=2,
                  max_steps=10, precision="fp32", save_every=1000, log_every=1, progress_bar=False,
                  tensorboard=False, text_drop_rate=0.1, grad_clip=1.0, export_name="tiny.safetensors")
    values.update(train_overrides)
    return RunConfig(data=DataConfig(), train=TrainConfig(**values))
