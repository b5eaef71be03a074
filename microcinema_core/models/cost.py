"""What one forward pass of the network costs, and whether this machine runs it in a sensible time.

* :func:`step_flops`: FLOPs of ``MicroCinemaModel.forward`` for a latent batch, counted from the layer
  shapes (convolutions, linear layers, attention matmuls: what ``torch.utils.flop_counter`` counts; held to
  it in tests/test_bad_inputs.py). Instant, no forward pass.
* :func:`machine_flops`: this device's matmul rate in a dtype, measured once (a fraction of a second).
* :func:`slow_dtype_reason`: why a dtype is far slower than another here (bf16 on a CPU without native
  bf16: oneDNN's reference kernel, ~100x slower than fp32), or None.
* :func:`cost_warning`: a message for a run whose estimated time is far above what this machine does in
  reasonable time (e.g. 2048x2048 px on a CPU: ~1000 TFLOP per step), or None.

Plain PyTorch; the ComfyUI nodes call these and log the messages (``nodes/helpers/comfy_model.py``).
"""
from __future__ import annotations

import functools
import time
from typing import Optional

import torch
import torch.nn as nn

from ..hardware import cpu_bf16_flags, fast_bf16
from ..nn.spatial import Downsample, ResBlock, SpatialTransformer, Upsample

# One step estimated above this many seconds gets a warning (the paper's setting, 9 frames at 320x320
# with CFG, takes 30-70 s per step on a 2-core CPU; 2048x2048 takes over an hour there).
WARN_STEP_SECONDS = 300.0
# Share of the measured matmul rate the whole network reaches (measured 0.42-0.91 on CPUs:
# docs/benchmarks.md); the estimate is meant to within a factor of 2.
NETWORK_EFFICIENCY = 0.6


def _conv(conv: nn.Module, rows: int, h: int, w: int) -> float:
    """2 x MACs of a convolution whose output is ``rows`` maps of ``h x w`` (Conv3d: per frame)."""
    return 2.0 * conv.weight.numel() * h * w * rows


def _linear(linear: nn.Linear, tokens: int) -> float:
    return 2.0 * linear.weight.numel() * tokens


def _resblock(block: ResBlock, rows: int, h: int, w: int) -> float:
    flops = _conv(block.in_layers[2], rows, h, w) + _conv(block.out_layers[3], rows, h, w)
    flops += _linear(block.emb_layers[1], rows)
    flops += _conv(block.temporal_conv_in.conv, rows, h, w) + _conv(block.temporal_conv_out.conv, rows, h, w)
    if isinstance(block.skip_connection, nn.Conv2d):
        flops += _conv(block.skip_connection, rows, h, w)
    if block.spade is not None:
        flops += _conv(block.spade.conv, rows, h, w)
    return flops


def _transformer(layer: SpatialTransformer, rows: int, h: int, w: int, num_frames: int, context_tokens: int,
                 context_rows: int) -> float:
    tokens = rows * h * w
    flops = _linear(layer.proj_in, tokens) + _linear(layer.proj_out, tokens)
    for block in layer.transformer_blocks:
        inner = block.attn1.to_q.weight.shape[0]
        for lin in (block.attn1.to_q, block.attn1.to_k, block.attn1.to_v, block.attn1.to_out[0],
                    block.attn2.to_q, block.attn2.to_out[0], block.ff.net[0].proj, block.ff.net[2]):
            flops += _linear(lin, tokens)
        flops += _linear(block.attn2.to_k, context_rows * context_tokens)
        flops += _linear(block.attn2.to_v, context_rows * context_tokens)
        flops += 4.0 * rows * (h * w) ** 2 * inner  # self-attention: QK^T and AV over each frame's pixels
        flops += 4.0 * tokens * context_tokens * inner  # cross-attention to the text
    if layer.temporal_attention is not None:
        ta = layer.temporal_attention
        for lin in (ta.to_q, ta.to_k, ta.to_v, ta.to_out):
            flops += _linear(lin, tokens)
        flops += 4.0 * tokens * num_frames * ta.to_q.weight.shape[0]  # over the N frames at each pixel
    return flops


def _blocks(blocks, rows, h, w, num_frames, context_tokens, context_rows, sizes=None) -> tuple:
    """FLOPs of a list of VideoBlocks run in order from ``h x w``; returns ``(flops, h, w)`` at the end.
    ``sizes`` (a list) receives the size after each block."""
    flops = 0.0
    for block in blocks:
        layers = block if isinstance(block, nn.ModuleList) else [block]
        for layer in layers:
            if isinstance(layer, ResBlock):
                flops += _resblock(layer, rows, h, w)
            elif isinstance(layer, SpatialTransformer):
                flops += _transformer(layer, rows, h, w, num_frames, context_tokens, context_rows)
            elif isinstance(layer, Downsample):
                h, w = (h + 1) // 2, (w + 1) // 2
                flops += _conv(layer.op, rows, h, w)
            elif isinstance(layer, Upsample):
                h, w = h * 2, w * 2
                flops += _conv(layer.conv, rows, h, w)
            elif isinstance(layer, nn.Conv2d):
                flops += _conv(layer, rows, h, w)
        if sizes is not None:
            sizes.append((h, w))
    return flops, h, w


