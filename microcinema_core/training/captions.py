"""Caption tables: which video file goes with which text.

Two CSV forms are read (header row required):

* WebVid as it ships: ``videoid,contentUrl,duration,page_dir,name`` -> file
  ``<root>/<page_dir>/<videoid>.mp4`` (or ``<root>/<videoid>.mp4`` when that is where it is), caption
  ``name``.
* Simple: ``path,caption`` -> file ``<root>/<path>`` (absolute paths are kept as they are).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".gif")


@dataclass(frozen=True)
class VideoEntry:
    path: Path
    caption: str
    key: str  # stable id (WebVid videoid, or the relative path)


def _webvid_path(root: Path, row: dict) -> Path:
    vid = row["videoid"].strip()
    page_dir = (row.get("page_dir") or "").strip()
    candidates = []
    if page_dir:
        candidates.append(root / page_dir / f"{vid}.mp4")
    candidates.append(root / f"{vid}.mp4")
    for candidate in candidates:
        if candidate.exists():
            return candidate
    return candidates[0]  # missing: the reader skips and counts it


def read_caption_csv(csv_path: str | Path, root: str | Path | None = None) -> list[VideoEntry]:
    """Read a WebVid or ``path,caption`` CSV; ``root`` defaults to the CSV's folder."""
    csv_path = Path(csv_path)
    root = Path(root) if root is not None else csv_path.parent
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = {f.strip() for f in (reader.fieldnames or [])}
        if {"videoid", "name"} <= fields:
            form = "webvid"
        elif {"path", "caption"} <= fields:
            form = "simple"
        else:
            raise ValueError(
                f"{csv_path}: unknown caption CSV columns {sorted(fields)}; expected WebVid's "
                "videoid,contentUrl,duration,page_dir,name or path,caption"
            )
        entries = []
        for row in reader:
            row = {k.strip(): (v or "") for k, v in row.items() if k is not None}
            if form == "webvid":
                entries.append(VideoEntry(_webvid_path(root, row), row["name"].strip(), row["videoid"].strip()))
            else:
                rel = row["path"].strip()
                path = Path(rel) if Path(rel).is_absolute() else root / rel
                entries.append(VideoEntry(path, row["caption"].strip(), rel))
    return entries


def find_caption_table(folder: str | Path) -> Path:
    """The single ``*.csv`` in a data folder (error if none or several)."""
    tables = sorted(Path(folder).glob("*.csv"))
    if len(tables) != 1:
        raise ValueError(f"{folder}: expected exactly one caption CSV, found {[t.name for t in tables]}; "
                         "pass --captions explicitly")
    return tables[0]
