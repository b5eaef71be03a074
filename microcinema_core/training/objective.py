"""The training objective: eps-prediction with the Appearance Noise Prior (paper sec. 3.3).

For a clip ``z_0`` (N frames) with condition ``z^c`` (centre frame; TSR: first and last frames):

* AppearNet input ``a = appearance_sequence(kind, z^c, N)``: ``[z^c]*N`` (base) or the first/last
  interpolation (TSR), the same reference the sampler's prior mean uses;
* noise (eq. 3): ``eps = lambda * a + eps_n``, ``eps_n ~ N(0, I)``;
* ``t ~ U{0..999}`` per clip (all frames share it); ``z_t = sqrt(abar_t) z_0 + sqrt(1-abar_t) eps`` (eq. 4);
* loss (eq. 5): ``|| f(z_t, t, a, c) - eps ||^2`` averaged over every element. A v-prediction network
  (``config.prediction == "v"``; its forward already returns eps, ``models/microcinema.py``) is trained on
  its own v error, ``|| v_hat - v ||^2 = || eps_hat - eps ||^2 / abar_t``: the same sum with that weight.
  An ``x0_residual`` network (the toy TSR) is trained on its z_0 error with the min-SNR-5 weight
  (Hang et al. 2023): ``min(SNR_t, 5) || z0_hat - z_0 ||^2 = min(5 (1-abar_t)/abar_t, 1) || eps_hat - eps ||^2``,
  so the low-noise steps, where the frames between the given ends are decided, are not drowned out. With
  ``min_snr=None`` the weight is 1 (the plain z_0 error at every t, ``(1-abar_t)/abar_t || eps_hat - eps ||^2``):
  the prediction from pure noise, the mean over every clip the model could draw and what a one-step sampler
  returns, then learns as much as the last steps do (issue 35's TSR against the blend, docs/model_cards.md).

Text dropout (classifier-free guidance training; tab. 3 'Drop rate' 0.1 base, 1.0 TSR): a dropped
caption's context is the cached empty-prompt embedding (what ComfyUI feeds for an empty negative
prompt), or zeros when the cache has none.

Offset noise (``offset_noise`` > 0; not in the paper, off by default): ``eps_n`` gets an extra Gaussian per
frame and channel times ``offset_noise`` (Guttenberg 2023). Small models trained from scratch otherwise barely
learn the per-frame mean of the noise and every sampled frame keeps a random colour cast; sampling is
unchanged (the prior start and the ODE are those of appendix B).

High-noise emphasis (``high_noise_fraction`` f > 0; not in the paper, off by default): a fraction f of clips
draw t from ``[high_noise_from, 999]`` instead of the whole range. Why: down to t ~ 850 the noisy clip itself
shows which way the frames move, so a denoiser can read the direction from z_t and needs the text only above
that, where the eps error it saves is a few percent of a small loss; with uniform t the text-direction link gets
~0.2 % of the gradient and the toy base never learned it (docs/model_cards.md).

Appearance transform (``appearance_transform``, None by default): a callable ``(a, slot) -> a'`` applied to each
clip's AppearNet input before eq. 3, so the noise prior is built from what AppearNet sees (the customisation
mode's image-token dropping, ``training/image_tokens.py``).

All per-sample randomness (t, eps_n, dropout) comes from ``data_order.sample_generator``: a run split
over processes, or resumed, draws exactly the same numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..diffusion.appearance_input import appearance_sequence
from ..diffusion.noise_prior import noised_latent, training_noise
from .data_order import sample_generator


@dataclass
class PreparedBatch:
    x: torch.Tensor            # z_t, [B*N, 4, h, w]
    timesteps: torch.Tensor    # [B]
    context: torch.Tensor      # [B, 77, D]
    appearance: torch.Tensor   # [B*N, 4, h, w]
    target: torch.Tensor       # eps of eq. 3, [B*N, 4, h, w]
    num_frames: int
    dropped: int               # how many captions were dropped
    abar: Optional[torch.Tensor] = None  # abar_t per frame [B*N, 1, 1, 1] (weights a v-prediction loss)


def condition_latents(kind: str, latents: torch.Tensor, cond_idx: list[int]) -> torch.Tensor:
    """``latents [B, N, C, h, w]`` -> base ``[B, C, h, w]``, TSR ``[B, 2, C, h, w]``."""
    if kind == "base":
        return latents[:, cond_idx[0]]
    return latents[:, [cond_idx[0], cond_idx[-1]]]


def prepare_batch(latents: torch.Tensor, text: torch.Tensor, *, kind: str, cond_idx: list[int],
                  alphas_cumprod: torch.Tensor, lam: float | Sequence[float], drop_rate: float,
                  empty_text: Optional[torch.Tensor], seed: int, step: int, slots: list[int],
                  device: torch.device, offset_noise: float = 0.0,
                  high_noise_fraction: float = 0.0,
                  high_noise_from: int = 850, static_when_dropped: bool = False,
                  appearance_transform: Optional[Callable[[torch.Tensor, int], torch.Tensor]] = None) -> PreparedBatch:
    """Build the model inputs and target of eq. 3-5 for one process's share of a global batch.

    ``static_when_dropped`` (base only, not in the paper): a sample whose text is dropped becomes its keyframe
    held still, so the empty prompt, CFG's unconditional branch, means "no motion" instead of the average
    motion of the data, whose blur guidance would otherwise push into every frame (docs/model_cards.md).
    ``lam``: eq. 3's lambda, or one per sample (``prior_lambdas``: the noise prior coupled to the motion's size)."""
    if static_when_dropped and kind != "base":
        raise ValueError("static_when_dropped is for the base model (TSR drops all text and keeps its clips)")
    B, N = latents.shape[:2]
    xs, ts, ctxs, apps, targets = [], [], [], [], []
    dropped = 0
    null = empty_text if empty_text is not None else torch.zeros_like(text[0])
    lams = per_sample_lambdas(lam, B)
    for b in range(B):
        g = sample_generator(seed, step, slots[b])
        t, drop = draw_timestep_and_drop(g, alphas_cumprod.numel(), drop_rate, high_noise_fraction, high_noise_from)
        z0 = latents[b]                                                  # [N, C, h, w]
        cond = condition_latents(kind, latents[b:b + 1], cond_idx)
        app = appearance_sequence(kind, cond, N)                        # [N, C, h, w]
        if drop and static_when_dropped:
            z0 = app                                                     # the keyframe, every frame
        if appearance_transform is not None:
            app = appearance_transform(app, slots[b])
        eps = prior_noise(app, lams[b], g, offset_noise)                 # eq. 3
        xs.append(noised_latent(z0, eps, alphas_cumprod[t].expand(N)))  # eq. 4
        ts.append(t)
        ctxs.append(null if drop else text[b])
        apps.append(app)
        targets.append(eps)
        dropped += int(drop)
    return PreparedBatch(
        x=torch.cat(xs).to(device), timesteps=torch.cat(ts).float().to(device),
        context=torch.stack(ctxs).to(device), appearance=torch.cat(apps).to(device),
        target=torch.cat(targets).to(device), num_frames=N, dropped=dropped,
        abar=alphas_cumprod[torch.cat(ts)].float().repeat_interleave(N).view(-1, 1, 1, 1).to(device),
    )


def per_sample_lambdas(lam, count: int) -> list[float]:
    """eq. 3's lambda for each of ``count`` samples: one number for all, or one per sample."""
    lams = [float(lam)] * count if isinstance(lam, (int, float)) else [float(v) for v in lam]
    if len(lams) != count:
        raise ValueError(f"{len(lams)} prior lambdas for a batch of {count} clips")
    return lams


