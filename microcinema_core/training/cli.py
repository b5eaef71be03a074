"""Command line of the trainer: ``python -m microcinema_core.train --config configs/train_base.json``.

Examples::

    python -m microcinema_core.train --config configs/train_base.json --cache /data/webvid_base_cache \\
        --output runs/base train.init=/models/v2-1_512-ema-pruned.safetensors
    torchrun --nproc_per_node 4 -m microcinema_core.train --config configs/train_base.json ...
    python -m microcinema_core.train --config configs/train_tsr.json train.parallel=fsdp

Overrides are ``section.field=value`` (JSON values) after the options; ``--cache`` and ``--output``
are shortcuts for ``train.cache_dir`` and ``train.output_dir``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from .train_config import load_run_config


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m microcinema_core.train",
                                     description="Train a MicroCinema base or TSR model from a latent cache.")
    parser.add_argument("--config", help="JSON or YAML file with 'data' and 'train' sections")
    parser.add_argument("--cache", help="latent cache folder (train.cache_dir)")
    parser.add_argument("--output", help="run folder: checkpoints, metrics, export (train.output_dir)")
    parser.add_argument("--device", help="torch device (default: cuda:LOCAL_RANK when CUDA exists, else cpu)")
    parser.add_argument("--stop-at", type=int, help="stop (with a checkpoint, no export) after this step")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("overrides", nargs="*", help="section.field=value (e.g. train.batch_size=2)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    overrides = list(args.overrides)
    if args.cache:
        overrides.append(f"train.cache_dir={args.cache}")
    if args.output:
        overrides.append(f"train.output_dir={args.output}")
    run = load_run_config(args.config, overrides)
    if args.print_config:
        print(json.dumps(run.to_dict(), indent=1))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from .trainer import train

    result = train(run, device=args.device, stop_at=args.stop_at)
    if result.export_path is not None and os.environ.get("RANK", "0") == "0":
        print(f"exported {result.export_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
