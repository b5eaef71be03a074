"""Training throughput: samples/s and peak memory, with and without gradient checkpointing.

    .venv/bin/python bench/train_throughput.py                     # tiny config, CPU, the fastest precision
    .venv/bin/python bench/train_throughput.py --precision bf16 # bf16 autocast (warns on a CPU without it)
    .venv/bin/python bench/train_throughput.py --preset full --device cuda --batch 1   # on a GPU

Each setting runs in a fresh subprocess (so peak RSS is its own): a synthetic latent cache of the
config's shape (random latents, no videos) and the real trainer (``training.trainer.train``, DDP with
one process), ``--warmup`` steps untimed, then ``--steps`` timed from the metrics log (median step,
and the fastest one, since a shared machine makes single steps noisy). Peak RSS is the
process's ``ru_maxrss``; on CUDA also ``torch.cuda.max_memory_allocated``.

``--precision auto`` (the default) is bf16 autocast where the device runs bf16 natively (CUDA with bf16,
a CPU with avx512_bf16 / amx_bf16), else fp32: on AVX2-only CPUs bf16 matmuls are ~100x slower. The
choice and the reason are printed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_synthetic_cache(folder: Path, preset: str, kind: str, clips: int = 8) -> None:
    import torch

    from microcinema_core.config import MicroCinemaConfig
    from microcinema_core.training.caching import CacheWriter
    from microcinema_core.training.train_config import DataConfig

    config = MicroCinemaConfig.tiny(kind) if preset == "tiny" else (
        MicroCinemaConfig.tsr() if kind == "tsr" else MicroCinemaConfig.base())
    n, s = config.num_frames, config.latent_size
    data = DataConfig(kind=kind, num_frames=n, fps=[config.fps], resolution=config.resolution)
    writer = CacheWriter(folder, data, {"name": "synthetic (benchmark)"}, dtype=torch.float16)
    g = torch.Generator().manual_seed(0)
    writer.set_empty_text(torch.zeros(77, config.context_dim))
    for i in range(clips):
        writer.add(torch.randn(n, 4, s, s, generator=g), torch.randn(77, config.context_dim, generator=g),
                   {"key": f"synthetic{i}", "caption": "", "fps": config.fps, "start": 0.0})
    writer.close()


def worker(args) -> dict:
    import torch

    from microcinema_core.training.progress import read_metrics
    from microcinema_core.training.train_config import DataConfig, RunConfig, TrainConfig
    from microcinema_core.training.trainer import train

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_synthetic_cache(tmp / "cache", args.preset, args.kind)
        total = args.warmup + args.steps
        cfg = TrainConfig(kind=args.kind, preset=args.preset, cache_dir=str(tmp / "cache"),
                          output_dir=str(tmp / "run"), batch_size=args.batch, max_steps=total + 1,
                          precision=args.precision, gradient_checkpointing=args.ckpt, warmup_steps=0,
                          save_every=10 ** 9, log_every=1, progress_bar=False, tensorboard=False)
        train(RunConfig(data=DataConfig(kind=args.kind), train=cfg), device=args.device, stop_at=total)
        rows = read_metrics(tmp / "run" / "metrics.jsonl")
    # per-step wall time of the timed steps (the trainer logs samples/s of each step)
    times = sorted(args.batch / r["samples_per_s"] for r in rows if args.warmup < r["step"] <= total)
    median = times[len(times) // 2] if len(times) % 2 else 0.5 * (times[len(times) // 2 - 1] + times[len(times) // 2])
    out = {"gradient_checkpointing": args.ckpt, "samples_per_s": args.batch / median, "s_per_step": median,
           "best_s_per_step": times[0], "mean_s_per_step": sum(times) / len(times),
           "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available() and (args.device or "").startswith("cuda"):
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="tiny", choices=["tiny", "full"])
    parser.add_argument("--kind", default="base", choices=["base", "tsr"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--ckpt", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args)))
        return 0
    import torch

    from microcinema_core.hardware import training_precision
    from microcinema_core.models.cost import cpu_dtype_report, slow_dtype_reason

    fastest = training_precision(args.device)
    where = cpu_dtype_report() if args.device == "cpu" else f"device {args.device}"
    if args.precision == "auto":
        args.precision = fastest
        print(f"# precision: {fastest} (auto, the fastest here: {where})")
    elif args.precision == "bf16" and slow_dtype_reason(torch.bfloat16, args.device):
        print(f"# WARNING: bf16 requested, but {slow_dtype_reason(torch.bfloat16, args.device)}")

    print(f"# {args.preset} {args.kind}, batch {args.batch}, {args.precision}, device {args.device}, "
          f"{args.steps} timed steps after {args.warmup}; torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print("samples/s and s/step: median step; best: fastest step (the machine may be shared)")
    print(f"{'grad ckpt':>9} | {'samples/s':>9} | {'s/step':>7} | {'best s/step':>11} | {'peak RSS MiB':>12} | peak CUDA MiB")
    for ckpt in (False, True):
        cmd = [sys.executable, __file__, "--worker", "--preset", args.preset, "--kind", args.kind,
               "--device", args.device, "--batch", str(args.batch), "--precision", args.precision,
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
        if ckpt:
            cmd.append("--ckpt")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
        line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
        if proc.returncode or line is None:
            print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
            return 1
        r = json.loads(line[7:])
        cuda = f"{r['peak_cuda_mib']:.0f}" if "peak_cuda_mib" in r else "-"
        print(f"{str(ckpt):>9} | {r['samples_per_s']:9.2f} | {r['s_per_step']:7.3f} | {r['best_s_per_step']:11.3f} | "
              f"{r['peak_rss_mib']:12.0f} | {cuda}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
