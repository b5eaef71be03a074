"""What a base model predicts from the noisiest step: a contact sheet of its clean-clip estimates at timestep t.

    python -m microcinema_core.experiments.x0_sheet --model FILE --vae FILE --out sheet.png [--t 999] [--split train]

For a few clips (pan left, pan up, zoom in) it shows the true clip through the VAE, then the network's estimate
of the clean clip from ``z_t`` with the clip's own caption and with the opposite motion's caption, each labelled
with the motion class the flow measure reads from it. At t = 999 a model that takes the direction from the text
moves the two estimates opposite ways; one that moves both the same way reads the motion out of ``z_t`` (on SD's
schedule 6.8 % of the clip is left there; docs/model_cards.md).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .toy_files import FILES


@torch.no_grad()
def x0_rows(model, vae, encode_text, sources, t: int = 999, split: str = "train", seed: int = 7,
            motions=("pan_left", "pan_up", "zoom_in")):
    from ..diffusion.appearance_input import appearance_sequence
    from ..diffusion.noise_prior import noised_latent
    from ..diffusion.schedule import DiscreteSchedule
    from ..eval.flow_motion import classify, video_motion
    from .probe import OPPOSITE
    from ..toyworld.world import ToyWorld

    n = model.config.num_frames
    world = ToyWorld(sources, split, "base", seed=seed, size=model.config.resolution)
    abar = DiscreteSchedule.from_config(model.config).alphas_cumprod[t]
    rows, labels = [], []
    for i, motion in enumerate(motions):
        clip = world.clip(i, motion=motion, speed="normal")
        other = world.clip(i, motion=OPPOSITE[motion], speed="normal")
        z = vae.encode(clip.frames).float()
        appearance = appearance_sequence("base", z[n // 2:n // 2 + 1], n)
        g = torch.Generator().manual_seed(i)
        eps = model.config.noise_prior_lambda * appearance + torch.randn(appearance.shape, generator=g)
        x = noised_latent(z, eps, abar.expand(n))
        truth = vae.decode(z).float().clamp(0, 1)
        rows.append(truth)
        labels.append(f"true {motion} through the VAE: reads {classify(video_motion(truth.numpy()))}")
        for name, caption in (("own", clip.caption), ("opposite", other.caption)):
            pred = model(x, torch.tensor([float(t)]), encode_text([caption]), appearance, n).float()
            estimate = (x - (1 - abar).sqrt() * pred) / abar.sqrt()
            frames = vae.decode(estimate).float().clamp(0, 1)
            rows.append(frames)
            labels.append(f"estimate at t={t}, {name} caption '{caption}': reads "
                          f"{classify(video_motion(frames.numpy()))}")
    return rows, labels


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=f"models/microcinema/{FILES['base']}")
    parser.add_argument("--vae", default=f"models/vae/{FILES['vae']}")
    parser.add_argument("--sources", default="runs/toy64/sources.npz", help="regathered when absent")
    parser.add_argument("--out", required=True, help="PNG path")
    parser.add_argument("--t", type=int, default=999)
    parser.add_argument("--split", default="train", choices=("train", "heldout"))
    args = parser.parse_args(argv)
    from ..eval.contact_sheet import contact_sheet
    from ..text.minilm import MiniLMTextEncoder
    from ..vae.taesd_layout import ToyVAE
    from ..weights.checkpoint import load_checkpoint
    from ..toyworld.sources import load_or_gather

    model = load_checkpoint(args.model, dtype="fp32").eval()
    vae = ToyVAE.load(args.vae).float()
    rows, labels = x0_rows(model, vae, MiniLMTextEncoder(None, "cpu"), load_or_gather(Path(args.sources)),
                           t=args.t, split=args.split)
    contact_sheet(rows, args.out, labels=labels)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
