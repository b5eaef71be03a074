"""Decode a saved video back (imageio / Pillow) to check what was really written."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class VideoProbe:
    frames: np.ndarray  # [F,H,W,3] uint8, as decoded
    fps: float
    codec: str | None = None

    @property
    def count(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])


def probe(path) -> VideoProbe:
    """Decode every frame of an mp4 / webp / gif and read its frame rate."""
    import imageio.v2 as iio2
    import imageio.v3 as iio
    from PIL import Image

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".mp4":
        reader = iio2.get_reader(str(path), format="FFMPEG")
        try:
            meta = reader.get_meta_data()
            frames = np.stack([np.asarray(f) for f in reader])
        finally:
            reader.close()
        return VideoProbe(frames=frames, fps=float(meta["fps"]), codec=meta.get("codec"))
    frames = iio.imread(str(path), index=..., plugin="pillow")[..., :3]
    if frames.ndim == 3:  # a single frame
        frames = frames[None]
    with Image.open(path) as im:
        durations = []
        for i in range(getattr(im, "n_frames", 1)):
            im.seek(i)
            im.load()
            durations.append(im.info.get("duration") or 0)
    fps = 1000.0 / float(np.mean(durations)) if np.mean(durations) > 0 else float("nan")
    return VideoProbe(frames=np.asarray(frames, dtype=np.uint8), fps=fps, codec=suffix[1:])
