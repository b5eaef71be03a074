"""A contact sheet of toy customisation pairs (reference | target, one pair a cell), for the docs.

``python -m microcinema_core.experiments.customisation_sheet --sources runs/toy/sources.npz --out sheet.png``
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from ..toyworld.customisation import CustomisationSet
from ..toyworld.sources import load_or_gather


def sheet(pairs: list, columns: int) -> np.ndarray:
    """uint8 ``[H, W, 3]``: each pair as reference | target, ``columns`` pairs a row, a 2-px white gap."""
    cells = [torch.cat([p.reference, torch.ones(3, p.reference.shape[1], 2), p.target], dim=2) for p in pairs]
    _, h, w = cells[0].shape
    rows = -(-len(cells) // columns)
    out = torch.ones(3, rows * (h + 4), columns * (w + 4))
    for i, cell in enumerate(cells):
        r, c = divmod(i, columns)
        out[:, r * (h + 4):r * (h + 4) + h, c * (w + 4):c * (w + 4) + w] = cell
    return (out.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", required=True, help="the toy world's sources .npz (gathered when missing)")
    parser.add_argument("--out", required=True, help="the PNG to write")
    parser.add_argument("--split", default="train", choices=("train", "heldout"))
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from PIL import Image

    data = CustomisationSet(load_or_gather(args.sources), args.split, args.seed, args.size)
    pairs = [data.pair(i) for i in range(args.pairs)]
    Image.fromarray(sheet(pairs, args.columns)).save(args.out)
    for i, pair in enumerate(pairs):
        print(f"{i}: {pair.caption}  ({pair.subject} -> {pair.scene})")


if __name__ == "__main__":
    main()
