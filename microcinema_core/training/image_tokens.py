"""Random image-token dropping with randomised image initialisation (issue 36; first abstract of
``../shared/paper/004_a0e28a498e8cbe82.txt``: "random image token dropping with randomized image initialization
during image-to-video fine-tuning to mitigate the copy-and-paste issue"). The abstract gives no details; ours:

* a **token** is a ``token x token`` block of latent positions of AppearNet's input (default 2 x 2: 16 x 16 pixels,
  the patch a latent transformer makes one token of); AppearNet is convolutional, so one latent position alone
  is refilled from its neighbours almost for free;
* each token of a clip's keyframe latent is dropped with probability ``rate``, the same tokens in all N copies;
* **randomised initialisation**: a dropped token is filled with Gaussian values of the keyframe latent's own
  per-channel mean and std (``fill="random"``; ``"mean"``: the channel mean, a blank to compare with). The
  training objective builds the noise prior ``N(lambda a', I)`` from this ``a'`` too (``objective.prepare_batch``
  applies the transform before eq. 3), so the image the sample starts from is randomised at the same tokens.

Its randomness has its own stream per ``(seed, step, slot)``: t, eps and text dropout draw what they drew without it.
"""
from __future__ import annotations

import torch

from .data_order import sample_seed

TOKEN_STREAM = 0x70CE7D0F   # kept apart from the sample's own generator (data_order.sample_generator)


def token_generator(seed: int, step: int, slot: int) -> torch.Generator:
    return torch.Generator().manual_seed(sample_seed(seed ^ TOKEN_STREAM, step, slot))


def token_mask(height: int, width: int, token: int, rate: float, generator: torch.Generator) -> torch.Tensor:
    """``[height, width]`` bool, True where a latent position belongs to a dropped token."""
    rows, cols = -(-height // token), -(-width // token)
    dropped = torch.rand(rows, cols, generator=generator) < rate
    return dropped.repeat_interleave(token, 0).repeat_interleave(token, 1)[:height, :width]


def randomise_tokens(latent: torch.Tensor, mask: torch.Tensor, generator: torch.Generator,
                     fill: str = "random") -> torch.Tensor:
    """``latent [C, h, w]`` with the masked positions replaced (random: N(channel mean, channel std))."""
    mean = latent.mean(dim=(1, 2), keepdim=True)
    if fill == "mean":
        values = mean.expand_as(latent)
    elif fill == "random":
        std = latent.std(dim=(1, 2), keepdim=True) if latent[0].numel() > 1 else torch.zeros_like(mean)
        noise = torch.randn(latent.shape, generator=generator, dtype=latent.dtype).to(latent.device)
        values = mean + std * noise
    else:
        raise ValueError(f"token fill must be 'random' or 'mean', got {fill!r}")
    return torch.where(mask.to(latent.device), values, latent)


class ImageTokenDropping:
    """``prepare_batch``'s ``appearance_transform`` for one step: ``(a [N, C, h, w], slot) -> a'``.

    ``a`` is the base model's ``[z^c] * N``; every copy gets the same dropped tokens."""

    def __init__(self, rate: float, token: int, seed: int, step: int, fill: str = "random"):
        if not 0.0 <= rate <= 1.0 or token < 1:
            raise ValueError(f"token dropping needs rate in [0, 1] and token >= 1, got {rate!r}, {token!r}")
        self.rate, self.token, self.seed, self.step, self.fill = rate, token, seed, step, fill

    def __call__(self, appearance: torch.Tensor, slot: int) -> torch.Tensor:
        if self.rate == 0.0:
            return appearance
        g = token_generator(self.seed, self.step, slot)
        keyframe = appearance[0]
        mask = token_mask(keyframe.shape[-2], keyframe.shape[-1], self.token, self.rate, g)
        return randomise_tokens(keyframe, mask, g, self.fill).expand_as(appearance).contiguous()
