"""Sample-based checks of a toy model on held-out pictures and phrasings (what the loss does not show).

``probe_base``: videos from held-out keyframes and held-out captions, one per camera-motion class in turn;
it reports motion-text agreement (optical-flow class == prompt class), keyframe PSNR of the centre frame,
and the per-frame mean error (mean over frames and channels of |spatial mean of a frame's latent - that of
the keyframe latent|: the colour cast of an undertrained eps-model). ``probe_tsr``: restored in-between
frames of held-out high-rate clips against a linear blend of the two given frames. ``probe_text_reliance``:
does the model read the motion *direction* from the text? The eps error on true held-out clips with their own
caption vs the caption of the opposite motion (same picture, same noise), at high noise levels, where the noisy
clip no longer shows the direction.
"""
from __future__ import annotations

import numpy as np
import torch

from ..diffusion.pipeline import generate
from ..eval.flow_motion import classify, video_motion
from ..eval.image_metrics import psnr
from ..diffusion.appearance_input import appearance_sequence
from ..diffusion.noise_prior import noised_latent
from ..diffusion.schedule import DiscreteSchedule
from ..toyworld.motions import CAMERA_MOTIONS

OPPOSITE = {"pan_left": "pan_right", "pan_right": "pan_left", "pan_up": "pan_down", "pan_down": "pan_up",
            "zoom_in": "zoom_out", "zoom_out": "zoom_in", "rotate_cw": "rotate_ccw", "rotate_ccw": "rotate_cw"}
from ..toyworld.world import ToyWorld


def heldout_cases(sources, count: int, seed: int = 1, motions=CAMERA_MOTIONS, speed=None, size: int = 128,
                  split: str = "heldout"):
    """Camera clips cycling through ``motions``; ``split="train"``: new clips of the training pictures and phrasings
    (what tells a model that does not generalise from one that has not learned)."""
    world = ToyWorld(sources, split, "base", seed=seed, size=size)
    return [world.clip(i, motion=motions[i % len(motions)], speed=speed) for i in range(count)]


@torch.no_grad()
def sample_videos(model, vae, encode_text, keyframes: torch.Tensor, captions: list, *, steps: int = 20,
                  cfg: float = 5.0, gamma: float = 0.0, seed: int = 0, batch: int = 16, device="cpu",
                  start_sigma=None):
    """Keyframes ``[B, 3, S, S]`` in [0, 1] + captions -> (frames ``[B, N, 3, S, S]``, latents ``[B, N, 4, s, s]``)."""
    n = model.config.num_frames
    frames, latents = [], []
    for start in range(0, len(captions), batch):
        keys = keyframes[start:start + batch].to(device)
        z = vae.encode(keys)
        context = encode_text(captions[start:start + batch]).to(device)
        uncond = encode_text([""]).to(device).expand_as(context)
        video = generate(model, z, context, uncond, steps=steps, cfg=cfg, gamma=gamma, seed=seed + start,
                         start_sigma=start_sigma)
        latents.append(video.view(len(keys), n, *video.shape[1:]).float().cpu())
        frames.append(vae.decode(video).view(len(keys), n, 3, *keys.shape[-2:]).float().cpu())
    return torch.cat(frames), torch.cat(latents)


def per_frame_mean_error(latents: torch.Tensor, key_latents: torch.Tensor) -> float:
    """Mean |spatial mean of each frame's latent - the keyframe latent's|, over frames and channels."""
    frame_means = latents.float().mean(dim=(-1, -2))            # [B, N, C]
    key_means = key_latents.float().mean(dim=(-1, -2))[:, None]  # [B, 1, C]
    return float((frame_means - key_means).abs().mean())


@torch.no_grad()
def probe_base(model, vae, encode_text, sources, *, count: int = 18, steps: int = 20, cfg: float = 5.0,
               gamma: float = 0.0, seed: int = 0, device="cpu") -> dict:
    cases = heldout_cases(sources, count, size=model.config.resolution)
    centre = model.config.num_frames // 2
    keyframes = torch.stack([c.frames[centre] for c in cases])
    frames, latents = sample_videos(model, vae, encode_text, keyframes, [c.caption for c in cases], steps=steps,
                                    cfg=cfg, gamma=gamma, seed=seed, device=device)
    predicted = [classify(video_motion(f.numpy())) for f in frames]
    agreement = float(np.mean([p == c.motion for p, c in zip(predicted, cases)]))
    key_latents = vae.encode(keyframes.to(device)).float().cpu()
    return {"probe_agreement": agreement,
            "probe_keyframe_psnr": float(psnr(frames[:, centre], keyframes).mean()),
            "probe_mean_error": per_frame_mean_error(latents, key_latents)}


