"""Pilot (issue 36, not the shipped path): subject -> keyframe -> video, MicroCinema's own two stages.

    python -m microcinema_core.experiments.keyframe_first_pilot --models models --sources runs/b128/sources.npz \
        --count 16 --out docs/customisation_results/keyframe_first

Stage 1: the subject-driven model makes ONE frame (the customisation objective's own shape: a one-frame "video",
the reference in AppearNet, the prior ``N((lambda+gamma) r, I)``) from the case's prompt. Stage 2: the plain
image-to-video base animates that frame as its keyframe, with the same prompt. The question: does handing the motion
to the base (85 % agreement on real keyframes) give the subject a video that moves the text's way while it keeps the
subject? Same held-out cases, settings and measures as ``evaluate_custom`` (its first ``count`` cases).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from ..diffusion.pipeline import generate
from ..eval.contact_sheet import contact_sheet
from . import evaluate_custom as E
from .toy_files import FILES


@torch.no_grad()
def one_frame(model, reference_latents: torch.Tensor, context, uncond, *, steps: int, cfg: float, gamma: float,
              seed: int) -> torch.Tensor:
    """One frame per reference ``[B, 4, h, w]``: ``generate``'s one-frame path (Euler from ``N((lambda+gamma) r, I)``
    with ``r`` in AppearNet), in the one-frame shape the customisation objective trained."""
    model.single_frames = True
    return generate(model, reference_latents, context, uncond, num_frames=1, steps=steps, cfg=cfg, gamma=gamma,
                    seed=seed)


@torch.no_grad()
def main(argv=None) -> int:
    from ..eval.mobilenet import load_mobilenet_v2
    from ..text.minilm import MiniLMTextEncoder
    from ..toyworld.sources import load_or_gather
    from ..vae.taesd_layout import ToyVAE
    from ..weights.checkpoint import load_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="models")
    parser.add_argument("--sources", default="runs/b128/sources.npz")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--out", default="docs/customisation_results/keyframe_first")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    models, out = Path(args.models), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sources = load_or_gather(args.sources)
    vae, text, mobilenet = ToyVAE.load(models / "vae" / FILES["vae"]), MiniLMTextEncoder(), load_mobilenet_v2()
    custom = load_checkpoint(str(models / "microcinema" / FILES["custom"]), dtype="fp32").eval()
    base = load_checkpoint(str(models / "microcinema" / FILES["base"]), dtype="fp32").eval()
    cases = E.cases(sources, args.count, base.config.resolution)
    keys, videos = [], []
    for start in range(0, args.count, 16):
        batch = cases[start:start + 16]
        context = text([c["prompt"] for c in batch])
        uncond = text([""]).expand_as(context)
        references = vae.encode(torch.stack([c["pair"].reference for c in batch]))
        key = one_frame(custom, references, context, uncond, steps=E.STEPS, cfg=E.CFG, gamma=E.GAMMA, seed=start)
        video = generate(base, key, context, uncond, steps=E.STEPS, cfg=E.CFG, gamma=E.GAMMA, seed=start)
        keys.append(vae.decode(key).clamp(0, 1))
        decoded = vae.decode(video)
        videos.append(decoded.view(len(batch), base.config.num_frames, *decoded.shape[1:]).float())
    frames = torch.cat(videos)
    row = E.measure(frames, cases, mobilenet)
    summary = {k: v for k, v in row.items() if k != "records"}
    (out / "results.json").write_text(json.dumps({"settings": {"steps": E.STEPS, "cfg": E.CFG, "gamma": E.GAMMA},
                                                  "keyframe_first": row}, indent=1))
    keyframes = torch.cat(keys)
    contact_sheet([torch.cat([c["pair"].reference[None], k[None], f[::2]]) for c, k, f in
                   list(zip(cases, keyframes, frames))[:8]], out / "sheet.png", [c["prompt"] for c in cases[:8]])
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