def step_flops(model, rows: int, height: int, width: int, num_frames: int, context_tokens: int = 77,
               frames_share_context: bool = True) -> float:
    """FLOPs of one ``model(x, t, context, appearance, num_frames)`` call for ``x`` of shape
    ``[rows, 4, height, width]`` (latent size; rows = videos x frames, cond and uncond included)."""
    videos = max(1, rows // num_frames)
    context_rows = videos if frames_share_context else rows
    args = (rows, height, width, num_frames, context_tokens, context_rows)
    unet = model.unet
    flops = 2 * _linear(unet.time_embed[0], rows) + _linear(unet.time_embed[2], rows)
    sizes = []
    enc, h, w = _blocks(unet.input_blocks, *args, sizes=sizes)
    mid, _, _ = _blocks([unet.middle_block], rows, h, w, num_frames, context_tokens, context_rows)
    dec, h2, w2 = _blocks(unet.output_blocks, rows, h, w, num_frames, context_tokens, context_rows)
    flops += enc + mid + dec + _conv(unet.out[2], rows, h2, w2)
    if getattr(model, "appearnet", None) is not None:
        a_enc, h, w = _blocks(model.appearnet.input_blocks, *args)
        a_mid, _, _ = _blocks([model.appearnet.middle_block], rows, h, w, num_frames, context_tokens, context_rows)
        flops += a_enc + a_mid + _linear(model.appearnet.time_embed[0], rows) + \
            _linear(model.appearnet.time_embed[2], rows)
        inj = model.injection
        for convs in (inj.encoder, inj.decoder):
            if convs is not None:
                flops += sum(_conv(c, rows, hh, ww) for c, (hh, ww) in zip(convs, sizes))
        flops += _conv(inj.middle, rows, *sizes[-1])
    return flops


def _dtype_name(dtype) -> str:
    return {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, str(dtype))


def slow_dtype_reason(dtype, device="cpu") -> Optional[str]:
    """Why ``dtype`` is far slower than fp32 on ``device``, or None when it is not.

    bf16 on a CPU without AVX512-BF16 / AMX (e.g. AVX2 only): oneDNN falls back to a reference kernel,
    measured at ~1 GFLOP/s against ~160 GFLOP/s in fp32 on such a machine (100x).
    """
    device = torch.device(device)
    if dtype in (torch.bfloat16, "bf16") and device.type == "cpu" and not fast_bf16(device):
        return ("this CPU has no native bf16 (no avx512_bf16 / amx_bf16 in /proc/cpuinfo, e.g. an AVX2-only "
                "CPU): bf16 matrix products fall back to a slow reference kernel, about 100x slower than "
                "fp32. Load the model as fp32 (or auto) on this machine.")
    return None


def cpu_dtype_report() -> str:
    """One line on what the CPU supports, for logs and benchmarks."""
    flags = cpu_bf16_flags()
    return f"native bf16 flags: {', '.join(flags)}" if flags else "no native bf16 (no avx512_bf16 / amx_bf16)"


@functools.lru_cache(maxsize=8)
def machine_flops(dtype_name: str = "fp32", device: str = "cpu") -> float:
    """Best measured rate (FLOP/s) of a square matmul in ``dtype_name`` on ``device`` (cached per process)."""
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype_name]
    dev = torch.device(device)
    n = 1024
    if dev.type == "cpu" and (slow_dtype_reason(dtype, dev) or dtype == torch.float16):
        n = 256  # slow paths: a small probe is enough to see it
    a = torch.randn(n, n, device=dev).to(dtype)
    b = torch.randn(n, n, device=dev).to(dtype)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.mm(a, b)
    sync()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        torch.mm(a, b)
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / max(best, 1e-9)


def format_seconds(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def cost_warning(model, rows: int, height: int, width: int, num_frames: int, dtype, device,
                 steps: Optional[int] = None, limit_s: Optional[float] = None) -> Optional[str]:
    """A warning when one network call on ``[rows, 4, height, width]`` is estimated above ``limit_s``
    (default :data:`WARN_STEP_SECONDS`, read at call time).

    The estimate is :func:`step_flops` over :data:`NETWORK_EFFICIENCY` x :func:`machine_flops`; ``steps``
    (when known) adds the whole run's time.
    """
    limit_s = WARN_STEP_SECONDS if limit_s is None else limit_s
    flops = step_flops(model, rows, height, width, num_frames)
    name = _dtype_name(dtype)
    rate = machine_flops(name, str(torch.device(device))) * NETWORK_EFFICIENCY
    seconds = flops / rate
    if seconds <= limit_s:
        return None
    total = f", about {format_seconds(seconds * steps)} for {steps} steps" if steps else ""
    slow = slow_dtype_reason(dtype, device)
    return (f"this run is far above what this machine does in reasonable time: one step on {rows} frames of "
            f"{width * 8}x{height * 8} px is ~{flops / 1e12:.0f} TFLOP; this {torch.device(device).type} does "
            f"~{rate / 1e9:.0f} GFLOP/s on this network in {name}: about {format_seconds(seconds)} per step"
            f"{total}. Lower width/height (the paper uses 320x320) or frames, or run on a GPU. Cancel stops "
            "it within one network block." + (f" Also: {slow}" if slow else ""))
