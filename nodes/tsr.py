"""MicroCinema TSR Interpolate: a video -> 4x the frame rate per pass, as the paper does (sec. 3, fig. 2).

Each pair of adjacent frames becomes one TSR clip conditioned on its first and last frame (AppearNet sees
their linear blend); the model makes the frames between them. Endpoints are kept exactly, so F frames
become (F-1)*(N-1)+1 (N = the TSR model's frame count, 5: 9 frames at 2 fps -> 33 at 8 fps -> 129 at 32 fps).
Pairs are sampled in batches through ``comfy.sample`` (Euler, the appearance noise prior); one noise
tensor for the whole pass, so the result does not depend on the batch size.
"""
from __future__ import annotations

import torch

from ..microcinema_core.diffusion.interpolation import adjacent_pairs, assemble_clips
from ..microcinema_core.errors import MicroCinemaInputError
from .comfy_model import require_kind
from .keyframe import SIZE_MULTIPLE
from .noise_prior import (GAMMA_RANGE, GAMMA_TOOLTIP, LAMBDA_FROM_CHECKPOINT, LAMBDA_TOOLTIP, check_gamma,
                          resolve_lambda)
from .prior_sampling import with_appearance_prior, with_keyframe
from .sampling import ksample


def video_latent_input(video_latent=None, images=None, vae=None) -> torch.Tensor:
    """The raw video latent ``[F,4,h,w]`` from a LATENT, or from IMAGE frames encoded with the VAE."""
    if video_latent is not None:
        samples = video_latent["samples"]
    elif images is not None and vae is not None:
        height, width = int(images.shape[1]), int(images.shape[2])
        if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
            raise MicroCinemaInputError(
                f"the frames are {width}x{height} px; TSR needs multiples of {SIZE_MULTIPLE} (resize them first)")
        samples = vae.encode(images[..., :3])
    else:
        raise MicroCinemaInputError("connect 'video_latent', or 'images' together with 'vae'")
    if samples.ndim != 4 or samples.shape[1] != 4:
        raise MicroCinemaInputError(f"the video latent must be [frames, 4, h, w], got {tuple(samples.shape)}")
    if samples.shape[0] < 2:
        raise MicroCinemaInputError(f"TSR needs at least 2 frames, got {samples.shape[0]}")
    return samples.float().cpu()


def interpolate_pass(model, positive, negative, frames: torch.Tensor, clip_frames: int, seed: int, steps: int,
                     cfg: float, lam, gamma: float, pairs_per_batch: int) -> torch.Tensor:
    """One TSR pass over every adjacent pair of ``frames`` (raw latents)."""
    import comfy.sample

    pairs = adjacent_pairs(frames)  # [P, 2, 4, h, w]: first, last
    empty = torch.zeros([pairs.shape[0] * clip_frames, *frames.shape[1:]])
    noise = comfy.sample.prepare_noise(empty, seed)
    clips = []
    for start in range(0, pairs.shape[0], pairs_per_batch):
        chunk = pairs[start:start + pairs_per_batch]
        rows = slice(start * clip_frames, (start + chunk.shape[0]) * clip_frames)
        patched = with_appearance_prior(model, chunk, lam, gamma)
        out = ksample(patched, seed, steps, cfg, "euler", "normal", with_keyframe(positive, chunk),
                      with_keyframe(negative, chunk), {"samples": empty[rows]}, noise=noise[rows])
        clips.append(out["samples"].float().cpu())
    return assemble_clips(pairs, torch.cat(clips), clip_frames)


class MicroCinemaTSRInterpolate:
    """Temporal super-resolution: 4x frames per pass on each adjacent pair (first/last conditioning)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "tsr_model": ("MODEL", {"tooltip": "The MicroCinema TSR model (Load MicroCinema TSR Model)."}),
                "positive": ("CONDITIONING", {
                    "tooltip": "Text prompt (CLIP Text Encode, SD2.1 text encoder). The paper's TSR is trained "
                               "with the text dropped, so it matters little at CFG 1."}),
                "negative": ("CONDITIONING", {"tooltip": "Negative prompt; unused at CFG 1.0."}),
                "passes": ("INT", {"default": 1, "min": 1, "max": 2,
                                   "tooltip": "1 pass: 4x frames (2 fps -> 8 fps, 9 -> 33 frames); 2 passes: 16x "
                                              "(2 -> 32 fps, 9 -> 129 frames)."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                                 "tooltip": "Noise seed (pass k uses seed + k - 1)."}),
                "steps": ("INT", {"default": 50, "min": 1, "max": 1000, "tooltip": "Euler steps per pass."}),
                "cfg": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                                  "tooltip": "Classifier-free guidance. 1.0 (no guidance, one model call per "
                                             "step) as the paper's TSR, trained with text drop rate 1."}),
                "gamma": ("FLOAT", {"default": 0.02, "min": GAMMA_RANGE[0], "max": GAMMA_RANGE[1],
                                    "step": 0.005, "round": 0.0001, "tooltip": GAMMA_TOOLTIP}),
                "prior_lambda": ("FLOAT", {"default": LAMBDA_FROM_CHECKPOINT, "min": -1.0, "max": 1.0,
                                           "step": 0.005, "round": 0.0001, "tooltip": LAMBDA_TOOLTIP}),
                "pairs_per_batch": ("INT", {"default": 8, "min": 1, "max": 256,
                                            "tooltip": "Frame pairs sampled together (memory vs speed). The "
                                                       "result does not depend on it."}),
            },
            "optional": {
                "video_latent": ("LATENT", {"tooltip": "The video to interpolate as a latent (e.g. the sampler's "
                                                       "output). Takes precedence over images."}),
                "images": ("IMAGE", {"tooltip": "Or the video as frames (sizes a multiple of 64), encoded with "
                                                "'vae'."}),
                "vae": ("VAE", {"tooltip": "The SD2.1 VAE, to encode 'images'."}),
            },
        }

    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The interpolated video latent: (frames-1)*4^passes+1 frames; VAE Decode it.",)
    FUNCTION = "interpolate"
    CATEGORY = "MicroCinema"
    DESCRIPTION = ("MicroCinema's temporal interpolation: each adjacent frame pair becomes a 5-frame clip "
                   "(endpoints kept), 4x the frame rate per pass.")

    def interpolate(self, tsr_model, positive, negative, passes, seed, steps, cfg, gamma, prior_lambda,
                    pairs_per_batch, video_latent=None, images=None, vae=None):
        check_gamma(gamma)
        config = require_kind(tsr_model, "tsr", "tsr_model")
        frames = video_latent_input(video_latent, images, vae)
        for index in range(passes):
            frames = interpolate_pass(tsr_model, positive, negative, frames, config.num_frames, seed + index,
                                      steps, cfg, resolve_lambda(prior_lambda), gamma, pairs_per_batch)
        return ({"samples": frames},)


NODE_CLASS_MAPPINGS = {"MicroCinemaTSRInterpolate": MicroCinemaTSRInterpolate}
NODE_DISPLAY_NAME_MAPPINGS = {"MicroCinemaTSRInterpolate": "MicroCinema TSR Interpolate"}
