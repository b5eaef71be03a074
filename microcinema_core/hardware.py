"""What the machine runs fast: bf16 only where the CPU has native bf16 (AVX512-BF16 / AMX) or on CUDA.

On AVX2-only CPUs oneDNN falls back to a reference kernel and bf16 matmuls run ~100x slower than fp32.
"""
from __future__ import annotations

import functools
from pathlib import Path

import torch


@functools.lru_cache(maxsize=1)
def cpu_bf16_flags() -> tuple:
    """The native-bf16 flags the CPU reports in /proc/cpuinfo (empty where none or unreadable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ()
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return tuple(sorted(f for f in flags if f in ("avx512_bf16", "amx_bf16")))


def fast_bf16(device: str | torch.device = "cpu") -> bool:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(cpu_bf16_flags())
    return False


def training_precision(device: str | torch.device = "cpu") -> str:
    """``"bf16"`` autocast where it is fast, else ``"fp32"``."""
    return "bf16" if fast_bf16(device) else "fp32"


def default_device() -> str:
    return "cuda:0" if torch.cuda.is_available() else "cpu"
