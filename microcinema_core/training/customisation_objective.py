"""The customisation objective: identity injection from an image customisation set (issue 36; first abstract of
``../shared/paper/004_a0e28a498e8cbe82.txt``, "(1) identity injection through image customization dataset").

One sample is one pair: the subject reference ``r`` and its target picture ``z_0`` (the subject elsewhere, at
another size, with caption), trained as a one-frame video (``num_frames = 1``; the temporal layers pass a single
frame through, ``nn/temporal.py``, so this objective never touches them). Eq. 3-5 of the base with the reference in
the keyframe's place: AppearNet input ``r``, noise ``eps = lambda r + eps_n``, ``z_t = sqrt(abar_t) z_0 +
sqrt(1-abar_t) eps``, loss ``objective.diffusion_loss``. At sampling the video starts from ``N((lambda+gamma)[r]*N,
I)`` with ``[r]*N`` as AppearNet's input: the base pipeline with the reference for the keyframe.

Text dropout, offset noise and the high-noise share are those of ``prepare_batch``, drawn in the same order from
the same per-sample generator.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from ..diffusion.noise_prior import noised_latent
from .data_order import sample_generator
from .objective import PreparedBatch, draw_timestep_and_drop, per_sample_lambdas, prior_noise


def prepare_customisation_batch(references: torch.Tensor, targets: torch.Tensor, text: torch.Tensor, *,
                                alphas_cumprod: torch.Tensor, lam: float | Sequence[float], drop_rate: float,
                                empty_text: Optional[torch.Tensor], seed: int, step: int, slots: list[int],
                                device: torch.device, offset_noise: float = 0.0, high_noise_fraction: float = 0.0,
                                high_noise_from: int = 850) -> PreparedBatch:
    """``references``, ``targets`` ``[B, C, h, w]``, ``text [B, 77, D]`` -> a one-frame :class:`PreparedBatch`."""
    B = references.shape[0]
    if targets.shape != references.shape:
        raise ValueError(f"references {tuple(references.shape)} and targets {tuple(targets.shape)} differ")
    lams = per_sample_lambdas(lam, B)
    null = empty_text if empty_text is not None else torch.zeros_like(text[0])
    xs, ts, ctxs, targets_eps = [], [], [], []
    dropped = 0
    for b in range(B):
        g = sample_generator(seed, step, slots[b])
        t, drop = draw_timestep_and_drop(g, alphas_cumprod.numel(), drop_rate, high_noise_fraction, high_noise_from)
        eps = prior_noise(references[b:b + 1], lams[b], g, offset_noise)           # eq. 3, z^c := r
        xs.append(noised_latent(targets[b:b + 1], eps, alphas_cumprod[t]))     # eq. 4
        ts.append(t)
        ctxs.append(null if drop else text[b])
        targets_eps.append(eps)
        dropped += int(drop)
    timesteps = torch.cat(ts)
    return PreparedBatch(
        x=torch.cat(xs).to(device), timesteps=timesteps.float().to(device), context=torch.stack(ctxs).to(device),
        appearance=references.to(device), target=torch.cat(targets_eps).to(device), num_frames=1,
        dropped=dropped, abar=alphas_cumprod[timesteps].float().view(-1, 1, 1, 1).to(device),
    )
