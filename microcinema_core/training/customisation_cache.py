"""The customisation pairs as a latent cache (issue 36): the trainer reads them as it reads clips.

A pair cache is a :class:`caching.LatentCache` whose every "clip" holds two frames, frame 0 the subject reference
and frame 1 the target (``latents [2, 4, h, w]``), with the caption as its text; its manifest says
``"content": "customisation_pairs"``. ``pairs`` are any objects with ``reference``, ``target`` (``[3, S, S]`` in
[0, 1]) and ``caption``: the toy ``CustomisationPair`` or a real set's ``RealPair`` (``customisation_data.py``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import torch

from ..atomic import atomic_write
from .caching import MANIFEST, CacheWriter, FrozenEncoder, LatentCache
from .train_config import DataConfig

PAIR_CONTENT = "customisation_pairs"
REFERENCE, TARGET = 0, 1   # frame rows of a pair


def build_pair_cache(pairs: Iterable, encoder: FrozenEncoder, out_dir: str | Path, size: int,
                     dtype: torch.dtype = torch.float16, shard_size: int = 256) -> int:
    """Encode every pair (reference and target through the frozen VAE, caption through the text encoder);
    returns the count. The manifest is written last, so a folder with one is complete."""
    cfg = DataConfig(kind="base", num_frames=2, fps=[1.0], resolution=size, min_motion=None, max_motion=None,
                     max_jump=None, shard_size=shard_size)
    writer = CacheWriter(out_dir, cfg, encoder.describe(), dtype=dtype)
    writer.set_empty_text(encoder.encode_text([""])[0])
    count = 0
    for index, pair in enumerate(pairs):
        with torch.no_grad():
            latents = encoder.encode_video(torch.stack([pair.reference, pair.target]))
            text = encoder.encode_text([pair.caption])[0]
        writer.add(latents, text, {"key": str(getattr(pair, "key", index)), "caption": pair.caption})
        count += 1
    if not count:
        raise ValueError("no customisation pairs to cache")
    path = writer.close()
    manifest = json.loads(path.read_text())
    manifest["content"] = PAIR_CONTENT
    atomic_write(path, json.dumps(manifest, indent=1))
    return count


def open_pair_cache(cache_dir: str | Path) -> LatentCache:
    """The pair cache at ``cache_dir``; a clip cache or a missing folder is an error that says what to give."""
    cache = LatentCache(cache_dir)
    if cache.manifest.get("content") != PAIR_CONTENT or cache.num_frames != 2:
        raise ValueError(f"{Path(cache_dir) / MANIFEST} is not a customisation pair cache (build one with "
                         "training/customisation_cache.py build_pair_cache); train.customisation_cache_dir needs one")
    return cache
