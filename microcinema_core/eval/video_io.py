"""Reading clips for evaluation: video files (OpenCV, else imageio) and folders of frames, as RGB uint8."""
from __future__ import annotations

from pathlib import Path

import numpy as np

VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".gif", ".m4v", ".mpg", ".mpeg")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def read_video(path: str | Path, max_frames: int | None = None, stride: int = 1) -> np.ndarray:
    """``[T, H, W, 3]`` RGB uint8 of a video file, or of a folder of frame images (sorted by name)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[::stride]
        from PIL import Image

        frames = [np.asarray(Image.open(p).convert("RGB")) for p in files[:max_frames]]
    else:
        frames = _read_file(path, None if max_frames is None else max_frames * stride)[::stride]
        frames = frames[:max_frames] if max_frames else frames
    if not len(frames):
        raise ValueError(f"no frames could be read from {path}")
    return np.stack(frames)


def _read_file(path: Path, limit: int | None) -> list:
    try:
        import cv2
    except ImportError:
        import imageio

        frames = []
        for frame in imageio.get_reader(str(path)):
            frames.append(np.asarray(frame)[..., :3])
            if limit and len(frames) >= limit:
                break
        return frames
    capture = cv2.VideoCapture(str(path))
    frames = []
    while limit is None or len(frames) < limit:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def list_clips(folder: str | Path) -> list:
    """The clips of a folder: video files, and sub-folders holding frame images (recursively, sorted)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder of real clips at {folder}")
    clips = []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES:
            clips.append(p)
        elif p.is_dir() and any(c.suffix.lower() in IMAGE_SUFFIXES for c in p.iterdir() if c.is_file()):
            clips.append(p)
    return clips
