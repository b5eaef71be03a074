"""Scaled dot-product attention with a swappable backend.

Tensors use the ``[batch, tokens, heads * head_dim]`` convention, the same one ComfyUI's
``optimized_attention(q, k, v, heads)`` takes, so the ComfyUI glue can hand that function in with
:func:`set_attention_backend` and the model then follows the user's --use-xformers / --use-pytorch-cross-attention
flags. Without a backend: xformers when importable and the tensors are on CUDA, else PyTorch SDPA.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F

AttentionFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor]

_backend: Optional[AttentionFn] = None

try:  # optional dependency, used only when present
    import xformers.ops as _xops  # type: ignore
except Exception:  # ImportError, or a broken build: fall back silently to SDPA
    _xops = None


def set_attention_backend(fn: Optional[AttentionFn]) -> Optional[AttentionFn]:
    """Route every attention of the model through ``fn(q, k, v, heads)``; ``None`` restores the default.

    Returns the previous backend so callers can restore it.
    """
    global _backend
    previous, _backend = _backend, fn
    return previous


def get_attention_backend() -> Optional[AttentionFn]:
    return _backend


def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """PyTorch's fused attention; ``[B, L, H*D] -> [B, L, H*D]``."""
    b, lq, inner = q.shape
    d = inner // heads
    q = q.view(b, lq, heads, d).transpose(1, 2)
    k = k.view(k.shape[0], k.shape[1], heads, d).transpose(1, 2)
    v = v.view(v.shape[0], v.shape[1], heads, d).transpose(1, 2)
    out = F.scaled_dot_product_attention(q, k, v)
    return out.transpose(1, 2).reshape(b, lq, inner)


def xformers_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    b, lq, inner = q.shape
    d = inner // heads
    out = _xops.memory_efficient_attention(
        q.view(b, lq, heads, d), k.view(k.shape[0], k.shape[1], heads, d), v.view(v.shape[0], v.shape[1], heads, d)
    )
    return out.reshape(b, lq, inner)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    if _backend is not None:
        return _backend(q, k, v, heads)
    if _xops is not None and q.is_cuda:
        return xformers_attention(q, k, v, heads)
    return sdpa_attention(q, k, v, heads)
