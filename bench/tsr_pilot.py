"""A short continuation of the 128-px TSR with another loss weight (issue 35: a TSR that beats the blend).

The shipped TSR is an x0_residual network trained with the min-SNR-5 weight on its z_0 error, which gives the
steps near pure noise almost no weight (``min(SNR_t, 5)``, ~0.005 at t = 999); yet sampling from pure noise starts
there, and a one-step sampler returns exactly that prediction. This pilot continues from a TSR export on the
bundle run's 128-px TSR cache with ``--x0-min-snr`` (``none``: the plain z_0 error at every t), everything else the
``tsr_hires`` stage's own settings, in a run folder of its own (resumable), and exports the EMA weights. Judge it
with ``bench/tsr_steps.py --tsr <export>`` on the validation clips. ``--clips N`` trains on a cache of its own instead
(``<out>/cache_tsr_hires``: N clips of the same world and VAE, ``--real`` the share of real-video clips; built once,
~0.3-0.4 s a clip on 2 cores): does a larger cache generalise where the 600-clip one was fitted?

    .venv/bin/python bench/tsr_pilot.py --run runs/b128 --init models/microcinema/microcinema_toy_tsr.safetensors \
        --out runs/tsr_pilot_x0 --steps 500 --x0-min-snr none
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from microcinema_core.experiments.bundle import PROFILES, Bundle, model_run  # noqa: E402
from microcinema_core.training.trainer import train  # noqa: E402


def _min_snr(text: str):
    return None if text.lower() == "none" else float(text)


def _own_cache(args, profile) -> Path:
    """``<out>/cache_tsr_hires``: ``--clips`` TSR clips of the bundle's world (its seed, motion sizes and the run's
    128-px VAE) with ``--real`` of them cut from the training videos; built once (``done.json`` marks it)."""
    from microcinema_core.toyworld.world import ClassMix, ToyWorld

    target = Path(args.out) / "cache_tsr_hires"
    if (target / "done.json").exists():
        return target
    bundle = Bundle(Path(args.run), profile, args.seed, "cpu", None)
    default = ClassMix()   # the world's own camera : object ratio, the real share replaced by --real
    rest = (1.0 - args.real) / (default.camera + default.objects)
    world = ToyWorld(bundle.sources(), "train", "tsr", seed=args.seed, size=profile.hires_size,
                     mix=ClassMix(camera=default.camera * rest, objects=default.objects * rest, real=args.real),
                     amplitude_octaves=profile.amplitude_octaves, amplitude_scale=profile.hires_tsr_amplitude)
    info = bundle._encode_cache(world, args.clips, target, bundle.vae(hires=True), f"cache tsr x{args.clips}")
    (target / "done.json").write_text(json.dumps({**info, "real": args.real}))
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/b128", help="the bundle run whose 128-px TSR cache the pilot trains on")
    parser.add_argument("--profile", default="cpu128")
    parser.add_argument("--init", required=True, help="a TSR export (fp16 or fp32 safetensors)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--save-every", type=int, default=250)
    parser.add_argument("--x0-min-snr", type=_min_snr, default=None, help="a number, or none (plain z_0 error)")
    parser.add_argument("--lr", type=float, default=None, help="default: the stage's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clips", type=int, default=0, help="> 0: a cache of this many clips in --out (else --run's)")
    parser.add_argument("--real", type=float, default=0.1, help="with --clips: the share of real-video clips")
    args = parser.parse_args(argv)

    run = model_run("tsr", PROFILES[args.profile], Path(args.run), args.seed, "cpu", hires=True)
    run.train.init = args.init
    run.train.output_dir = args.out
    run.train.max_steps = args.steps
    run.train.save_every = args.save_every
    run.train.warmup_steps = 20
    run.train.seed += 100   # a data order of its own, not the stage's first steps again
    run.train.x0_min_snr = args.x0_min_snr
    if args.clips > 0:
        run.train.cache_dir = str(_own_cache(args, PROFILES[args.profile]))
    if args.lr:
        run.train.lr = args.lr
    started = time.time()
    result = train(run, device="cpu")
    record = {"init": args.init, "steps": result.step, "clips": args.clips or "the run's", "real": args.real,
              "x0_min_snr": args.x0_min_snr, "lr": run.train.lr,
              "seconds": round(time.time() - started, 1), "export": str(result.export_path)}
    Path(args.out, "pilot.json").write_text(json.dumps(record, indent=1))
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
