"""The latent cache: frozen-encoder outputs on disk, so training never re-encodes (sec. 4, appendix C:
the SD2.1 VAE and OpenCLIP text encoder stay frozen).

Layout of a cache folder::

    manifest.json                 format, shapes, data settings, encoder, one record per clip, summary
    shard_00000.safetensors       latents [K, N, 4, h, w] (VAE latents already x0.18215), text [K, 77, D]
    empty_text.safetensors        text [77, D]: the empty prompt, used for text dropout (optional)

Shards and the manifest are written to a temporary name and moved into place (``os.replace``); the
manifest is written last, so a folder with a manifest is always complete.
"""
from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Optional, Protocol

import torch
from safetensors.torch import load_file

from ..atomic import atomic_write
from ..weights.files import atomic_save_safetensors
from .captions import VideoEntry
from .clips import Clip, condition_indices, iter_clips
from .filters import ScoreFn, caption_verdict, motion_steps, motion_verdict
from .summary import DataSummary
from .train_config import DataConfig

CACHE_FORMAT = "microcinema-latent-cache"
CACHE_VERSION = 1
MANIFEST = "manifest.json"
EMPTY_TEXT = "empty_text.safetensors"
REVERSED_TEXT = "reversed_text.safetensors"   # optional: each clip's caption played backwards (experiments/reversal.py)


class FrozenEncoder(Protocol):
    """What the cache writer needs from the frozen parts (ComfyUI-backed or a test stand-in)."""

    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """``[N, 3, S, S]`` in [0, 1] -> scaled latents ``[N, 4, S/8, S/8]``."""

    def encode_text(self, captions: list[str]) -> torch.Tensor:
        """captions -> ``[B, 77, D]`` (the cross-attention context the U-Net sees)."""

    def describe(self) -> dict:
        """A JSON-able description recorded in the manifest."""


class CacheWriter:
    """Accumulates encoded clips and flushes them as shards of ``shard_size``."""

    def __init__(self, out_dir: str | Path, data_cfg: DataConfig, encoder_info: dict,
                 dtype: torch.dtype = torch.float16):
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        if (self.out / MANIFEST).exists():
            raise FileExistsError(f"{self.out} already holds a cache (manifest.json); use a new folder")
        self.cfg = data_cfg
        self.encoder_info = encoder_info
        self.dtype = dtype
        self.shards: list[dict] = []
        self.records: list[dict] = []
        self._latents: list[torch.Tensor] = []
        self._text: list[torch.Tensor] = []
        self.latent_shape = None
        self.text_shape = None
        self.has_empty_text = False

    def set_empty_text(self, text: torch.Tensor) -> None:
        atomic_save_safetensors({"text": text.to(self.dtype).cpu()}, self.out / EMPTY_TEXT)
        self.has_empty_text = True

    def add(self, latents: torch.Tensor, text: torch.Tensor, record: dict) -> None:
        latents, text = latents.detach().to("cpu", self.dtype), text.detach().to("cpu", self.dtype)
        if self.latent_shape is None:
            self.latent_shape, self.text_shape = list(latents.shape), list(text.shape)
        if list(latents.shape) != self.latent_shape or list(text.shape) != self.text_shape:
            raise ValueError(f"clip shapes {list(latents.shape)}/{list(text.shape)} differ from the cache's "
                             f"{self.latent_shape}/{self.text_shape}")
        record = dict(record, shard=len(self.shards), row=len(self._latents))
        self.records.append(record)
        self._latents.append(latents)
        self._text.append(text)
        if len(self._latents) >= self.cfg.shard_size:
            self._flush()

    def _flush(self) -> None:
        if not self._latents:
            return
        name = f"shard_{len(self.shards):05d}.safetensors"
        atomic_save_safetensors({"latents": torch.stack(self._latents), "text": torch.stack(self._text)},
                                self.out / name)
        self.shards.append({"file": name, "count": len(self._latents)})
        self._latents, self._text = [], []

    def close(self, summary: Optional[DataSummary] = None) -> Path:
        self._flush()
        manifest = {
            "format": CACHE_FORMAT, "version": CACHE_VERSION,
            "kind": self.cfg.kind, "num_frames": self.cfg.num_frames,
            "condition_indices": condition_indices(self.cfg.kind, self.cfg.num_frames),
            "latent_shape": self.latent_shape, "text_shape": self.text_shape,
            "dtype": str(self.dtype).replace("torch.", ""),
            "has_empty_text": self.has_empty_text,
            "data_config": asdict(self.cfg), "encoder": self.encoder_info,
            "shards": self.shards, "clips": self.records,
            "summary": summary.to_dict() if summary is not None else None,
        }
        path = self.out / MANIFEST
        atomic_write(path, json.dumps(manifest, indent=1))
        return path


