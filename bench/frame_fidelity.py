"""How true to the scene are the frames away from the keyframe? (issue 35: the keyframe kept in every frame)

The evaluation's keyframe measure looks at the centre frame (the keyframe's slot). This bench samples held-out
cases, whose true clips exist, at each ``--cfgs`` and prints per setting: the motion agreement, the PSNR of every
generated frame against the true clip's frame at the same time (frames 0 and 8 are the farthest from the
keyframe), the same for the keyframe held still (the yardstick of "no motion at all"), and the seconds per video.

    .venv/bin/python bench/frame_fidelity.py --models models --sources runs/b128/sources.npz --cfgs 1,1.5,2 --count 24
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from microcinema_core.eval.flow_motion import classify, video_motion  # noqa: E402
from microcinema_core.eval.image_metrics import psnr  # noqa: E402
from microcinema_core.experiments.evaluate import load_bundle  # noqa: E402
from microcinema_core.experiments.probe import heldout_cases, sample_videos  # noqa: E402
from microcinema_core.toyworld.motions import CAMERA_MOTIONS  # noqa: E402
from microcinema_core.toyworld.sources import load_or_gather  # noqa: E402


def _floats(text: str) -> list:
    return [float(v) for v in text.split(",")]


def per_frame_psnr(frames: torch.Tensor, truth: torch.Tensor) -> list:
    """``[B, N, 3, S, S]`` both -> the mean PSNR of each frame index over the videos."""
    return [round(float(psnr(frames[:, k], truth[:, k]).mean()), 2) for k in range(frames.shape[1])]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="models")
    parser.add_argument("--sources", default="runs/toy/sources.npz")
    parser.add_argument("--cfgs", type=_floats, default=[1.0, 1.5, 2.0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--gamma", type=float, default=0.02)
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--seed", type=int, default=2029, help="held-out cases (not the evaluation's 2026)")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    base, _, vae, text = load_bundle(Path(args.models))
    sources = load_or_gather(args.sources)
    moving = tuple(m for m in CAMERA_MOTIONS if m != "static")
    cases = heldout_cases(sources, args.count, size=base.config.resolution, seed=args.seed, motions=moving)
    truth = torch.stack([c.frames for c in cases]).float()
    centre = base.config.num_frames // 2
    keys = truth[:, centre]
    still = keys[:, None].expand_as(truth)
    print(json.dumps({"setting": "keyframe held still", "psnr_per_frame": per_frame_psnr(still, truth)}), flush=True)
    for cfg in args.cfgs:
        started = time.perf_counter()
        frames, _ = sample_videos(base, vae, text, keys, [c.caption for c in cases], steps=args.steps, cfg=cfg,
                                  gamma=args.gamma, seed=0)
        seconds = (time.perf_counter() - started) / len(cases)
        motions = [video_motion(f.numpy()) for f in frames]
        print(json.dumps({"cfg": cfg, "steps": args.steps, "videos": len(cases),
                          "agreement": round(sum(classify(m) == c.motion for m, c in zip(motions, cases)) / len(cases), 3),
                          "mean_px": round(sum(m.magnitude for m in motions) / len(motions), 3),
                          "psnr_per_frame": per_frame_psnr(frames.float(), truth),
                          "seconds_per_video": round(seconds, 2)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
