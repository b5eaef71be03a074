"""Benchmark: one denoising step of the full-size model on this CPU, against ComfyUI's own SD2.1 U-Net.

    .venv/bin/python bench/step.py            # full size: 9 frames, 40x40 latent, cond+uncond = 18 frames
    .venv/bin/python bench/step.py --dtypes fp32,bf16      # rows in both dtypes (RESULT: the fastest one)
    .venv/bin/python bench/step.py --config tiny --frames 2 --size 8 --reps 1 --peak-n 512   # dry run, seconds

The dtype is the machine's fastest, read from the CPU flags (``microcinema_core/hardware.py``): bf16 where
the CPU has native bf16 (avx512_bf16 / amx_bf16), else fp32 (on AVX2-only CPUs bf16 matmuls fall back to
a reference kernel ~100x slower: a bf16 run there takes hours). The choice and the reason are printed,
with a short matmul probe of both dtypes.

Each (network, dtype) runs in its own subprocess so peak RSS is that configuration's alone. Both networks
get random weights of the real shapes and the same inputs. FLOPs come from ``torch.utils.flop_counter``
(matmuls, convolutions, attention). The peak is a large matmul in the RESULT dtype measured in the same run.
The last line is always ``RESULT dtype=<d> time_ratio=<ours/peer> flop_ratio=<ours/peer>
peak_fraction=<ours' FLOP/s over that dtype's matmul peak>`` (nan where a worker failed; exit code 1).
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
sys.path.insert(0, str(ROOT))  # the benchmark runs from a checkout: the core and scripts.comfy_peer

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
    from scripts.comfy_peer import comfy_sd21_unet, randomize_

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

    from scripts.comfy_peer import comfy_sd21_unet
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
    torch.manual_seed(0)
    dtype = DTYPES[args.dtype]
    config = config_for(args.config)
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


def run_worker(network, dtype, frames, size, reps, config_name="full") -> dict:
    cmd = [sys.executable, __file__, "--worker", network, "--dtype", dtype, "--frames", str(frames),
           "--size", str(size), "--reps", str(reps), "--config", config_name]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"worker {network} {dtype} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def fastest_dtype(pretend_no_bf16: bool = False) -> tuple[str, str]:
    """``(dtype, why)``: bf16 where the CPU has native bf16, else fp32 (from /proc/cpuinfo's flags)."""
    from microcinema_core.hardware import cpu_bf16_flags

    flags = () if pretend_no_bf16 else cpu_bf16_flags()
    if flags:
        return "bf16", f"the CPU reports {', '.join(flags)}: native bf16 matmuls (2-4x fp32 on such CPUs)"
    return "fp32", ("the CPU reports no avx512_bf16 / amx_bf16" + (" (--pretend-no-bf16)" if pretend_no_bf16 else "")
                    + ": bf16 matmuls would run oneDNN's reference kernel, ~100x slower than fp32")


def config_for(name: str):
    from microcinema_core.config import MicroCinemaConfig

    return MicroCinemaConfig.base() if name == "full" else MicroCinemaConfig.tiny("base")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--size", type=int, default=40, help="latent side (40 = 320 px)")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--dtypes", default="auto",
                        help="comma list of fp32, bf16, auto (auto: the fastest from the CPU flags)")
    parser.add_argument("--result-dtype", default="auto", help="dtype of the RESULT line (auto: the fastest)")
    parser.add_argument("--config", default="full", choices=["full", "tiny"], help="tiny: a dry run in seconds")
    parser.add_argument("--peak-n", type=int, default=4096, help="side of the matmul that measures the peak")
    parser.add_argument("--pretend-no-bf16", action="store_true",
                        help="choose as on a CPU without native bf16 (tests the AVX2-only path anywhere)")
    parser.add_argument("--worker", choices=["ours", "peer", "peer_sdpa"])
    parser.add_argument("--dtype", default="bf16")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    from microcinema_core.models.cost import machine_flops

    config = config_for(args.config)
    best, why = fastest_dtype(args.pretend_no_bf16)
    result_dtype = best if args.result_dtype == "auto" else args.result_dtype
    dtypes = list(dict.fromkeys(best if d == "auto" else d for d in args.dtypes.split(",")))
    if result_dtype not in dtypes:
        dtypes.append(result_dtype)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    print(f"dtype: {best} is this machine's fastest: {why}")
    print(f"  probe (1024^3 matmul, 256^3 on a slow path): fp32 {machine_flops('fp32') / 1e9:.1f} GFLOP/s, "
          f"bf16 {machine_flops('bf16') / 1e9:.1f} GFLOP/s")
    if "bf16" in dtypes and best != "bf16":
        print(f"WARNING: bf16 rows requested, but {why}: expect hours per row.")
    print(f"shapes: 2 x {args.frames} frames (cond+uncond), latent {args.size}x{args.size}, {args.config}-size configs")
    peak = matmul_peak_flops(DTYPES[result_dtype], n=args.peak_n)
    print(f"{result_dtype} matmul peak ({args.peak_n}^3): {peak / 1e9:.1f} GFLOP/s")
    flops = {net: count_flops(net, config, args.frames, args.size, torch.float32) for net in ("ours", "peer")}
    print(f"FLOPs per step: ours {flops['ours'] / 1e12:.3f} T, peer {flops['peer'] / 1e12:.3f} T")
    flops["peer_sdpa"] = flops["peer"]  # same network, other attention kernel
    results = {}
    failed = []
    for dtype in dtypes:
        nets = ("ours", "peer", "peer_sdpa") if dtype == result_dtype else ("ours", "peer")
        for net in nets:
            try:
                r = run_worker(net, dtype, args.frames, args.size, args.reps, args.config)
            except RuntimeError as exc:
                failed.append(str(exc))
                print(f"{net:9s} {dtype}: FAILED ({str(exc)[-300:]})")
                continue
            results[(net, dtype)] = r
            rate = flops[net] / r["sec_per_step"]
            share = f"({rate / peak:.2f} of {result_dtype} peak)  " if dtype == result_dtype else ""
            print(f"{net:9s} {dtype}: {r['sec_per_step']:.2f} s/step  {rate / 1e9:.1f} GFLOP/s {share}"
                  f"peak RSS {r['peak_rss_mb']:.0f} MB  params {r['params_m']:.0f} M  "
                  f"(runs {', '.join(f'{t:.2f}' for t in r['times'])})")
    nan = float("nan")
    time_ratio = fraction = nan
    flop_ratio = flops["ours"] / flops["peer"]
    peers = [results[(p, result_dtype)]["sec_per_step"] for p in ("peer", "peer_sdpa") if (p, result_dtype) in results]
    if ("ours", result_dtype) in results:
        ours_s = results[("ours", result_dtype)]["sec_per_step"]
        fraction = flops["ours"] / ours_s / peak
        if peers:
            # the faster of ComfyUI's two CPU attention paths is the peer (the more demanding comparison)
            time_ratio = ours_s / min(peers)
    print(f"RESULT dtype={result_dtype} time_ratio={time_ratio:.3f} flop_ratio={flop_ratio:.3f} "
          f"peak_fraction={fraction:.3f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
