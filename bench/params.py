"""Parameter counts of the full-size configs, next to the paper's (appendix tab. 2: 2.0 B trainable).

    .venv/bin/python bench/params.py

Built on the ``meta`` device: no memory, no weights needed.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from microcinema_core.config import INJECTION_MODES, MicroCinemaConfig  # noqa: E402
from microcinema_core.models.microcinema import MicroCinemaModel  # noqa: E402

PAPER = {"trainable (3D U-Net + AppearNet)": 2000.0, "CLIP text encoder (frozen)": 354.0, "VAE (frozen)": 84.0}
SD21_UNET = 865.9  # SD2.1-base U-Net, millions


def breakdown(model) -> dict:
    parts = {
        "main spatial (SD2.1 U-Net)": lambda n: n.startswith("unet.") and "temporal_" not in n and "spade" not in n,
        "AppearNet spatial (copy of encoder+middle)": lambda n: n.startswith("appearnet.") and "temporal_" not in n,
        "temporal convolutions": lambda n: "temporal_conv" in n,
        "temporal attention": lambda n: "temporal_attention" in n,
        "SPADE (gamma, beta convs)": lambda n: "spade" in n,
        "zero-conv injection": lambda n: n.startswith("injection."),
    }
    named = list(model.named_parameters())
    return {label: sum(p.numel() for n, p in named if rule(n)) / 1e6 for label, rule in parts.items()}


def main():
    for kind in ("base", "tsr"):
        for injection in INJECTION_MODES:
            config = MicroCinemaConfig.base(injection=injection) if kind == "base" else \
                MicroCinemaConfig.tsr(injection=injection)
            with torch.device("meta"):
                model = MicroCinemaModel(config)
            total = sum(p.numel() for p in model.parameters()) / 1e6
            print(f"{kind:4s} {injection:17s} total trainable {total:8.1f} M")
            if kind == "base" and injection == "add_encdec_spade":
                for label, count in breakdown(model).items():
                    print(f"    {label:45s} {count:8.1f} M")
    print(f"paper (tab. 2): {', '.join(f'{k} {v:.0f} M' for k, v in PAPER.items())}; SD2.1 U-Net {SD21_UNET} M")


if __name__ == "__main__":
    main()
