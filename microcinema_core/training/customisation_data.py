"""A real image-customisation set on disk: (reference, target, caption) triples.

Two layouts (``docs/customisation.md``); ``<root>/pairs.jsonl`` decides: when it exists it is the list, else every
sub-folder of ``<root>`` is one pair.

* One folder per pair (the simple one)::

      <root>/<pair id>/reference.png    the subject (.png, .jpg, .jpeg or .webp; RGBA is put on white)
      <root>/<pair id>/target.png       the same subject in another picture
      <root>/<pair id>/caption.txt      what the target shows, "<subject> <where>", UTF-8

* A manifest, for large sets (no folder per pair): ``<root>/pairs.jsonl``, one JSON object a line,
  ``{"reference": "refs/dog1.jpg", "target": "targets/dog1_beach.jpg", "caption": "a dog on a beach"}``, paths
  relative to ``<root>`` (absolute ones kept).

``CustomisationFolder(root, size)`` checks the layout when it is made (every file there, every caption non-empty)
and raises one :class:`CustomisationDataError` naming every bad pair and the fix; images are decoded on access
(``verify()`` decodes them all up front). Items are float ``[3, size, size]`` in [0, 1]: targets centre-cropped
like the training videos, references padded to a square with their border's mean colour, so the whole subject
stays in.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .clips import crop_resize

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
MANIFEST = "pairs.jsonl"
MAX_LISTED = 10     # bad pairs named in one error


class CustomisationDataError(ValueError):
    """The customisation set on disk is not in the documented layout, or one of its images cannot be read."""


@dataclass(frozen=True)
class PairEntry:
    reference: Path
    target: Path
    caption: str
    key: str            # the pair folder's name, or "pairs.jsonl:<line>"


@dataclass
class RealPair:
    reference: torch.Tensor   # [3, S, S] in [0, 1]
    target: torch.Tensor      # [3, S, S] in [0, 1]
    caption: str
    key: str


def _image_in(folder: Path, stem: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        for name in (stem + suffix, stem + suffix.upper()):
            if (folder / name).is_file():
                return folder / name
    return None


def read_pair_folders(root: Path) -> tuple[list, list]:
    """Pairs from the folder-per-pair layout: ``(entries, problems)``."""
    entries, problems = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        reference, target = _image_in(folder, "reference"), _image_in(folder, "target")
        caption_file = folder / "caption.txt"
        missing = [f"{stem}{IMAGE_SUFFIXES[0]} (or {', '.join(IMAGE_SUFFIXES[1:])})"
                   for stem, path in (("reference", reference), ("target", target)) if path is None]
        if not caption_file.is_file():
            missing.append("caption.txt")
        if missing:
            problems.append(f"{folder}: no {' and no '.join(missing)}")
            continue
        caption = caption_file.read_text(encoding="utf-8", errors="replace").strip()
        if not caption:
            problems.append(f"{caption_file}: empty caption (write what the target shows, e.g. 'a dog on a beach')")
            continue
        entries.append(PairEntry(reference, target, " ".join(caption.split()), folder.name))
    return entries, problems


def read_pairs_manifest(manifest: Path, root: Path) -> tuple[list, list]:
    """Pairs from ``pairs.jsonl``: ``(entries, problems)``."""
    entries, problems = [], []
    lines = manifest.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{manifest}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not JSON ({exc.msg})")
            continue
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in ("reference", "target", "caption")):
            problems.append(f"{where}: needs string fields reference, target and caption")
            continue
        paths = {k: Path(row[k]) if Path(row[k]).is_absolute() else root / row[k] for k in ("reference", "target")}
        missing = [f"{k} {p}" for k, p in paths.items() if not p.is_file()]
        if missing:
            problems.append(f"{where}: no such file: {', '.join(missing)}")
            continue
        if not row["caption"].strip():
            problems.append(f"{where}: empty caption")
            continue
        entries.append(PairEntry(paths["reference"], paths["target"], " ".join(row["caption"].split()),
                                 f"{MANIFEST}:{number}"))
    return entries, problems


def find_pairs(root: str | Path) -> list:
    """Every pair of the set at ``root`` (manifest or folders); one error naming every bad pair."""
    root = Path(root)
    if not root.is_dir():
        raise CustomisationDataError(f"{root}: no such folder; pass the folder that holds the pair folders "
                                     f"(or {MANIFEST}), see docs/customisation.md")
    manifest = root / MANIFEST
    entries, problems = read_pairs_manifest(manifest, root) if manifest.is_file() else read_pair_folders(root)
    if problems:
        listed = "\n  ".join(problems[:MAX_LISTED])
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise CustomisationDataError(
            f"{root}: {len(problems)} broken pair(s):\n  {listed}{more}\nfix: give each pair a reference image, a "
            "target image and a non-empty caption (docs/customisation.md), or remove the broken ones")
    if not entries:
        raise CustomisationDataError(f"{root}: no pairs found; expected <root>/<pair id>/reference.png, target.png, "
                                     f"caption.txt or a {MANIFEST} manifest (docs/customisation.md)")
    return entries


def load_image(path: Path) -> np.ndarray:
    """RGB uint8 ``[H, W, 3]`` (RGBA put on white); a :class:`CustomisationDataError` naming the file if unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                rgba = image.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image = Image.alpha_composite(white, rgba)
            return np.array(image.convert("RGB"))
    except Exception as exc:   # PIL raises several types for bad files
        raise CustomisationDataError(f"{path}: cannot read the image ({type(exc).__name__}: {exc}); fix: re-save it "
                                     "as PNG or JPEG, or remove its pair") from exc


def pad_resize(image: np.ndarray, size: int) -> torch.Tensor:
    """uint8 ``[H, W, 3]`` -> float ``[3, size, size]``: padded to a square with its border's mean colour, resized."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
    _, h, w = x.shape
    side = max(h, w)
    border = torch.cat([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], dim=1).mean(dim=1)
    square = border[:, None, None].expand(3, side, side).clone()
    top, left = (side - h) // 2, (side - w) // 2
    square[:, top:top + h, left:left + w] = x
    if side != size:
        square = F.interpolate(square[None], size=(size, size), mode="bilinear", antialias=side > size,
                               align_corners=False)[0]
    return square.clamp_(0.0, 1.0)


class CustomisationFolder:
    """``folder[i]`` -> :class:`RealPair`; ``size`` is the square side in pixels (the model's resolution)."""

    def __init__(self, root: str | Path, size: int = 320):
        self.root, self.size = Path(root), size
        self.entries = find_pairs(self.root)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> RealPair:
        entry = self.entries[index]
        reference = pad_resize(load_image(entry.reference), self.size)
        target = crop_resize(load_image(entry.target)[None], self.size)[0]
        return RealPair(reference, target, entry.caption, entry.key)

    def verify(self) -> int:
        """Decode every image; one error naming every unreadable one. Returns the number of pairs."""
        problems = []
        for entry in self.entries:
            for path in (entry.reference, entry.target):
                try:
                    load_image(path)
                except CustomisationDataError as exc:
                    problems.append(str(exc).split("; fix:")[0])
        if problems:
            listed = "\n  ".join(problems[:MAX_LISTED])
            raise CustomisationDataError(f"{self.root}: {len(problems)} unreadable image(s):\n  {listed}\n"
                                         "fix: re-save them as PNG or JPEG, or remove their pairs")
        return len(self.entries)
