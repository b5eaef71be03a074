"""Video decoding with imageio's ffmpeg plugin (imageio-ffmpeg ships its own ffmpeg binary).

Every failure surfaces as :class:`VideoReadError`, which the data pipeline turns into a skipped video
with a warning and a count (never a crash).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class VideoReadError(RuntimeError):
    """The file is missing, not a video ffmpeg can decode, or shorter than it claims."""


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    num_frames: int  # estimated from duration * fps (ffmpeg's header); decoding may end sooner
    width: int
    height: int

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps


def _open(path: Path):
    import imageio.v2 as imageio

    if not path.is_file():
        raise VideoReadError(f"{path}: no such file")
    try:
        return imageio.get_reader(str(path), format="ffmpeg")
    except Exception as exc:  # imageio raises several types for bad files
        raise VideoReadError(f"{path}: cannot open ({type(exc).__name__}: {exc})") from exc


def probe(path: str | Path) -> VideoInfo:
    reader = _open(Path(path))
    try:
        meta = reader.get_meta_data()
    except Exception as exc:
        raise VideoReadError(f"{path}: cannot read metadata ({exc})") from exc
    finally:
        reader.close()
    fps = float(meta.get("fps") or 0.0)
    duration = float(meta.get("duration") or 0.0)
    size = meta.get("size") or (0, 0)
    if not (fps > 0 and math.isfinite(fps)) or not (duration > 0 and math.isfinite(duration)):
        raise VideoReadError(f"{path}: no usable fps/duration in the header (fps={fps}, duration={duration})")
    return VideoInfo(fps=fps, num_frames=int(math.floor(duration * fps + 1e-6)), width=int(size[0]),
                     height=int(size[1]))


def read_frames(path: str | Path, indices: list[int]) -> dict[int, np.ndarray]:
    """Decode the frames at the given source indices (sequential decode up to the largest one).

    Returns ``{index: uint8 [H, W, 3]}``; raises :class:`VideoReadError` if the stream ends first.
    """
    wanted = set(int(i) for i in indices)
    if not wanted:
        return {}
    last = max(wanted)
    out: dict[int, np.ndarray] = {}
    reader = _open(Path(path))
    try:
        for i, frame in enumerate(reader):
            if i in wanted:
                frame = np.asarray(frame)
                if frame.ndim == 2:
                    frame = np.repeat(frame[..., None], 3, axis=-1)
                out[i] = np.ascontiguousarray(frame[..., :3])
            if i >= last:
                break
    except Exception as exc:
        raise VideoReadError(f"{path}: decoding failed at frame {len(out)} ({type(exc).__name__}: {exc})") from exc
    finally:
        reader.close()
    if len(out) != len(wanted):
        raise VideoReadError(f"{path}: stream ended before frame {last} (decoded {len(out)} of {len(wanted)})")
    return out
