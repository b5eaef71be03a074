"""Benchmark: one denoising step of the full-size model on this CPU, against ComfyUI's own SD2.1 U-Net.

    .venv/bin/python bench/step.py            # full size: 9 frames, 40x40 latent, cond+uncond = 18 frames

Each (network, dtype) runs in its own subprocess so peak RSS is that configuration's alone. Both networks
get random weights of the real shapes and the same inputs. FLOPs come from ``torch.utils.flop_counter``
(matmuls, convolutions, attention). The CPU's bf16 peak is a large bf16 matmul measured in the same run.
The last line is ``RESULT time_ratio=<ours/peer, bf16> flop_ratio=<ours/peer> bf16_peak_fraction=...``.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the benchmark runs from a checkout, like the tests

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def matmul_peak_flops(dtype=torch.bfloat16, n=4096, reps=5) -> float:
    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best


def build(network: str, dtype: torch.dtype, size_config):
    from core_helpers import comfy_sd21_unet, randomize_

    if network.startswith("peer"):
        return comfy_sd21_unet(size_config, dtype=dtype, pytorch_attention=network == "peer_sdpa").to(dtype)
    from microcinema_core.models.microcinema import MicroCinemaModel

    with torch.device("meta"):
        model = MicroCinemaModel(size_config).to(dtype)
    model = model.to_empty(device="cpu")  # weights allocated once, in the benchmarked dtype
    randomize_(model, seed=0)
    return model.use_channels_last().eval()


def make_inputs(config, frames, size, dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2 * frames, 4, size, size, generator=g).to(dtype)
    appearance = torch.randn(1, 4, size, size, generator=g).repeat(2 * frames, 1, 1, 1).to(dtype)
    cond = torch.randn(1, 77, config.context_dim, generator=g)
    context = torch.cat([cond, torch.zeros_like(cond)]).to(dtype)  # cond + uncond videos
    t = torch.tensor([500.0, 500.0])
    return x, t, context, appearance


def step_fn(network, model, inputs, frames):
    x, t, context, appearance = inputs
    if network.startswith("peer"):
        per_frame_ctx = context.repeat_interleave(frames, 0)
        per_frame_t = t.repeat_interleave(frames)
        return lambda: model(x, per_frame_t, context=per_frame_ctx)
    return lambda: model(x, t, context, appearance, frames)


def count_flops(network, config, frames, size, dtype) -> int:
    """FLOPs of one step, counted on the ``meta`` device (shapes only: no memory, no time)."""
    from torch.utils.flop_counter import FlopCounterMode

    from core_helpers import comfy_sd21_unet
    from microcinema_core.models.microcinema import MicroCinemaModel

    if network.startswith("peer"):
        model = comfy_sd21_unet(config, dtype=dtype, device="meta", pytorch_attention=True)  # same maths
    else:
        with torch.device("meta"):
            model = MicroCinemaModel(config).to(dtype)
    x, t, context, appearance = make_inputs(config, frames, size, dtype)
    inputs = (x.to("meta"), t.to("meta") if network.startswith("peer") else t, context.to("meta"),
              appearance.to("meta"))
    counter = FlopCounterMode(display=False)
    # grad mode on purpose: the inference path writes residual sums with in-place addmm_, which the
    # counter does not count; the out-of-place path does the same maths and is counted in full.
    with torch.enable_grad(), counter:
        step_fn(network, model, inputs, frames)()
    return counter.get_total_flops()


def worker(args) -> dict:
    from microcinema_core.config import MicroCinemaConfig

    torch.manual_seed(0)
    dtype = DTYPES[args.dtype]
    config = MicroCinemaConfig.base()
    t0 = time.perf_counter()
    model = build(args.worker, dtype, config)
    build_s = time.perf_counter() - t0
    inputs = make_inputs(config, args.frames, args.size, dtype)
    run = step_fn(args.worker, model, inputs, args.frames)
    times = []
    with torch.no_grad():
        run()  # warm-up (oneDNN primitive creation)
        for _ in range(args.reps):
            t0 = time.perf_counter()
            out = run()
            times.append(time.perf_counter() - t0)
    assert torch.isfinite(out.float()).all()
    return {
        "network": args.worker, "dtype": args.dtype, "sec_per_step": min(times), "times": times,
        "build_s": build_s, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
    }


def run_worker(network, dtype, frames, size, reps) -> dict:
    cmd = [sys.executable, __file__, "--worker", network, "--dtype", dtype, "--frames", str(frames),
           "--size", str(size), "--reps", str(reps)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"worker {network} {dtype} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--size", type=int, default=40, help="latent side (40 = 320 px)")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--worker", choices=["ours", "peer", "peer_sdpa"])
    parser.add_argument("--dtype", default="bf16")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    from microcinema_core.config import MicroCinemaConfig

    config = MicroCinemaConfig.base()
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    print(f"shapes: 2 x {args.frames} frames (cond+uncond), latent {args.size}x{args.size}, full-size configs")
    peak = matmul_peak_flops()
    print(f"bf16 matmul peak: {peak / 1e9:.1f} GFLOP/s")
    flops = {net: count_flops(net, config, args.frames, args.size, torch.float32) for net in ("ours", "peer")}
    print(f"FLOPs per step: ours {flops['ours'] / 1e12:.3f} T, peer {flops['peer'] / 1e12:.3f} T")
    flops["peer_sdpa"] = flops["peer"]  # same network, other attention kernel
    results = {}
    for dtype in args.dtypes.split(","):
        nets = ("ours", "peer", "peer_sdpa") if dtype == "bf16" else ("ours", "peer")
        for net in nets:
            r = run_worker(net, dtype, args.frames, args.size, args.reps)
            results[(net, dtype)] = r
            rate = flops[net] / r["sec_per_step"]
            print(f"{net:9s} {dtype}: {r['sec_per_step']:.2f} s/step  {rate / 1e9:.1f} GFLOP/s "
                  f"({rate / peak:.2f} of bf16 peak)  peak RSS {r['peak_rss_mb']:.0f} MB  "
                  f"params {r['params_m']:.0f} M  (runs {', '.join(f'{t:.2f}' for t in r['times'])})")
    if ("ours", "bf16") in results:
        # the faster of ComfyUI's two CPU attention paths is the peer (the more demanding comparison)
        peer_s = min(results[(p, "bf16")]["sec_per_step"] for p in ("peer", "peer_sdpa"))
        time_ratio = results[("ours", "bf16")]["sec_per_step"] / peer_s
        flop_ratio = flops["ours"] / flops["peer"]
        fraction = flops["ours"] / results[("ours", "bf16")]["sec_per_step"] / peak
        print(f"RESULT time_ratio={time_ratio:.3f} flop_ratio={flop_ratio:.3f} bf16_peak_fraction={fraction:.3f}")


if __name__ == "__main__":
    main()
