"""The paper's data filters (sec. 4 'Datasets'): drop clips that are too static or too jumpy, and clips
whose caption does not match the image (low CLIP score).

Motion measure (``data.motion_measure``), computed on the clip as it will be trained (N frames at the
target fps), after converting to grey (ITU-R 601 weights) and area-resizing to 64x64:

* ``"absdiff"`` (default, no dependency): ``m_k = mean |I_{k+1} - I_k|`` with intensities in [0, 1],
  for k = 1..N-1. The clip's motion is ``mean_k m_k``; its jump is ``max_k m_k``.
* ``"farneback"`` (needs ``opencv-python-headless``): ``m_k`` = mean Farneback optical-flow magnitude
  between frames k and k+1, as a fraction of the frame width.

A clip is dropped as ``static`` when ``mean m_k < min_motion`` (stills, slideshows of one frame),
as ``jumpy`` when ``mean m_k > max_motion`` (shaking, flashing), and as ``scene_cut`` when
``max m_k > max_jump`` (a cut or a fade inside the clip). The default thresholds (0.004, 0.25, 0.35)
are in absdiff units, chosen on the offline test videos: compression noise on a still shot is about
0.001-0.003, ordinary camera or subject motion at 2 fps 0.01-0.1, a hard cut 0.2-0.5. With
``farneback`` set thresholds in its units (e.g. 0.002 / 0.1 / 0.2 of the width per step).

Caption-image score: ``data.caption_score_fn = "module:function"`` names a callable
``f(image [3,S,S] float in [0,1], caption: str) -> float`` (e.g. a CLIP cosine similarity); clips scoring
below ``data.min_caption_score`` on their condition frame are dropped as ``caption_score``. No CLIP
weights exist offline, so this is a hook, off by default.
"""
from __future__ import annotations

import importlib
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from .train_config import DataConfig

MOTION_SIDE = 64


def _grey_small(frames: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=frames.dtype).view(1, 3, 1, 1)
    grey = (frames * weights).sum(dim=1, keepdim=True)
    return F.interpolate(grey, size=(MOTION_SIDE, MOTION_SIDE), mode="area")[:, 0]


def absdiff_steps(frames: torch.Tensor) -> torch.Tensor:
    """``m_k = mean |I_{k+1} - I_k|`` for a clip ``[N, 3, H, W]`` in [0, 1]; returns ``[N-1]``."""
    grey = _grey_small(frames.float())
    return (grey[1:] - grey[:-1]).abs().mean(dim=(1, 2))


def farneback_steps(frames: torch.Tensor) -> torch.Tensor:
    """Mean Farneback flow magnitude per step, as a fraction of the width; needs OpenCV."""
    try:
        import cv2
    except ImportError as exc:
        raise RuntimeError("data.motion_measure='farneback' needs opencv-python-headless; "
                           "install it or use 'absdiff'") from exc
    grey = (_grey_small(frames.float()) * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()
    steps = []
    for a, b in zip(grey[:-1], grey[1:]):
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 9, 3, 5, 1.1, 0)
        steps.append(float(np.sqrt((flow ** 2).sum(axis=-1)).mean()) / MOTION_SIDE)
    return torch.tensor(steps)


def motion_steps(frames: torch.Tensor, measure: str) -> torch.Tensor:
    if measure == "absdiff":
        return absdiff_steps(frames)
    if measure == "farneback":
        return farneback_steps(frames)
    raise ValueError(f"data.motion_measure must be 'absdiff' or 'farneback', got {measure!r}")


def motion_verdict(steps: torch.Tensor, cfg: DataConfig) -> Optional[str]:
    """``None`` to keep the clip, else the reason it is dropped (static / jumpy / scene_cut)."""
    mean, peak = float(steps.mean()), float(steps.max())
    if cfg.min_motion is not None and mean < cfg.min_motion:
        return "static"
    if cfg.max_motion is not None and mean > cfg.max_motion:
        return "jumpy"
    if cfg.max_jump is not None and peak > cfg.max_jump:
        return "scene_cut"
    return None


ScoreFn = Callable[[torch.Tensor, str], float]


def load_score_fn(spec: Optional[str]) -> Optional[ScoreFn]:
    """Import ``"package.module:function"`` (the caption-image score hook), or ``None``."""
    if not spec:
        return None
    if ":" not in spec:
        raise ValueError(f"data.caption_score_fn must look like 'module:function', got {spec!r}")
    module, name = spec.split(":", 1)
    return getattr(importlib.import_module(module), name)


def caption_verdict(score_fn: Optional[ScoreFn], image: torch.Tensor, caption: str,
                    min_score: Optional[float]) -> tuple[Optional[str], Optional[float]]:
    if score_fn is None:
        return None, None
    score = float(score_fn(image, caption))
    if min_score is not None and score < min_score:
        return "caption_score", score
    return None, score
