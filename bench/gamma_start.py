"""Does gamma move the motion when sampling starts at a finite noise level? (issue 35, the gamma bar)

A zero-terminal-SNR base decides the motion at t = 999, where its input holds nothing of the clip, so the prior's
mean ``(lambda + gamma) z^c`` is invisible there. This bench samples the same held-out moving videos at each gamma,
starting the spacing at each ``--start-sigmas`` (``inf``: the whole schedule), and prints the mean flow, the
direction agreement and the centre PSNR per cell.

    .venv/bin/python bench/gamma_start.py --base FILE --vae FILE --gammas=-0.03,0.02,0.1,0.3 --start-sigmas inf,14.6
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from microcinema_core.eval.flow_motion import classify, video_motion  # noqa: E402
from microcinema_core.eval.image_metrics import psnr  # noqa: E402
from microcinema_core.text.minilm import MiniLMTextEncoder  # noqa: E402
from microcinema_core.toyworld.motions import CAMERA_MOTIONS  # noqa: E402
from microcinema_core.experiments.probe import heldout_cases, sample_videos  # noqa: E402
from microcinema_core.toyworld.sources import load_or_gather  # noqa: E402
from microcinema_core.vae.taesd_layout import ToyVAE  # noqa: E402
from microcinema_core.weights.checkpoint import load_checkpoint  # noqa: E402


def _floats(text: str) -> list:
    return [float(v) for v in text.split(",")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--vae", required=True)
    parser.add_argument("--sources", default="runs/toy/sources.npz")
    parser.add_argument("--gammas", type=_floats, default=[-0.03, 0.02, 0.1, 0.3])
    parser.add_argument("--start-sigmas", type=_floats, default=[math.inf, 14.6])
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sources = load_or_gather(args.sources)
    base = load_checkpoint(args.base, dtype="fp32").eval()
    vae = ToyVAE.load(args.vae)
    text = MiniLMTextEncoder()
    moving = tuple(m for m in CAMERA_MOTIONS if m != "static")
    cases = heldout_cases(sources, args.count, seed=4, motions=moving, size=base.config.resolution)
    centre = base.config.num_frames // 2
    keyframes = torch.stack([c.frames[centre] for c in cases])
    rows = []
    for start in args.start_sigmas:
        for gamma in args.gammas:
            t0 = time.perf_counter()
            frames, _ = sample_videos(base, vae, text, keyframes, [c.caption for c in cases], steps=args.steps,
                                      cfg=args.cfg, gamma=gamma, seed=0,
                                      start_sigma=None if math.isinf(start) else start)
            motions = [video_motion(f.numpy()) for f in frames]
            row = {"start_sigma": start, "gamma": gamma,
                   "mean_px": round(float(np.mean([m.magnitude for m in motions])), 3),
                   "agreement": round(float(np.mean([classify(m) == c.motion for m, c in zip(motions, cases)])), 3),
                   "centre_psnr_db": round(float(psnr(frames[:, centre], keyframes).mean()), 2),
                   "seconds": round(time.perf_counter() - t0, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
