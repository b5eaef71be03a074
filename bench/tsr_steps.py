"""How many Euler steps should TSR take? (issue 35: a TSR that beats the blend)

Sampling a diffusion model draws one plausible in-between clip; the distance of a draw from the truth is larger
than that of the mean over all draws (for a Gaussian posterior, twice the squared error). With one Euler step from
pure noise (zero-terminal SNR) the sample *is* the network's prediction of the clean clip given the two end frames:
that mean. This bench measures TSR's in-between frames at each ``--steps`` against the blend of the encoded ends, on
validation clips that share nothing with the evaluation's (toy held-out pictures at another world seed, the real
carphone clip at other start frames), three sampling seeds each.

    .venv/bin/python bench/tsr_steps.py --models models --sources runs/b128/sources.npz --steps 1,2,5,20 --count 12
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from microcinema_core.experiments.evaluate import load_bundle, real_tsr_clips, tsr_vs_blend  # noqa: E402
from microcinema_core.toyworld.motions import CAMERA_MOTIONS  # noqa: E402
from microcinema_core.toyworld.sources import load_or_gather  # noqa: E402
from microcinema_core.toyworld.world import ToyWorld  # noqa: E402
from microcinema_core.weights.checkpoint import load_checkpoint  # noqa: E402

VALIDATION_WORLD_SEED = 3031   # the evaluation's TSR clips use 2029


def validation_toy_clips(sources, count: int, size: int) -> list:
    world = ToyWorld(sources, "heldout", "tsr", seed=VALIDATION_WORLD_SEED, size=size)
    return [world.clip(i, motion=CAMERA_MOTIONS[1 + (i + 3) % 8]).frames for i in range(count)]


def validation_real_clips(sources, count: int, size: int, name: str = "carphone") -> list:
    """The evaluation takes evenly spaced starts; these are the odd ones of twice as many."""
    return real_tsr_clips(sources, 2 * count + 1, size, name)[1::2][:count]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="models")
    parser.add_argument("--sources", default="runs/b128/sources.npz")
    parser.add_argument("--tsr", default=None, help="a TSR file to judge instead of the bundle's (e.g. a pilot's export)")
    parser.add_argument("--steps", default="1,2,5,20")
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    base, tsr, vae, text = load_bundle(Path(args.models))
    if args.tsr:
        tsr = load_checkpoint(Path(args.tsr), dtype="fp32").eval()
    sources = load_or_gather(Path(args.sources))
    size = tsr.config.resolution
    sets = {"toy_validation": validation_toy_clips(sources, args.count, size),
            "carphone_validation": validation_real_clips(sources, args.count, size)}
    rows = []
    for steps in (int(s) for s in args.steps.split(",")):
        start = time.perf_counter()
        result = tsr_vs_blend(tsr, vae, text, sources, args.count, with_rife=False, steps=steps, clips_by_set=sets)
        seconds = time.perf_counter() - start
        for name, row in result.items():
            rows.append({"tsr": args.tsr or "bundle", "steps": steps, "set": name, "seconds": round(seconds, 1), **row})
            print(f"steps {steps:3d} {name:20s} TSR {row['tsr_psnr_db']:.2f} dB (spread "
                  f"{row['tsr_psnr_db_seed_spread']:.2f}) vs blend {row['latent_blend_psnr_db']:.2f}; latent MSE "
                  f"{row['tsr_latent_mse']:.4f} vs {row['latent_blend_latent_mse']:.4f}; from the blend at 0.4: "
                  f"{row['tsr_from_blend_psnr_db']:.2f}; beats: {row['tsr_beats_latent_blend_beyond_spread']}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
