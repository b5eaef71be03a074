"""Encode frames to mp4 (H.264), animated webp or gif, atomically. No ComfyUI import here.

``write_video`` writes to a hidden temporary name in the destination folder and moves it into place with
``os.replace`` (``microcinema_core/atomic.py``) only after the encoder has finished successfully (ffmpeg's
exit status is checked, so a full disk is an error, not a truncated file), so a crash, an error or a Cancel
never leaves a half-written file under the real name; the temporary file is deleted on any error.
"""
from __future__ import annotations

import errno
import os
from typing import Callable, Iterable, Iterator

import numpy as np

from ..atomic import atomic_path

FORMATS = ("mp4", "webp", "gif")
DEFAULT_CRF = 19
DEFAULT_NAME = "video"          # the file name when filename_prefix is empty or names a folder ("clips/")
# the longest name part of filename_prefix, in bytes: the file "<name>_00001_.webp" and its temporary twin
# ".<file>.partial-xxxxxxxx.webp" must stay under the 255 bytes a file name may have on common file systems
MAX_NAME_BYTES = 200
GIF_MAX_FPS = 100.0             # gif stores frame times in 1/100 s
FPS_RANGE = (0.01, 240.0)       # the Save Video widget's limits


def prefix_problem(filename_prefix: str) -> str | None:
    """Why ``filename_prefix`` cannot name a file in the output folder (naming the fix), or None when it can."""
    if not isinstance(filename_prefix, str):
        return f"filename_prefix must be text, got {type(filename_prefix).__name__}"
    if "\x00" in filename_prefix:
        return ("filename_prefix contains a NUL character (\\x00), which no file name may hold: remove it "
                "(e.g. 'MicroCinema/video')")
    parts = filename_prefix.replace("\\", "/").split("/")
    if filename_prefix.startswith(("/", "\\")) or os.path.isabs(filename_prefix) or ".." in parts:
        return (f"filename_prefix '{filename_prefix[:80]}' points outside ComfyUI's output folder (an absolute path "
                "or '..'): use a name relative to it, e.g. 'MicroCinema/video'; start ComfyUI with "
                "--output-directory to save elsewhere")
    for part in parts:
        size = len(part.encode("utf-8", "surrogatepass"))
        if size > MAX_NAME_BYTES:
            return (f"filename_prefix has a part of {size} bytes ('{part[:24]}...'); a file or folder name can hold "
                    f"at most {MAX_NAME_BYTES} bytes here (the counter and extension are added to it): shorten "
                    "filename_prefix")
    return None


def settings_problem(fps, video_format) -> str | None:
    """Why ``fps`` / ``video_format`` cannot be saved (naming the fix), or None (either may be None: linked).

    A host skips its own list / range checks for inputs its node validates itself, so all are checked here."""
    if video_format is not None and video_format not in FORMATS:
        return f"format: '{video_format}' is not supported; choose one of {', '.join(FORMATS)}"
    if fps is not None and not (isinstance(fps, (int, float)) and FPS_RANGE[0] <= fps <= FPS_RANGE[1]):
        return (f"fps: {fps} is not a frame rate this node saves; set fps between {FPS_RANGE[0]:g} and "
                f"{FPS_RANGE[1]:g} (e.g. 8)")
    if video_format == "gif" and fps is not None and fps > GIF_MAX_FPS:
        return (f"fps {fps:g} cannot be stored in a gif: gif keeps frame times in 1/100 s, so at most "
                f"{GIF_MAX_FPS:g} fps; lower fps to {GIF_MAX_FPS:g} or less, or save as mp4 or webp")
    return None


def usable_prefix(filename_prefix: str) -> str:
    """``filename_prefix`` with a file name: empty -> ``video``, a folder ("clips/") -> ``clips/video``."""
    prefix = filename_prefix.strip()
    if not prefix:
        return DEFAULT_NAME
    if prefix.endswith(("/", "\\")):
        return prefix + DEFAULT_NAME
    return prefix


def validate_frames(shape, fps: float, video_format: str) -> None:
    """Raise ``ValueError`` naming the input and the fix when the frames or settings cannot be saved.

    ``shape`` is the IMAGE tensor's shape, expected ``[frames, height, width, 3]``.
    """
    if video_format not in FORMATS:
        raise ValueError(f"format: '{video_format}' is not supported; choose one of {', '.join(FORMATS)}.")
    if not (fps > 0 and np.isfinite(fps)):
        raise ValueError(f"fps: {fps} is not a frame rate; set fps to a positive number (e.g. 8).")
    problem = settings_problem(fps, video_format)
    if problem:
        raise ValueError(problem + ".")
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