def build_cache(entries: Iterable[VideoEntry], data_cfg: DataConfig, encoder: FrozenEncoder,
                out_dir: str | Path, score_fn: Optional[ScoreFn] = None,
                dtype: torch.dtype = torch.float16) -> DataSummary:
    """Cut, filter, encode and store every clip; returns the summary (also stored in the manifest)."""
    summary = DataSummary()
    writer = CacheWriter(out_dir, data_cfg, encoder.describe(), dtype=dtype)
    writer.set_empty_text(encoder.encode_text([""])[0])
    cond_idx = condition_indices(data_cfg.kind, data_cfg.num_frames)
    for clip in iter_clips(list(entries), data_cfg, summary):
        record = _filter_clip(clip, data_cfg, score_fn, cond_idx, summary)
        if record is None:
            continue
        with torch.no_grad():
            latents = encoder.encode_video(clip.frames)
            text = encoder.encode_text([clip.caption])[0]
        writer.add(latents, text, record)
        summary.clips_kept += 1
    writer.close(summary)
    return summary


def _filter_clip(clip: Clip, cfg: DataConfig, score_fn, cond_idx, summary: DataSummary) -> Optional[dict]:
    steps = motion_steps(clip.frames, cfg.motion_measure)
    reason = motion_verdict(steps, cfg)
    if reason:
        summary.drop(reason)
        return None
    reason, score = caption_verdict(score_fn, clip.frames[cond_idx[0]], clip.caption, cfg.min_caption_score)
    if reason:
        summary.drop(reason)
        return None
    return {"key": clip.key, "caption": clip.caption, "fps": clip.fps, "start": round(clip.start, 4),
            "motion_mean": round(float(steps.mean()), 6), "motion_max": round(float(steps.max()), 6),
            "caption_score": score}


class LatentCache:
    """Read side: random access to cached clips; keeps the last few shards in memory."""

    def __init__(self, cache_dir: str | Path, max_open_shards: int = 2):
        self.dir = Path(cache_dir)
        path = self.dir / MANIFEST
        if not path.exists():
            raise FileNotFoundError(f"{self.dir}: no {MANIFEST}; build the cache with "
                                    "python -m microcinema_core.training.encode_cache")
        self.manifest = json.loads(path.read_text())
        if self.manifest.get("format") != CACHE_FORMAT or self.manifest.get("version", 0) > CACHE_VERSION:
            raise ValueError(f"{path}: not a MicroCinema latent cache of a version this code reads")
        self.clips = self.manifest["clips"]
        self.kind = self.manifest["kind"]
        self.num_frames = int(self.manifest["num_frames"])
        self.condition_indices = list(self.manifest["condition_indices"])
        self._open: OrderedDict[int, dict] = OrderedDict()
        self._max_open = max_open_shards

    def __len__(self) -> int:
        return len(self.clips)

    def _shard(self, index: int) -> dict:
        if index in self._open:
            self._open.move_to_end(index)
            return self._open[index]
        tensors = load_file(str(self.dir / self.manifest["shards"][index]["file"]))
        self._open[index] = tensors
        while len(self._open) > self._max_open:
            self._open.popitem(last=False)
        return tensors

    def __getitem__(self, i: int) -> dict:
        record = self.clips[i]
        shard = self._shard(record["shard"])
        return {"latents": shard["latents"][record["row"]].float(), "text": shard["text"][record["row"]].float()}

    def batch(self, indices: list[int]) -> dict:
        """Stack clips: latents ``[B, N, 4, h, w]``, text ``[B, 77, D]`` (float32)."""
        items = [self[i] for i in indices]
        return {"latents": torch.stack([it["latents"] for it in items]),
                "text": torch.stack([it["text"] for it in items])}

    def reversed_text(self) -> Optional[dict]:
        """``{"text": [K, 77, D] fp16, "reversible": [K] bool}`` from ``reversed_text.safetensors`` (written next to a
        cache by ``experiments/reversal.py``: each clip's caption played backwards), or None when absent."""
        path = self.dir / REVERSED_TEXT
        if not path.exists():
            return None
        tensors = load_file(str(path))
        if tensors["text"].shape[0] != len(self.clips):
            raise ValueError(f"{path} has {tensors['text'].shape[0]} rows for {len(self.clips)} clips; rebuild it")
        return {"text": tensors["text"], "reversible": tensors["reversible"].bool()}   # fp16: cast per clip at use

    def empty_text(self) -> Optional[torch.Tensor]:
        if not self.manifest.get("has_empty_text"):
            return None
        return load_file(str(self.dir / EMPTY_TEXT))["text"].float()
