"""A trainer checkpoint (``checkpoints/step_<8 digits>.pt``) -> the file the loaders open, with its EMA weights.

    python -m microcinema_core.training.export_checkpoint --checkpoint runs/base/checkpoints/step_00001000.pt \
        --out base_step1000.safetensors [--dtype fp16] [--no-ema]

What the trainer writes at ``max_steps``, for any checkpoint before it: a run stopped early, or one whose weights
must outlive the machine (a committed fp16 copy). The model's config is rebuilt from the run config stored in the
checkpoint and its latent cache (still needed on disk: it fixes the frames and resolution).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch


def export_checkpoint(checkpoint: str | Path, out: str | Path, dtype: str = "fp16", use_ema: bool = True) -> Path:
    from ..weights.checkpoint import save_checkpoint
    from .caching import LatentCache
    from .train_config import DataConfig, RunConfig, TrainConfig
    from .trainer import build_model, model_config_for

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)   # our own file: rng and configs inside
    run = RunConfig(data=DataConfig(**state["config"]["data"]), train=TrainConfig(**state["config"]["train"]))
    run.train.init = None   # the checkpoint holds every weight
    config = model_config_for(run.train, LatentCache(run.train.cache_dir))
    model = build_model(run.train, config)
    model.load_state_dict(state["model"])
    ema = state.get("ema") if use_ema else None
    if ema is not None:
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name in ema["shadow"]:
                    parameter.copy_(ema["shadow"][name].to(parameter.dtype))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, out, dtype=dtype, extra_metadata={"microcinema.training": json.dumps({
        "steps": int(state["step"]), "from_checkpoint": str(checkpoint), "ema": ema is not None,
        "noise_prior_lambda": run.train.noise_prior_lambda,
        "prior_amplitude_coupling": run.train.prior_amplitude_coupling,
        "prior_amplitude_gamma": run.train.prior_amplitude_gamma})})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a trainer checkpoint, runs/<run>/checkpoints/step_*.pt")
    parser.add_argument("--out", required=True, help="the .safetensors file to write")
    parser.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"])
    parser.add_argument("--no-ema", action="store_true", help="the raw weights instead of the EMA ones")
    args = parser.parse_args(argv)
    print(export_checkpoint(args.checkpoint, args.out, args.dtype, use_ema=not args.no_ema))
    return 0


if __name__ == "__main__":
    sys.exit(main())