def draw_timestep_and_drop(g: torch.Generator, timesteps: int, drop_rate: float, high_noise_fraction: float,
                           high_noise_from: int) -> tuple[torch.Tensor, bool]:
    """One sample's ``t`` (from the high-noise end for ``high_noise_fraction`` of samples) and text-drop draw."""
    t = torch.randint(0, timesteps, (1,), generator=g)
    if high_noise_fraction and bool(torch.rand((), generator=g) < high_noise_fraction):
        t = torch.randint(high_noise_from, timesteps, (1,), generator=g)
    return t, bool(torch.rand((), generator=g) < drop_rate)


def prior_noise(appearance: torch.Tensor, lam: float, g: torch.Generator, offset_noise: float = 0.0) -> torch.Tensor:
    """Eq. 3's training noise around ``lam x appearance``, plus ``offset_noise`` x one Gaussian per frame and channel."""
    eps = training_noise(appearance, lam, generator=g)
    if offset_noise:
        eps = eps + offset_noise * torch.randn(eps.shape[:2] + (1, 1), generator=g, dtype=eps.dtype)
    return eps


def prior_lambdas(lam: float, amplitudes: Sequence[float], coupling: float, gamma_at_one: float) -> list[float]:
    """Per-clip training lambdas that make gamma the motion knob (not in the paper): a clip whose motion is ``r``
    times the world's is noised with ``lam + gamma_at_one - coupling * log2(r)``. Sampling from the prior
    ``N((lam + gamma) z^c, I)`` (appendix B.3) then asks for ``r = 2 ** ((gamma_at_one - gamma) / coupling)``;
    ``coupling`` 0 gives eq. 3's single ``lam``."""
    if not coupling:
        return [float(lam)] * len(amplitudes)
    return [float(lam + gamma_at_one - coupling * math.log2(r)) for r in amplitudes]


MIN_SNR_GAMMA = 5.0


def min_snr_weight(abar: torch.Tensor, gamma: float = MIN_SNR_GAMMA) -> torch.Tensor:
    """The eps-error weight that makes the loss ``min(SNR_t, gamma) * |z0 error|^2`` (SNR_t = abar/(1-abar))."""
    return (gamma * (1.0 - abar) / abar.clamp_min(1e-12)).clamp(max=1.0)


def z0_error_weight(abar: torch.Tensor, min_snr: Optional[float] = MIN_SNR_GAMMA) -> torch.Tensor:
    """The eps-error weight that makes the loss ``min(SNR_t, min_snr) |z0 error|^2``, or ``|z0 error|^2`` (None)."""
    if min_snr is None:
        return (1.0 - abar) / abar.clamp_min(1e-12)
    return min_snr_weight(abar, min_snr)


def diffusion_loss(model: nn.Module, batch: PreparedBatch, autocast_dtype: Optional[torch.dtype],
                   prediction: str = "eps", x0_min_snr: Optional[float] = MIN_SNR_GAMMA) -> torch.Tensor:
    """Eq. 5, the mean squared error to the whole noise ``eps`` (prediction in fp32 for the loss); for a
    v-prediction network the error in v (the eps error over ``abar_t``); for an x0_residual network the
    z_0 error, min-SNR-weighted (``x0_min_snr``) or plain (None)."""
    device_type = batch.x.device.type
    with torch.autocast(device_type=device_type, dtype=autocast_dtype or torch.float32,
                        enabled=autocast_dtype is not None):
        pred = model(batch.x, batch.timesteps, batch.context, batch.appearance, batch.num_frames)
    if prediction == "v":
        return ((pred.float() - batch.target.float()) ** 2 / batch.abar).mean()
    if prediction == "x0_residual":
        return ((pred.float() - batch.target.float()) ** 2 * z0_error_weight(batch.abar, x0_min_snr)).mean()
    return F.mse_loss(pred.float(), batch.target.float())

