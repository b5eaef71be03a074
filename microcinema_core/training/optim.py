"""Optimiser and learning-rate schedule (paper sec. 4 'Implementation details', appendix C).

Two parameter groups, split by how a layer starts (``MicroCinemaModel.parameter_groups``):

* ``temporal_and_injection`` at ``lr`` = 2e-5: every layer the paper adds to SD2.1, zero-initialised:
  temporal convolutions and attention (in the main branch AND in AppearNet), SPADE convolutions, the
  injection zero convolutions;
* ``spatial`` at ``lr * spatial_lr_scale`` = 2e-6: every layer that starts from SD2.1's weights: the main
  branch's spatial layers AND AppearNet's spatial layers (its copy of SD2.1's encoder and middle).

The paper gives 2e-5 to "the temporal modules" and one tenth to "the spatial model" (sec. 4, app. C). It does
not name AppearNet; we put its SD2.1-initialised spatial weights with the spatial ones because they start
from the same pretrained weights, and a 10x larger rate there would move the pretrained features that
AppearNet is meant to carry faster than the main branch's own copy. When a model is trained from scratch
(nothing pretrained), ``spatial_lr_scale=1.0`` gives both groups the same rate (the toy bundle does this).
AdamW, linear warm-up, then constant (or cosine) learning rate.
"""
from __future__ import annotations

import math
from typing import Iterable

import torch
import torch.nn as nn

from .train_config import TrainConfig

NEW_LAYER_MARKERS = ("temporal", "injection", "spade")  # same split as MicroCinemaModel.parameter_groups


def is_new_layer(name: str) -> bool:
    """By name: parameters of layers the paper adds to SD2.1 (fallback when the model has no groups).

    AppearNet's spatial layers are not new: they start from SD2.1's weights (see the module docstring)."""
    lowered = name.lower()
    return any(marker in lowered for marker in NEW_LAYER_MARKERS)


def _clean(name: str) -> str:
    # DDP / FSDP / torch.compile wrappers prefix the original names
    for prefix in ("module.", "_fsdp_wrapped_module.", "_orig_mod.", "_checkpoint_wrapped_module."):
        name = name.replace(prefix, "")
    return name


def split_parameters(model: nn.Module) -> tuple[list, list]:
    """(new-layer params, spatial params), trainable only.

    Uses ``model.parameter_groups()`` when the model (or the wrapped module) has it; it must return a
    mapping with ``"temporal"``/``"new"`` and ``"spatial"`` lists of parameters (or of names).
    Otherwise classifies by name with :data:`NEW_LAYER_MARKERS`.
    """
    inner = getattr(model, "module", model)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups_fn = getattr(inner, "parameter_groups", None)
    if callable(groups_fn):
        groups = groups_fn()
        new_key = "new" if "new" in groups else "temporal"
        new_ids = {id(p) if isinstance(p, torch.Tensor) else p for p in groups[new_key]}
        by_name = all(isinstance(x, str) for x in new_ids)
        new, spatial = [], []
        for n, p in named:
            (new if ((_clean(n) in new_ids) if by_name else (id(p) in new_ids)) else spatial).append(p)
        return new, spatial
    new = [p for n, p in named if is_new_layer(_clean(n))]
    spatial = [p for n, p in named if not is_new_layer(_clean(n))]
    return new, spatial


EMBEDDING_MARKER = "prior_share_embed."   # models/prior_share_embedding.py: its own rate with embedding_lr_scale


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    new, spatial = split_parameters(model)
    groups = [{"params": new, "lr": cfg.lr, "name": "temporal_and_injection"}]
    if cfg.embedding_lr_scale != 1.0:   # the prior-share embedding learns the gamma link (docs/model_cards.md)
        own = {id(p) for n, p in model.named_parameters() if EMBEDDING_MARKER in _clean(n) and p.requires_grad}
        groups = [{"params": [p for p in new if id(p) not in own], "lr": cfg.lr, "name": "temporal_and_injection"},
                  {"params": [p for p in new if id(p) in own], "lr": cfg.lr * cfg.embedding_lr_scale,
                   "name": "prior_share_embedding"}]
    if spatial and cfg.spatial_lr_scale > 0:
        groups.append({"params": spatial, "lr": cfg.lr * cfg.spatial_lr_scale, "name": "spatial"})
    elif spatial:  # scale 0: spatial layers frozen
        for p in spatial:
            p.requires_grad_(False)
    groups = [g for g in groups if g["params"]]
    return torch.optim.AdamW(groups, betas=cfg.adam_betas, eps=cfg.adam_eps, weight_decay=cfg.weight_decay)


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of every group's base LR at optimiser step ``step`` (0-based)."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "cosine":
        span = max(1, cfg.max_steps - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, cfg))


def clip_gradients(parameters: Iterable[torch.Tensor], max_norm) -> torch.Tensor:
    """Clip the global gradient norm; returns it (a plain tensor also for FSDP2's sharded DTensors)."""
    if max_norm is None:
        return torch.tensor(float("nan"))
    norm = torch.nn.utils.clip_grad_norm_(list(parameters), max_norm)
    return norm.full_tensor() if hasattr(norm, "full_tensor") else norm
