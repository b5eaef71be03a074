"""Temporal consistency of a video: the flow-warped frame error.

For each pair of consecutive frames ``(k, k+1)`` the dense optical flow from frame k to frame k+1 is measured
(OpenCV Farneback, the same settings as ``flow_motion.dense_flow``): pixel ``x`` of frame k is seen at
``x + f(x)`` in frame k+1. Frame k+1 is sampled there (bilinear, ``cv2.remap``), which warps it onto frame k,
and the error is the mean absolute difference between frame k and the warped frame k+1 over the valid
pixels, in the units of the images (0..1; all three channels averaged).

Valid pixels: those whose target ``x + f(x)`` lies inside frame k+1 and, with ``occlusion_check`` (default),
whose forward flow is undone by the backward flow within ``0.01 |f|^2 + 0.5`` px (the usual forward-backward
test, which leaves out pixels that are covered or uncovered between the two frames).

A static clip scores ~0; a clip with smooth motion stays low (what the flow explains is not counted); shuffled
frames, flicker or per-frame noise raise it, since the flow cannot explain them. Lower is better. The score is
not comparable across resolutions or flow settings: compare videos measured the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .flow_motion import dense_flow


def _as_float_frames(frames) -> np.ndarray:
    """``[N, H, W, 3]`` (or ``[N, 3, H, W]``) uint8 / float in [0, 1] -> float32 ``[N, H, W, 3]`` in [0, 1]."""
    if hasattr(frames, "detach"):
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames)
    if frames.ndim != 4:
        raise ValueError(f"a video must be [N, H, W, 3]; got shape {frames.shape}")
    if frames.shape[1] == 3 and frames.shape[-1] != 3:
        frames = frames.transpose(0, 2, 3, 1)
    if frames.shape[-1] != 3:
        raise ValueError(f"a video must be RGB [N, H, W, 3]; got shape {frames.shape}")
    if len(frames) < 2:
        raise ValueError(f"temporal consistency needs at least 2 frames; got {len(frames)}")
    if frames.dtype == np.uint8:
        return frames.astype(np.float32) / 255.0
    return np.clip(frames.astype(np.float32), 0.0, 1.0)


def warp_back(frame_next: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame k+1 warped onto frame k with the flow k -> k+1; returns ``(warped, inside)``."""
    import cv2

    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x, map_y = xs + flow[..., 0], ys + flow[..., 1]
    warped = cv2.remap(frame_next, map_x, map_y, interpolation=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    return warped, inside


def _consistent(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Forward-backward check: the backward flow at ``x + f(x)`` must bring the pixel back to ``x``."""
    back_at_target, _ = warp_back(backward, forward)
    loop = forward + back_at_target
    bound = 0.01 * ((forward ** 2).sum(-1) + (back_at_target ** 2).sum(-1)) + 0.5
    return (loop ** 2).sum(-1) <= bound


@dataclass
class TemporalConsistency:
    warp_error: float            # mean over pairs of the per-pair warp error (lower is better)
    per_pair: list               # one error per consecutive pair
    valid_fraction: float        # mean fraction of pixels counted


def warp_errors(frames, occlusion_check: bool = True) -> TemporalConsistency:
    """Flow-warped frame error of every consecutive pair (see the module doc)."""
    video = _as_float_frames(frames)
    errors, valid = [], []
    for k in range(len(video) - 1):
        a, b = video[k], video[k + 1]
        forward = dense_flow(a, b)
        warped, mask = warp_back(b, forward)
        if occlusion_check:
            mask &= _consistent(forward, dense_flow(b, a))
        if not mask.any():      # nothing trustworthy (e.g. a cut): count the whole frame, unwarped
            mask = np.ones_like(mask)
            warped = b
        errors.append(float(np.abs(a - warped).mean(-1)[mask].mean()))
        valid.append(float(mask.mean()))
    return TemporalConsistency(float(np.mean(errors)), errors, float(np.mean(valid)))


def temporal_consistency(frames, occlusion_check: bool = True) -> float:
    """The mean flow-warped frame error of a video (``[N, H, W, 3]``, uint8 or float in [0, 1])."""
    return warp_errors(frames, occlusion_check).warp_error
