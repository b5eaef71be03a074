"""A short pilot of the base_gamma phase with other noise-level settings (issue 35, the gamma bar).

The bundle's ``base_gamma`` phase (coupling 0.1 per octave + the prior-share embedding) learnt the link between the
prior's amount and the motion slowly: 3.3 % then 4.0 % between the knob's ends at steps 500 and 1,000, where the bar
is 2x. The amount of ``z^c`` in the input tells the motion only where the input is mostly noise (t near 999), and
half of the phase's clips are drawn from t >= 850, the other half from anywhere. This pilot continues from an export
of that phase with ``--high-noise-fraction`` of the clips from ``--high-noise-from`` (everything else the phase's own
settings, run folder of its own, resumable), then exports the EMA weights; judge it with
``bench/prior_response.py`` (the first prediction's motion energy against the share) and the probe's flow.

    .venv/bin/python bench/gamma_pilot.py --run runs/b128 --init models/microcinema/microcinema_toy_base.safetensors \
        --out runs/b128/pilot_high_noise --steps 300 --high-noise-fraction 1.0 --high-noise-from 950
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from microcinema_core.experiments.bundle import PROFILES, model_run  # noqa: E402
from microcinema_core.training.caching import REVERSED_TEXT  # noqa: E402
from microcinema_core.training.trainer import train  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/b128", help="the bundle run whose 128-px cache the pilot trains on")
    parser.add_argument("--profile", default="cpu128")
    parser.add_argument("--init", required=True, help="a base_gamma export (fp16 or fp32 safetensors)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--save-every", type=int, default=150)
    parser.add_argument("--high-noise-fraction", type=float, default=1.0)
    parser.add_argument("--high-noise-from", type=int, default=950)
    parser.add_argument("--lr", type=float, default=None, help="default: the phase's")
    parser.add_argument("--embedding-lr-scale", type=float, default=1.0,
                        help="the prior-share embedding's layers at lr x this (train.embedding_lr_scale)")
    parser.add_argument("--trainable", default="", help="comma-separated module prefixes that learn, the rest "
                        "frozen (train.trainable), e.g. prior_share_embed. ; default: every layer")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    profile = PROFILES[args.profile]
    run = model_run("base", profile, Path(args.run), args.seed, "cpu", hires=True, gamma=True)
    run.train.init = args.init
    run.train.output_dir = args.out
    run.train.max_steps = args.steps
    run.train.save_every = args.save_every
    run.train.warmup_steps = 20
    run.train.seed += 100   # a data order of its own, not the phase's first steps again
    run.train.high_noise_fraction = args.high_noise_fraction
    run.train.high_noise_from = args.high_noise_from
    if args.lr:
        run.train.lr = args.lr
    run.train.embedding_lr_scale = args.embedding_lr_scale
    run.train.trainable = tuple(p for p in args.trainable.split(",") if p)
    if run.train.reverse_rate and not (Path(run.train.cache_dir) / REVERSED_TEXT).exists():
        from microcinema_core.experiments.reversal import add_reversed_text
        from microcinema_core.text.minilm import MiniLMTextEncoder

        print(add_reversed_text(run.train.cache_dir, MiniLMTextEncoder()), flush=True)   # as the bundle does
    started = time.time()
    result = train(run, device="cpu")
    record = {"init": args.init, "steps": result.step, "high_noise_fraction": args.high_noise_fraction,
              "high_noise_from": args.high_noise_from, "lr": run.train.lr,
              "embedding_lr_scale": args.embedding_lr_scale, "trainable": list(run.train.trainable), "seconds": round(time.time() - started, 1),
              "export": str(result.export_path)}
    Path(args.out, "pilot.json").write_text(json.dumps(record, indent=1))
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
