"""Contact sheets: rows of video frames as one PNG, with an optional label above each row."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch


def to_uint8(frames) -> np.ndarray:
    """``[N, 3, H, W]`` float in [0, 1] (tensor or array) or ``[N, H, W, 3]`` uint8 -> ``[N, H, W, 3]`` uint8."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().float().cpu().numpy()
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        if frames.shape[1] == 3 and frames.shape[-1] != 3:
            frames = frames.transpose(0, 2, 3, 1)
        frames = (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)
    return frames


def contact_sheet(rows: Sequence, path: str | Path, labels: Optional[Sequence[str]] = None,
                  max_columns: Optional[int] = None, gap: int = 2) -> Path:
    """Write one PNG: each entry of ``rows`` is a video (see ``to_uint8``), drawn left to right."""
    from PIL import Image, ImageDraw

    videos = [to_uint8(r) for r in rows]
    if max_columns:
        videos = [v[np.linspace(0, len(v) - 1, min(max_columns, len(v))).round().astype(int)] for v in videos]
    h, w = videos[0].shape[1:3]
    columns = max(len(v) for v in videos)
    label_h = 14 if labels else 0
    sheet = Image.new("RGB", (columns * (w + gap) + gap, len(videos) * (h + gap + label_h) + gap), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, video in enumerate(videos):
        top = gap + r * (h + gap + label_h)
        if labels:
            draw.text((gap, top), str(labels[r])[:160], fill=(0, 0, 0))
        for c, frame in enumerate(video):
            sheet.paste(Image.fromarray(frame), (gap + c * (w + gap), top + label_h))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
