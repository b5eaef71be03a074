"""The subject-driven model's ablation (issue 36): the abstract's two remedies, each left out, at the budget of the
shipped run (``Profile.custom_steps``, fixed before any run), on the same caches and from the same base.

    python -m microcinema_core.experiments.custom_ablation --out runs/b128 [--profile cpu128] [--variants ...]
    python -m microcinema_core.experiments.evaluate_custom --models models --sources runs/b128/sources.npz \
        --custom full=runs/b128/custom/microcinema_toy_custom.safetensors \
        --custom no_token_drop=runs/b128/custom_no_token_drop/microcinema_toy_custom.safetensors \
        --custom sequential=runs/b128/custom_sequential/microcinema_toy_custom.safetensors

Variants (each a ``train`` setting changed from the shipped run's ``custom_run``): ``no_token_drop``: image-to-video
clips keep their whole keyframe (no image-token dropping, so no randomised initialisation either);
``sequential``: no stochastic switch, the customisation objective for the first half of the steps and then
image-to-video (``train.objective_switch = "sequential"``). The full recipe is the bundle's own ``custom`` stage.
Run after the bundle's ``custom`` stage (its caches); each variant is a resumable stage of the run's
``bundle.json``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .bundle import PROFILES, Bundle, custom_run

VARIANTS = {"no_token_drop": {"token_drop_rate": 0.0}, "sequential": {"objective_switch": "sequential"}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/b128", help="the bundle's run folder (its custom caches and base)")
    parser.add_argument("--profile", default="cpu128", choices=sorted(PROFILES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: " + ", ".join(VARIANTS))
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    out = Path(args.out)
    bundle = Bundle(out, profile, args.seed, args.device, None, probes="last")
    if not bundle.record["stages"].get("custom", {}).get("done"):
        parser.error(f"{out} has not finished its 'custom' stage: run the bundle command first (its caches and the "
                     "full recipe are the ablation's baseline)")
    for name in args.variants.split(","):
        if name not in VARIANTS:
            parser.error(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
        run = custom_run(profile, out, args.seed, args.device, name=f"custom_{name}", **VARIANTS[name])
        bundle._stage(f"custom_{name}", lambda run=run: bundle.train_model("base", run=run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
