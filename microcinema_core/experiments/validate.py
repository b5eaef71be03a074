"""Validate a toy base model on held-out cases that the evaluation never draws (choose steps, CFG, a run).

    python -m microcinema_core.experiments.validate --run runs/toy64/base_static [--step 1500] [--cfg 2 3]
    python -m microcinema_core.experiments.validate --base models/microcinema/microcinema_toy_base.safetensors
    python -m microcinema_core.experiments.validate --base ... --split train     # the same on training pictures

The same pictures and phrasings as ``evaluate.py`` (held out from training) but other cases (``--cases-seed`` 7,
the evaluation's is 2026), so that a setting chosen here is not chosen on the evaluation's own videos. ``--run``
reads a training folder's checkpoint (its EMA weights, the model the export would ship) without exporting it.
Prints one JSON line per CFG: agreement, static and moving shares, centre-frame and VAE PSNR, per-frame mean error.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

import torch

from .evaluate import CFG, motion_and_keyframe
from .toy_files import FILES

VALIDATION_CASES_SEED = 7


def model_from_run(run_dir: Path, step: Optional[int] = None):
    """The EMA weights of a training folder's checkpoint (the latest, or ``step``), as the export would ship."""
    from ..models.microcinema import MicroCinemaModel
    from ..training.caching import LatentCache
    from ..training.checkpointing import list_checkpoints
    from ..training.train_config import load_run_config
    from ..training.trainer import model_config_for

    found = list_checkpoints(run_dir)
    if step is not None:
        found = [p for p in found if int(p.stem.split("_")[-1]) == step]
    if not found:
        raise FileNotFoundError(f"--run {run_dir}: no checkpoint{f' of step {step}' if step is not None else ''} "
                                f"in {run_dir / 'checkpoints'}; list that folder, or pass --base with an export")
    run = load_run_config(str(run_dir / "run_config.json"))
    model = MicroCinemaModel(model_config_for(run.train, LatentCache(run.train.cache_dir)))
    state = torch.load(found[-1], map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    if state.get("ema") is not None:
        names = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in state["ema"]["shadow"].items():
                names[name].copy_(value)
    return model.eval(), int(state["step"])


def main(argv=None) -> int:
    from ..text.minilm import MiniLMTextEncoder
    from ..vae.taesd_layout import ToyVAE
    from ..weights.checkpoint import load_checkpoint
    from ..toyworld.sources import load_or_gather

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="a base training folder (checkpoints/, run_config.json)")
    source.add_argument("--base", type=Path, help="an exported base file (.safetensors)")
    parser.add_argument("--step", type=int, default=None, help="with --run: this checkpoint instead of the latest")
    parser.add_argument("--vae", type=Path, default=Path("models/vae") / FILES["vae"])
    parser.add_argument("--sources", type=Path, default=Path("runs/toy/sources.npz"))
    parser.add_argument("--count", type=int, default=108)
    parser.add_argument("--cases-seed", type=int, default=VALIDATION_CASES_SEED)
    parser.add_argument("--cfg", type=float, nargs="+", default=[CFG])
    parser.add_argument("--split", choices=("heldout", "train"), default="heldout",
                        help="train: new clips of the training pictures and phrasings (the generalisation gap)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.run is not None:
        base, step = model_from_run(args.run, args.step)
        label = f"{args.run} step {step}"
    else:
        base, label = load_checkpoint(args.base, dtype="fp32").eval(), str(args.base)
    vae, text, sources = ToyVAE.load(args.vae), MiniLMTextEncoder(), load_or_gather(args.sources)
    for cfg in args.cfg:
        result, cases, _ = motion_and_keyframe(base, vae, text, sources, args.count, cases_seed=args.cases_seed,
                                               cfg=cfg, split=args.split)
        right = [r["measured"] == r["motion"] for r in result["records"]]
        static = [ok for ok, case in zip(right, cases) if case.motion == "static"]
        moving = [ok for ok, case in zip(right, cases) if case.motion != "static"]
        print(json.dumps({"model": label, "split": args.split, "cfg": cfg, "videos": len(cases),
                          "agreement": round(result["agreement"], 4),
                          "static": f"{sum(static)}/{len(static)}", "moving": f"{sum(moving)}/{len(moving)}",
                          "centre_psnr_db": round(result["centre_psnr_db"], 2),
                          "vae_recon_psnr_db": round(result["vae_recon_psnr_db"], 2),
                          "per_frame_mean_error": round(result["per_frame_mean_error"], 4)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