@torch.no_grad()
def probe_gamma(model, vae, encode_text, sources, gammas, *, count: int = 12, steps: int = 20, cfg: float = 2.0,
                seed: int = 0, device="cpu", start_sigma=None) -> dict:
    """Mean flow magnitude (px per frame) of the same held-out moving videos sampled at each of ``gammas``."""
    moving = tuple(m for m in CAMERA_MOTIONS if m != "static")
    cases = heldout_cases(sources, count, seed=4, motions=moving, size=model.config.resolution)
    keyframes = torch.stack([c.frames[model.config.num_frames // 2] for c in cases])
    out = {}
    for gamma in gammas:
        frames, _ = sample_videos(model, vae, encode_text, keyframes, [c.caption for c in cases], steps=steps,
                                  cfg=cfg, gamma=gamma, seed=seed, device=device, start_sigma=start_sigma)
        out[f"probe_flow_gamma_{gamma:g}"] = float(np.mean([video_motion(f.numpy()).magnitude for f in frames]))
    return out


@torch.no_grad()
def probe_tsr(model, vae, encode_text, sources, *, count: int = 16, steps: int = 10, gamma: float = 0.0,
              seed: int = 0, device="cpu") -> dict:
    """PSNR of TSR's 3 in-between frames vs a linear blend, on held-out 4x-rate clips (empty prompt)."""
    world = ToyWorld(sources, "heldout", "tsr", seed=seed + 5, size=model.config.resolution)
    clips = [world.clip(i, motion=CAMERA_MOTIONS[1 + i % 8]) for i in range(count)]
    truth = torch.stack([c.frames for c in clips])                     # [B, N, 3, S, S]
    n, size = truth.shape[1], truth.shape[-1]
    ends = vae.encode(truth[:, [0, -1]].flatten(0, 1).to(device)).view(count, 2, 4, size // 8, size // 8)
    empty = encode_text([""]).to(device).expand(count, -1, -1)
    video = generate(model, ends, empty, None, num_frames=n, steps=steps, cfg=1.0, gamma=gamma, seed=seed)
    restored = vae.decode(video).float().cpu().view(count, n, 3, size, size)[:, 1:-1]
    w = torch.linspace(0, 1, n)[1:-1].view(1, n - 2, 1, 1, 1)
    blended = (1 - w) * truth[:, :1] + w * truth[:, -1:]
    latent_blend = (1 - w.to(device)) * ends[:, :1] + w.to(device) * ends[:, 1:]    # the same VAE path as TSR
    latent_blended = vae.decode(latent_blend.flatten(0, 1)).float().cpu()
    middle = truth[:, 1:-1]
    return {"probe_tsr_psnr": float(psnr(restored.flatten(0, 1), middle.flatten(0, 1)).mean()),
            "probe_blend_psnr": float(psnr(blended.flatten(0, 1), middle.flatten(0, 1)).mean()),
            "probe_latent_blend_psnr": float(psnr(latent_blended, middle.flatten(0, 1)).mean())}


@torch.no_grad()
def probe_text_reliance(model, vae, encode_text, sources, *, count: int = 32, timesteps=(999, 950, 900, 800),
                        seed: int = 4, device="cpu", split: str = "heldout") -> dict:
    """Eps error with the clip's own caption vs the opposite motion's caption, per timestep.

    ``text_gap_t{t}`` = mean(error with the opposite caption - error with the right one) / mean(error with the
    right one): 0 when the model ignores the direction words; ``text_right_wins_t{t}``: the fraction of clips
    whose own caption gives the smaller error (0.5 by chance). ``split="train"``: training pictures and
    phrasings (unseen clips), which tells "not learned" from "learned but does not carry over"."""
    world = ToyWorld(sources, split, "base", seed=seed, size=model.config.resolution)
    moving = list(OPPOSITE)
    cases = [world.clip(i, motion=moving[i % len(moving)], speed="normal") for i in range(count)]
    wrong = [world.clip(i, motion=OPPOSITE[c.motion], speed="normal") for i, c in enumerate(cases)]
    n = model.config.num_frames
    frames = torch.stack([c.frames for c in cases]).flatten(0, 1).to(device)
    z = vae.encode(frames).float()
    z = z.view(count, n, *z.shape[1:])
    right, opposite = encode_text([c.caption for c in cases]).to(device), encode_text([c.caption for c in wrong]).to(device)
    abar = DiscreteSchedule.from_config(model.config).alphas_cumprod
    lam = float(model.config.noise_prior_lambda)
    scores = {}
    for t in timesteps:
        errors = {"right": [], "opposite": []}
        for b in range(count):
            app = appearance_sequence("base", z[b, n // 2:n // 2 + 1], n)
            g = torch.Generator().manual_seed(seed * 100_003 + b)
            eps = lam * app + torch.randn(app.shape, generator=g).to(device)
            x = noised_latent(z[b], eps, abar[t].expand(n).to(device))
            for name, ctx in (("right", right[b:b + 1]), ("opposite", opposite[b:b + 1])):
                pred = model(x, torch.tensor([float(t)], device=device), ctx, app, n)
                errors[name].append(float(((pred.float() - eps) ** 2).mean()))
        r, o = np.array(errors["right"]), np.array(errors["opposite"])
        scores[f"text_gap_t{t}"] = float((o - r).mean() / r.mean())
        scores[f"text_right_wins_t{t}"] = float((r < o).mean())
    return scores
