"""Cutting training clips out of videos (paper sec. 4, appendix tab. 3).

A clip is ``N`` frames sampled at a target frame rate (2 fps base; 8 or 30 fps TSR): frame ``k`` is the
source frame nearest to ``t0 + k / fps``. Frames are centre-cropped to a square and resized (bilinear
with antialiasing) to ``resolution``. The condition frames are the centre frame ``z^c`` (base, index
``N // 2``) or the first and last frames ``z^1, z^N`` (TSR).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .captions import VideoEntry
from .summary import DataSummary
from .train_config import DataConfig
from .video_io import VideoInfo, VideoReadError, probe, read_frames


@dataclass
class Clip:
    frames: torch.Tensor  # [N, 3, S, S] float in [0, 1]
    caption: str
    key: str              # "<video key>@<start seconds>@<fps>"
    fps: float
    start: float          # seconds


def condition_indices(kind: str, num_frames: int) -> list[int]:
    """Centre frame for the base model, first and last for TSR (tab. 3 'Condition frame')."""
    if kind == "base":
        return [num_frames // 2]
    if kind == "tsr":
        return [0, num_frames - 1]
    raise ValueError(f"kind must be 'base' or 'tsr', got {kind!r}")


def clip_start_times(info: VideoInfo, num_frames: int, fps: float, clips: int) -> list[float]:
    """Start times of ``clips`` clips spread evenly over the video (one clip: the middle)."""
    span = (num_frames - 1) / fps
    room = info.duration - 1.0 / info.fps - span  # last usable start
    if room < 0:
        return []
    if clips <= 1:
        return [room / 2.0]
    return [float(x) for x in np.linspace(0.0, room, clips)]


def source_indices(info: VideoInfo, start: float, num_frames: int, fps: float) -> list[int]:
    last = info.num_frames - 1
    return [min(last, int(round((start + k / fps) * info.fps))) for k in range(num_frames)]


def crop_resize(frames: np.ndarray, size: int) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` -> float ``[N, 3, size, size]`` in [0, 1]: centre square crop + resize."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)
    h, w = x.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    x = x[:, :, top:top + side, left:left + side]
    if side != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=side > size, align_corners=False)
    return x.clamp_(0.0, 1.0)


def clips_from_video(entry: VideoEntry, cfg: DataConfig, summary: DataSummary) -> list[Clip]:
    """All clips of one video at every target fps; on any read problem: skip, warn, count, return []."""
    if not entry.path.is_file():
        summary.skip("missing", f"{entry.path}: no such file")
        return []
    try:
        info = probe(entry.path)
    except VideoReadError as exc:
        summary.skip("unreadable", str(exc))
        return []
    plans, problems = [], []
    for fps in cfg.fps:
        if info.fps < cfg.min_source_fps_ratio * fps:
            problems.append(("low_fps", f"{entry.path}: {info.fps:.2f} fps source for a {fps:g} fps clip"))
            continue
        starts = clip_start_times(info, cfg.num_frames, fps, cfg.clips_per_video)
        if not starts:
            problems.append(("too_short", f"{entry.path}: {info.duration:.2f} s is shorter than "
                                          f"{cfg.num_frames} frames at {fps:g} fps"))
            continue
        for start in starts:
            plans.append((fps, start, source_indices(info, start, cfg.num_frames, fps)))
    if not plans:  # the whole video is unusable: one skip, first reason
        summary.skip(problems[0][0], "; ".join(message for _, message in problems))
        return []
    for reason, _ in problems:  # usable at some rates only: count the missing rates as clip drops
        summary.drop(reason)
    try:
        decoded = read_frames(entry.path, sorted({i for _, _, idx in plans for i in idx}))
    except VideoReadError as exc:
        summary.skip("unreadable", str(exc))
        return []
    clips = []
    for fps, start, idx in plans:
        frames = np.stack([decoded[i] for i in idx])
        clips.append(Clip(crop_resize(frames, cfg.resolution), entry.caption,
                          f"{entry.key}@{start:.3f}@{fps:g}", fps, start))
    return clips


def iter_clips(entries: list[VideoEntry], cfg: DataConfig, summary: DataSummary) -> Iterator[Clip]:
    for entry in entries:
        summary.videos_seen += 1
        try:
            clips = clips_from_video(entry, cfg, summary)
        except Exception as exc:  # anything else odd about one file (mixed frame sizes...): skip it too
            summary.skip("error", f"{entry.path}: {type(exc).__name__}: {exc}")
            clips = []
        if clips:
            summary.videos_used += 1
        yield from clips
