"""Benchmark: which precision trains the toy bundle's networks faster on this CPU, fp32 or bf16 autocast.

    .venv/bin/python bench/toy_precision.py              # toy base (batch 16, 9 frames, 8x8 latents) + toy VAE
    .venv/bin/python bench/toy_precision.py --steps 3    # a quicker, noisier reading

One training step each (forward, backward, gradient clipping, AdamW) on random inputs of the shapes the toy
bundle trains on (``experiments/bundle.py``): the base network of ``TOY_MODEL`` with the last phases' settings
(v-prediction, text-and-frame embedding) at batch 16, and the TAESD-layout VAE at 8 crops of 128 px. Each row
is the median of ``--steps`` timed steps after one untimed one. The last line is always
``RESULT base_bf16_over_fp32=<ratio> vae_bf16_over_fp32=<ratio>`` (above 1: fp32 is the faster).
bf16 is only measured where the CPU has native bf16 (avx512_bf16 / amx_bf16); elsewhere it is ~100x slower
and the row is skipped (ratio nan).
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the benchmark runs from a checkout

from microcinema_core.hardware import cpu_bf16_flags  # noqa: E402


def timed_steps(step, steps: int) -> float:
    step()  # untimed: first-call allocation and kernel selection
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def base_step(bf16: bool, batch: int = 16, frames: int = 9, latent: int = 8):
    from microcinema_core.config import MicroCinemaConfig
    from microcinema_core.models.microcinema import MicroCinemaModel
    from microcinema_core.experiments.bundle import TOY_MODEL

    config = MicroCinemaConfig.tiny("base").replace(**TOY_MODEL, prediction="v", text_frame_embedding=True,
                                                    zero_terminal_snr=True, num_frames=frames, resolution=latent * 8)
    torch.manual_seed(0)
    model = MicroCinemaModel(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch * frames, 4, latent, latent, generator=g)
    appearance = torch.randn(batch * frames, 4, latent, latent, generator=g)
    timesteps = torch.randint(0, 1000, (batch,), generator=g).float()
    context = torch.randn(batch, 77, config.context_dim, generator=g)
    target = torch.randn(batch * frames, 4, latent, latent, generator=g)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred = model(x, timesteps, context, appearance, frames)
        F.mse_loss(pred.float(), target).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return step


def vae_step(bf16: bool, batch: int = 8, size: int = 128):
    from microcinema_core.vae.taesd_layout import ToyVAE

    torch.manual_seed(0)
    vae = ToyVAE().train()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=5e-4)
    images = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            recon = vae.decoder(vae.encoder(images))
        loss = F.l1_loss(recon.float(), images)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per row (median)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--latent", type=int, default=8, help="the base's latent side (8: the 64-px bundle, 16: 128 px)")
    parser.add_argument("--base-only", action="store_true", help="leave out the VAE rows")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from microcinema_core.experiments.bundle import machine

    native = bool(cpu_bf16_flags())
    print(f"machine: {machine()}; torch {torch.__version__}, {args.threads} threads, "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}")
    rows = [("base", lambda bf16: base_step(bf16, latent=args.latent))]
    rows += [] if args.base_only else [("vae", vae_step)]
    ratios = {"vae": math.nan}
    print(f"base latent {args.latent}x{args.latent} ({args.latent * 8} px), batch 16, 9 frames")
    for name, build in rows:
        fp32 = timed_steps(build(False), args.steps)
        print(f"{name:4s} fp32 {fp32:.3f} s/step", flush=True)
        if native:
            bf16 = timed_steps(build(True), args.steps)
            print(f"{name:4s} bf16 {bf16:.3f} s/step", flush=True)
            ratios[name] = bf16 / fp32
        else:
            print(f"{name:4s} bf16 skipped: no native bf16 on this CPU (a reference kernel, ~100x slower)")
            ratios[name] = math.nan
    print(f"RESULT base_bf16_over_fp32={ratios['base']:.2f} vae_bf16_over_fp32={ratios['vae']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
