"""Pilot: the TSR's one-step prediction trained through the frozen VAE decoder (issue 35: a TSR that beats the blend).

``bench/tsr_pilot.py`` showed that a TSR trained on the plain z_0 error gets its one-step prediction nearer the
truth than the blend *in latent MSE* but not in PSNR through the VAE, the figure the bar reads. This pilot adds the
error that bar reads to the training loss: the in-between frames of the network's z_0 prediction are decoded by the
shipped VAE's decoder (frozen) and compared with the decoded true latents (the VAE's own reconstruction, its
ceiling), ``loss = |z0_hat - z0|^2 + pixel_weight * |D(z0_hat) - D(z0)|^2`` over the in-between frames. A share
``--top-fraction`` of the clips are drawn at t = 999 (what a one-step sampler asks), the rest anywhere. Not the
bundle's trainer (no EMA, no checkpoints): a pilot, judged with ``bench/tsr_steps.py --tsr <out>/tsr.safetensors
--steps 1``.

    .venv/bin/python bench/tsr_decoder_pilot.py --init runs/tsr_pilot_x0/microcinema_toy_tsr.safetensors \
        --out runs/tsr_decoder_pilot --steps 300 --minutes 25
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from microcinema_core.diffusion.schedule import DiscreteSchedule  # noqa: E402
from microcinema_core.training.caching import LatentCache  # noqa: E402
from microcinema_core.training.objective import prepare_batch  # noqa: E402
from microcinema_core.vae.taesd_layout import ToyVAE  # noqa: E402
from microcinema_core.weights.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", required=True, help="a TSR export")
    parser.add_argument("--cache", default="runs/b128/cache_tsr_hires")
    parser.add_argument("--vae", default="models/vae/microcinema_toy_vae.safetensors")
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=None, help="stop and export after this wall time")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--pixel-weight", type=float, default=1.0)
    parser.add_argument("--top-fraction", type=float, default=0.75)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_checkpoint(Path(args.init), dtype="fp32").train()
    vae = ToyVAE.load(Path(args.vae)).eval().requires_grad_(False)
    cache = LatentCache(args.cache)
    abar = DiscreteSchedule.from_config(model.config).alphas_cumprod
    empty = cache.empty_text()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.01)
    rng = np.random.default_rng(args.seed)
    started, log = time.time(), []
    for step in range(args.steps):
        indices = [int(i) for i in rng.choice(len(cache), size=args.batch, replace=False)]
        data = cache.batch(indices)
        latents = data["latents"].float()
        batch = prepare_batch(latents, data["text"].float(), kind="tsr", cond_idx=cache.condition_indices,
                              alphas_cumprod=abar, lam=model.config.noise_prior_lambda, drop_rate=1.0,
                              empty_text=empty, seed=args.seed + 500, step=step, slots=list(range(args.batch)),
                              device=torch.device("cpu"), offset_noise=0.5, high_noise_fraction=args.top_fraction,
                              high_noise_from=999)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            eps_hat = model(batch.x, batch.timesteps, batch.context, batch.appearance, batch.num_frames)
        a = batch.abar
        z0_hat = (batch.x - (1 - a).sqrt() * eps_hat.float()) / a.sqrt()
        n = batch.num_frames
        z0 = latents.flatten(0, 1)
        middle = torch.zeros(z0.shape[0], dtype=torch.bool)
        middle.view(-1, n)[:, 1:-1] = True
        latent_error = (z0_hat[middle] - z0[middle]).pow(2).mean()
        with torch.no_grad():
            target = vae.decoder(z0[middle] / vae.unet_factor)
        decoded = vae.decoder(z0_hat[middle] / vae.unet_factor)
        pixel_error = (decoded - target).pow(2).mean()
        loss = latent_error + args.pixel_weight * pixel_error
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        row = {"step": step + 1, "loss": round(float(loss), 5), "latent": round(float(latent_error), 5),
               "pixel_psnr": round(float(-10 * torch.log10(pixel_error.detach().clamp_min(1e-10))), 2),
               "seconds": round(time.time() - started, 1)}
        log.append(row)
        if (step + 1) % 10 == 0:
            print(json.dumps(row), flush=True)
        if args.minutes and time.time() - started > 60 * args.minutes:
            break
    model.eval()
    save_checkpoint(model, out / "tsr.safetensors", dtype="fp16")
    (out / "log.json").write_text(json.dumps({"args": vars(args), "rows": log}, indent=0))
    print(json.dumps({"steps": len(log), "seconds": round(time.time() - started), "export": str(out / "tsr.safetensors")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
