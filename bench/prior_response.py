"""How much does the base's first prediction move with the prior's amount? (issue 35, the gamma bar)

At t = 999 of a zero-terminal-SNR schedule the input is the start noise alone, ``eps_n + (lambda + gamma) z^c``:
the first denoised clip can depend on gamma only through that ``z^c`` share. This bench feeds the same held-out
keyframes, captions and noise at each ``--shares`` (lambda + gamma) and prints the first prediction's motion energy
(mean squared difference of each frame's latent from the centre frame's) per share: a flat row means the network
ignores the prior's amount, which is what a gamma without effect looks like one step before the flow does.

    .venv/bin/python bench/prior_response.py --base FILE [FILE ...] --vae FILE --shares=-0.05,0.05,0.15
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from microcinema_core.diffusion.appearance_input import appearance_sequence  # noqa: E402
from microcinema_core.diffusion.pipeline import GuidedDenoiser  # noqa: E402
from microcinema_core.diffusion.schedule import DiscreteSchedule  # noqa: E402
from microcinema_core.text.minilm import MiniLMTextEncoder  # noqa: E402
from microcinema_core.toyworld.motions import CAMERA_MOTIONS  # noqa: E402
from microcinema_core.experiments.probe import heldout_cases  # noqa: E402
from microcinema_core.toyworld.sources import load_or_gather  # noqa: E402
from microcinema_core.vae.taesd_layout import ToyVAE  # noqa: E402
from microcinema_core.weights.checkpoint import load_checkpoint  # noqa: E402


def _floats(text: str) -> list:
    return [float(v) for v in text.split(",")]


@torch.no_grad()
def first_prediction_energy(model, keys: torch.Tensor, context, uncond, share: float, cfg: float, seed: int) -> float:
    """Motion energy of the denoised clip at the schedule's first sigma, from ``eps_n + share * z^c``."""
    n = model.config.num_frames
    schedule = DiscreteSchedule.from_config(model.config)
    sigma = torch.tensor(schedule.sigma_max)
    appearance = appearance_sequence(model.config.kind, keys, n)
    noise = torch.randn(appearance.shape, generator=torch.Generator().manual_seed(seed))
    x = (noise + share * appearance) * (1 + sigma ** 2) ** 0.5
    denoised = GuidedDenoiser(model, schedule, context, uncond, appearance, n, cfg)(x, sigma)
    clip = denoised.view(len(keys), n, *denoised.shape[1:]).float()
    return float((clip - clip[:, n // 2:n // 2 + 1]).pow(2).mean())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", nargs="+", required=True)
    parser.add_argument("--vae", required=True)
    parser.add_argument("--sources", default="runs/toy/sources.npz")
    parser.add_argument("--shares", type=_floats, default=[-0.05, 0.05, 0.15])
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--cfg", type=float, default=2.0)
    parser.add_argument("--seeds", type=int, default=2, help="noise draws averaged per share")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    sources = load_or_gather(args.sources)
    vae = ToyVAE.load(args.vae)
    text = MiniLMTextEncoder()
    for path in args.base:
        model = load_checkpoint(path, dtype="fp32").eval()
        moving = tuple(m for m in CAMERA_MOTIONS if m != "static")
        cases = heldout_cases(sources, args.count, seed=4, motions=moving, size=model.config.resolution)
        keys = vae.encode(torch.stack([c.frames[model.config.num_frames // 2] for c in cases]))
        context = text([c.caption for c in cases])
        uncond = text([""]).expand_as(context)
        row = {"base": path}
        for share in args.shares:
            row[f"energy_at_{share:g}"] = round(sum(
                first_prediction_energy(model, keys, context, uncond, share, args.cfg, seed)
                for seed in range(args.seeds)) / args.seeds, 5)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
