"""Encode frames to mp4 (H.264), animated webp or gif, atomically. No ComfyUI import here.

``write_video`` writes to a hidden temporary name in the destination folder and moves it into place with
``os.replace`` only after the encoder has finished, so a crash, an error or a Cancel never leaves a
half-written file under the real name; the temporary file is deleted on any error.
"""
from __future__ import annotations

import os
import uuid
from typing import Callable, Iterable, Iterator

import numpy as np

FORMATS = ("mp4", "webp", "gif")
PARTIAL_MARK = ".partial-"  # part of every temporary file name (tests look for leftovers)
DEFAULT_CRF = 19


def validate_frames(shape, fps: float, video_format: str) -> None:
    """Raise ``ValueError`` naming the input and the fix when the frames or settings cannot be saved.

    ``shape`` is the IMAGE tensor's shape, expected ``[frames, height, width, 3]``.
    """
    if video_format not in FORMATS:
        raise ValueError(f"format: '{video_format}' is not supported; choose one of {', '.join(FORMATS)}.")
    if not (fps > 0 and np.isfinite(fps)):
        raise ValueError(f"fps: {fps} is not a frame rate; set fps to a positive number (e.g. 8).")
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4:
        raise ValueError(
            f"images: expected a batch of frames shaped [frames, height, width, 3], got shape {list(shape)}; "
            "connect an IMAGE output (frames in the batch dimension), not a latent or a mask.")
    frames, height, width, channels = shape
    if frames < 1:
        raise ValueError("images: the batch has 0 frames; connect a node that outputs at least one frame.")
    if height < 1 or width < 1:
        raise ValueError(f"images: frames of {width}x{height} pixels cannot be saved; check the upstream size.")
    if channels != 3:
        hint = " (RGBA: drop the alpha channel before saving)" if channels == 4 else ""
        raise ValueError(
            f"images: expected 3 colour channels (RGB) in the last dimension, got {channels}{hint}; "
            "Save Video takes IMAGE tensors shaped [frames, height, width, 3].")


def frames_to_uint8(images) -> Iterator[np.ndarray]:
    """Yield ``[H,W,3] uint8`` frames from a float ``[F,H,W,3]`` tensor/array in 0..1, one at a time.

    Converting per frame keeps peak memory at one extra frame (IMAGE batches are float32 and large).
    NaN becomes 0; values are clipped to 0..1.
    """
    for frame in images:
        if hasattr(frame, "detach"):  # torch tensor
            frame = frame.detach().float().cpu().numpy()
        frame = np.nan_to_num(np.asarray(frame, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        yield (np.clip(frame, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _pad_to_even(frame: np.ndarray) -> np.ndarray:
    """H.264 with yuv420p needs even sizes: repeat the last row/column when a size is odd."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _write_mp4(frames: Iterable[np.ndarray], path: str, fps: float, crf: int, size) -> None:
    """H.264 in mp4 through the ffmpeg binary that the imageio-ffmpeg wheel carries."""
    import imageio_ffmpeg

    height, width = size
    even = (width + width % 2, height + height % 2)
    writer = imageio_ffmpeg.write_frames(
        path, even, fps=fps, codec="libx264", pix_fmt_in="rgb24", pix_fmt_out="yuv420p",
        quality=None, macro_block_size=1, ffmpeg_log_level="error",
        output_params=["-crf", str(int(crf)), "-movflags", "+faststart"])
    writer.send(None)  # start ffmpeg
    try:
        for frame in frames:
            writer.send(np.ascontiguousarray(_pad_to_even(frame)))
    finally:
        writer.close()  # waits for ffmpeg; raises if it failed


def _write_pillow(frames: Iterable[np.ndarray], path: str, fps: float, video_format: str) -> None:
    """Animated webp or gif through Pillow (loops forever, like ComfyUI's own animated outputs)."""
    from PIL import Image

    pictures = [Image.fromarray(frame) for frame in frames]  # [H,W,3] uint8 -> RGB
    duration_ms = 1000.0 / fps
    options = dict(save_all=True, append_images=pictures[1:], loop=0)
    if video_format == "webp":
        # Pillow rounds the per-frame duration to whole milliseconds.
        pictures[0].save(path, format="WEBP", duration=int(round(duration_ms)), quality=90, method=4,
                         **options)
    else:
        # GIF stores durations in 1/100 s: round to that grid ourselves (Pillow would truncate).
        centiseconds = max(1, int(round(duration_ms / 10.0)))
        pictures[0].save(path, format="GIF", duration=centiseconds * 10, optimize=False, **options)


def _observed(frames: Iterator[np.ndarray], on_frame: Callable[[int], None] | None) -> Iterator[np.ndarray]:
    """Call ``on_frame(index)`` before each frame (progress bars, Cancel checks that raise)."""
    for index, frame in enumerate(frames):
        if on_frame is not None:
            on_frame(index)
        yield frame


def write_video(images, path: str, fps: float, video_format: str, crf: int = DEFAULT_CRF,
                on_frame: Callable[[int], None] | None = None) -> str:
    """Encode ``images`` (``[F,H,W,3]`` floats in 0..1) to ``path`` atomically; returns ``path``.

    The destination folder must exist. An existing file at ``path`` is replaced only on success.
    ``on_frame(i)`` is called before frame ``i`` is encoded; an exception it raises (e.g. ComfyUI's
    interrupt) aborts the encode and removes the temporary file.
    """
    validate_frames(tuple(images.shape), fps, video_format)
    if not 0 <= int(crf) <= 51:
        raise ValueError(f"quality: CRF {crf} is outside 0..51; use 0 (lossless) to 51 (worst), 17-23 is typical.")
    folder, name = os.path.split(os.path.abspath(path))
    temp_path = os.path.join(folder, f".{name}{PARTIAL_MARK}{uuid.uuid4().hex[:8]}.{video_format}")
    try:
        frames = _observed(frames_to_uint8(images), on_frame)
        if video_format == "mp4":
            _write_mp4(frames, temp_path, fps, crf, tuple(images.shape[1:3]))
        else:
            _write_pillow(frames, temp_path, fps, video_format)
        os.replace(temp_path, path)
    except BaseException:
        try:
            os.remove(temp_path)
        except FileNotFoundError:
            pass
        raise
    return path