def check_finite_frames(images, source: str | None = None) -> None:
    """Raise ``ValueError`` when any frame has NaN/inf values: they would be written as black, silently.

    ``source`` names where the frames come from (e.g. "node 10 (VAEDecode)") for the message.
    Checked one frame at a time (no full-size temporary).
    """
    bad = []  # (frame index, NaN count, inf count)
    for index, frame in enumerate(images):
        if hasattr(frame, "detach"):  # torch tensor
            frame = frame.detach().cpu().numpy()
        frame = np.asarray(frame)
        if frame.dtype.kind != "f":
            continue
        finite = np.isfinite(frame)
        if not finite.all():
            nan = int(np.isnan(frame).sum())
            bad.append((index, nan, int(frame.size - finite.sum()) - nan))
    if not bad:
        return
    index, nan, inf = bad[0]
    size = int(np.prod(images.shape[1:]))
    what = " and ".join(f"{label} in {'every one' if n == size else n}" for n, label in ((nan, "NaN"), (inf, "inf")) if n)
    origin = f"; they come from {source}" if source else ""
    raise ValueError(
        f"images: {len(bad)} of {len(images)} frames have NaN/inf values (first: frame {index}, {what} of its "
        f"{size} values){origin}. Nothing was saved: they would be written as black frames. Possible causes: the "
        "latent decoded by VAE Decode was already NaN (the sampling diverged: load the model as bf16 or fp32, "
        "not fp16), or the VAE overflowed in fp16 (start ComfyUI with --fp32-vae or --bf16-vae).")


def frames_to_uint8(images) -> Iterator[np.ndarray]:
    """Yield ``[H,W,3] uint8`` frames from a float ``[F,H,W,3]`` tensor/array in 0..1, one at a time.

    Converting per frame keeps peak memory at one extra frame (IMAGE batches are float32 and large).
    Values are clipped to 0..1 (``write_video`` refuses NaN/inf frames first; here NaN would become 0).
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
    """H.264 in mp4 through the ffmpeg binary that the imageio-ffmpeg wheel carries.

    ffmpeg runs as our own subprocess so its exit status is checked: a disk that fills up mid-file (ffmpeg
    exits non-zero, "No space left on device") raises ``OSError`` with ffmpeg's own words instead of
    leaving a truncated, unplayable file that looks like a success.
    """
    import subprocess
    import tempfile

    import imageio_ffmpeg

    height, width = size
    rate = f"{fps:.6f}".rstrip("0").rstrip(".")
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error",
           "-f", "rawvideo", "-vcodec", "rawvideo", "-s", f"{width + width % 2}x{height + height % 2}",
           "-pix_fmt", "rgb24", "-r", rate, "-i", "-", "-an", "-vcodec", "libx264", "-pix_fmt", "yuv420p",
           "-crf", str(int(crf)), "-movflags", "+faststart", path]
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: ffmpeg can never block on its stderr
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors)
        try:
            try:
                for frame in frames:
                    proc.stdin.write(np.ascontiguousarray(_pad_to_even(frame)).tobytes())
            except (BrokenPipeError, ConnectionResetError):
                pass  # ffmpeg stopped reading (it failed): its exit status and message are reported below
            try:
                proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass
            code = proc.wait()
        except BaseException:  # an error or Cancel while sending frames: stop ffmpeg, keep no file
            proc.kill()
            proc.wait()
            raise
        if code != 0:
            errors.seek(0)
            said = errors.read().decode(errors="replace").strip().splitlines()
            reason = next((line for line in reversed(said) if "No space left" in line or "ermission" in line
                           or "Read-only" in line), said[-1] if said else "no message")
            raise OSError(f"ffmpeg could not write the mp4 (exit code {code}): {reason.strip()}")


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
                on_frame: Callable[[int], None] | None = None, source: str | None = None) -> str:
    """Encode ``images`` (``[F,H,W,3]`` floats in 0..1) to ``path`` atomically; returns ``path``.

    The destination folder must exist. An existing file at ``path`` is replaced only on success.
    ``on_frame(i)`` is called before frame ``i`` is encoded; an exception it raises (e.g. ComfyUI's
    interrupt) aborts the encode and removes the temporary file. Frames with NaN/inf values are refused
    before anything is written (``source``, e.g. the upstream node, is named in the message).
    """
    validate_frames(tuple(images.shape), fps, video_format)
    check_finite_frames(images, source)
    if not 0 <= int(crf) <= 51:
        raise ValueError(f"quality: CRF {crf} is outside 0..51; use 0 (lossless) to 51 (worst), 17-23 is typical.")
    folder, name = os.path.split(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"the output folder {folder} does not exist; nothing was saved.")
    if not os.access(folder, os.W_OK):
        raise PermissionError(
            f"the output folder {folder} is not writable (a read-only disk or no permission); nothing was saved. "
            "Start ComfyUI with --output-directory on a writable disk, or change filename_prefix's subfolder.")
    try:
        # the temporary name keeps the format's extension: ffmpeg and Pillow read the format from it
        with atomic_path(os.path.join(folder, name), suffix=f".{video_format}") as temp_path:
            frames = _observed(frames_to_uint8(images), on_frame)
            if video_format == "mp4":
                _write_mp4(frames, str(temp_path), fps, crf, tuple(images.shape[1:3]))
            else:
                _write_pillow(frames, str(temp_path), fps, video_format)
    except OSError as exc:   # the temporary file is already removed (atomic_path)
        if exc.errno == errno.ENAMETOOLONG or "name too long" in str(exc).lower():
            raise OSError(f"could not write {name} in {folder}: the file name is longer than this file system "
                          "takes. Nothing was saved: shorten filename_prefix.") from exc
        raise OSError(f"could not write {name} in {folder}: {exc}. Nothing was saved (no partial file is left): "
                      "free disk space, or start ComfyUI with --output-directory on another disk.") from exc
    return path
