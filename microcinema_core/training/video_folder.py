"""A folder of unannotated videos (no captions) for the image-to-video objective of customisation training.

Every file under the folder (sub-folders included) whose suffix is in ``captions.VIDEO_SUFFIXES`` is one video;
its caption is empty (it is never used), its key the path relative to the folder. Clips are cut exactly as for the
captioned training videos (``clips.iter_clips`` with a ``DataConfig``: frame rate, length, square crop, size), so
the entries also feed ``caching.build_cache``. As there, an unreadable or too short video is skipped with a warning
that names it and counted in the ``DataSummary``; a folder with no usable video at all is an error.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .captions import VIDEO_SUFFIXES, VideoEntry
from .clips import Clip, iter_clips
from .summary import DataSummary
from .train_config import DataConfig


class VideoFolderError(ValueError):
    """The folder is missing, holds no video file, or no video in it could be used."""


def unannotated_video_entries(folder: str | Path) -> list:
    """One ``VideoEntry`` (caption ``""``) per video file under ``folder``, sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VideoFolderError(f"{folder}: no such folder; pass the folder that holds your videos")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        found = sorted({p.suffix.lower() or "(none)" for p in folder.rglob("*") if p.is_file()})
        raise VideoFolderError(f"{folder}: no video files (suffixes found: {found or 'none'}); the videos must end in "
                               f"one of {', '.join(VIDEO_SUFFIXES)}")
    return [VideoEntry(path, "", path.relative_to(folder).as_posix()) for path in files]


def iter_unannotated_clips(folder: str | Path, cfg: DataConfig, summary: DataSummary | None = None) -> Iterator[Clip]:
    """The clips of every video under ``folder`` (bad videos skipped, warned about and counted in ``summary``)."""
    yield from iter_clips(unannotated_video_entries(folder), cfg, summary or DataSummary())


def unannotated_clips(folder: str | Path, cfg: DataConfig) -> list:
    """All clips of the folder as a list; a :class:`VideoFolderError` with the summary when none could be cut."""
    summary = DataSummary()
    clips = list(iter_unannotated_clips(folder, cfg, summary))
    if not clips:
        raise VideoFolderError(f"{folder}: no clip could be cut from any video\n{summary.format()}\n"
                               f"{summary.skipped_examples}\nfix: check the files play, and that they are longer "
                               f"than {cfg.num_frames} frames at {cfg.fps} fps")
    return clips
