"""The held-out pictures through toy VAEs: a PNG (one row per VAE, the pictures on top) and PSNR / SSIM per VAE.

    .venv/bin/python bench/vae_sheet.py --size 128 --out docs/img/vae128_heldout.png \
        models/vae/microcinema_toy_vae.safetensors runs/b128/vae_hires/vae.safetensors

Pictures: the six held-out photos, centre views at ``--size`` px (the toy world's static held-out clips, the frames
``experiments.bundle.heldout_vae_psnr`` draws); the scores are over ``--count`` such frames (96: the bundle's figure).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the benchmark runs from a checkout

from microcinema_core.eval.contact_sheet import contact_sheet  # noqa: E402
from microcinema_core.eval.image_metrics import psnr, ssim  # noqa: E402
from microcinema_core.experiments.bundle import _heldout_frames  # noqa: E402
from microcinema_core.toyworld.sources import HELD_OUT_PICTURES, load_or_gather  # noqa: E402
from microcinema_core.toyworld.world import ToyWorld  # noqa: E402
from microcinema_core.vae.taesd_layout import ToyVAE  # noqa: E402


@torch.no_grad()
def round_trip(vae: ToyVAE, frames: torch.Tensor) -> torch.Tensor:
    return torch.cat([vae.decode(vae.encode(frames[i:i + 32])).clamp(0, 1) for i in range(0, len(frames), 32)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vaes", nargs="+", help="toy VAE files (safetensors), one row each")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--count", type=int, default=96)
    parser.add_argument("--out", required=True, help="the PNG to write")
    parser.add_argument("--sources", default="runs/sources.npz")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    sources = load_or_gather(Path(args.sources))
    world = ToyWorld(sources, "heldout", "base", seed=3, motions=("static",), size=args.size)
    pictures = torch.stack([world.clip(0, picture=name).frames[4] for name in HELD_OUT_PICTURES])
    frames = _heldout_frames(sources, args.count, 3, args.size)
    rows, labels = [pictures], ["held-out pictures"]
    for path in args.vaes:
        vae = ToyVAE.load(path)
        scores = round_trip(vae, frames)
        label = (f"{Path(path).parent.name}/{Path(path).name}: {psnr(scores, frames).mean():.2f} dB, "
                 f"SSIM {ssim(scores, frames).mean():.3f}")
        print(label)
        rows.append(round_trip(vae, pictures))
        labels.append(label)
    contact_sheet(rows, args.out, labels=labels)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
