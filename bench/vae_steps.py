"""Pilot: how the toy VAE's held-out reconstruction PSNR grows with training, at a chosen crop size.

    .venv/bin/python bench/vae_steps.py --out runs/vae64 --steps 2000 --batch 16 --size 64 \
        --marks 250,500,1000,1500,2000

Trains the TAESD-layout toy VAE with the bundle's own trainer (``vae/training.py``: same loss, crops, seed
handling, fp32 unless ``--bf16``), stops at each mark (the cosine schedule is the one of ``--steps``, so the
marks do not change the weights), and scores the checkpoint on 96 frames of held-out pictures at 64 and
128 px (``experiments.bundle.heldout_vae_psnr``, the figure the bundle records). One JSON line per mark, also
appended to ``<out>/pilot.jsonl``; after the last mark ``<out>/vae.safetensors`` is the exported fp16 VAE,
usable as ``experiments.bundle --vae``. Resumable: run the same command again.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the pilot runs from a checkout

from microcinema_core.experiments.bundle import _heldout_frames, heldout_vae_psnr, heldout_vae_ssim  # noqa: E402
from microcinema_core.toyworld.sources import load_or_gather  # noqa: E402
from microcinema_core.vae.taesd_layout import ToyVAE  # noqa: E402
from microcinema_core.vae.training import VAETrainConfig, train_vae  # noqa: E402


@torch.no_grad()
def _against_init(vae, init, sources) -> dict:
    """How far the latent space moved from ``--init``'s (the one the diffusion models were trained on), on the
    held-out 128-px frames: the encoders' relative squared distance, and the PSNR of this decoder on the init
    encoder's latents (what it makes of a latent the base draws in the old space)."""
    if init is None:
        return {}
    frames = _heldout_frames(sources, 96, 3, 128)
    old, new = init.encoder(frames), vae.encoder(frames)
    drift = float((new - old).pow(2).mean() / old.var())
    cross = (vae.decoder(old).clamp(0, 1) - frames).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return {"latent_drift": round(drift, 4), "psnr128_old_latents": round(float((-10 * cross.log10()).mean()), 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="run folder (state, log, exported VAE)")
    parser.add_argument("--steps", type=int, default=2000, help="total steps (sets the cosine schedule)")
    parser.add_argument("--batch", type=int, default=16, help="crops per step")
    parser.add_argument("--size", type=int, default=64, help="crop side in pixels")
    parser.add_argument("--marks", default="250,500,1000,1500,2000", help="steps at which to score, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--init", default=None, help="start from this VAE (vae_state.pt or .safetensors)")
    parser.add_argument("--ssim-weight", type=float, default=0.0, help="+ this x (1 - SSIM) in the loss")
    parser.add_argument("--decoder-only", action="store_true",
                        help="keep --init's encoder and latent scale; train the decoder alone")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--latent-noise", type=float, default=VAETrainConfig.latent_noise,
                        help="std of the noise added to the latents the decoder learns from")
    parser.add_argument("--anchor-weight", type=float, default=0.0,
                        help="+ this x the encoder's distance from --init's (relative): a new encoder, the old latent space")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (only on a CPU with native bf16)")
    parser.add_argument("--sources", default="runs/sources.npz", help="the toy world's pictures (gathered if missing)")
    args = parser.parse_args(argv)
    marks = sorted({int(m) for m in args.marks.split(",")})
    if not marks or marks[0] < 1 or marks[-1] > args.steps:
        parser.error(f"--marks must lie in 1..--steps ({args.steps}), got {args.marks!r}")

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    sources = load_or_gather(Path(args.sources))
    cfg = VAETrainConfig(steps=args.steps, batch_size=args.batch, size=args.size, seed=args.seed, save_every=250,
                         init=args.init, ssim_weight=args.ssim_weight,
                         train_encoder=not args.decoder_only, lr=args.lr,
                         latent_noise=args.latent_noise, anchor_weight=args.anchor_weight)
    started = time.time()
    init_vae = ToyVAE.load(args.init) if args.init and args.init.endswith(".safetensors") else None
    for mark in marks:
        train_vae(sources, out, cfg, bf16=args.bf16, stop_at=mark)
        state = torch.load(out / "vae_state.pt", map_location="cpu", weights_only=True)
        vae = ToyVAE()
        vae.load_state_dict(state["model"])
        vae.eval()
        row = {"step": int(state["step"]), "crops": int(state["step"]) * args.batch,
               "wall_s": round(time.time() - started),
               "psnr64": round(heldout_vae_psnr(vae, sources, 96, size=64), 2),
               "psnr128": round(heldout_vae_psnr(vae, sources, 96, size=128), 2),
               "ssim128": round(heldout_vae_ssim(vae, sources, 96, size=128), 3)}
        if args.init:
            row.update(_against_init(vae, init_vae, sources))
        print(json.dumps(row), flush=True)
        with open(out / "pilot.jsonl", "a") as log:
            log.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
