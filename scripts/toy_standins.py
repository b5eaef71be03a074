"""The toy bundle's three files (``models/`` of the pack), and random-weight stand-ins in their exact format.

The pack's embedded default is the trained toy bundle (``python -m microcinema_core.experiments.bundle``):
``models/vae/microcinema_toy_vae.safetensors`` (TAESD layout: the stock VAELoader loads it) and
``models/microcinema/microcinema_toy_base.safetensors`` / ``microcinema_toy_tsr.safetensors`` (9 frames
base, 5-frame TSR clips, at the size the toy workflow uses). Where they are missing (a checkout before the bundle was trained), the
demo's ``--smoke`` and the host tests write stand-ins: the same architectures, configs, key names and fp16
storage, with untrained weights. The pipeline is real with them; the pixels are not.
"""
from __future__ import annotations

from pathlib import Path

from microcinema_core.experiments.toy_files import FILES, MODEL_FOLDERS, TOY_SIZE

REPO = Path(__file__).resolve().parent.parent
PACK_MODELS = REPO / "models"
# subfolder of a ComfyUI models folder -> file name (the one list: microcinema_core/experiments/toy_files.py)
TOY_FILES = {key: (MODEL_FOLDERS[key], FILES[key]) for key in FILES}


def toy_paths(models_dir: Path = PACK_MODELS) -> dict:
    """``{"vae"|"base"|"tsr": path}`` of the toy files under a models folder."""
    return {key: Path(models_dir) / folder / name for key, (folder, name) in TOY_FILES.items()}


def shipped_toy_files_present(models_dir: Path = PACK_MODELS) -> bool:
    """True when the pack carries all three trained toy files."""
    return all(path.is_file() for path in toy_paths(models_dir).values())


def toy_config(kind: str):
    """The toy bundle's MicroCinema config for ``kind`` ("base" or "tsr")."""
    from microcinema_core.config import MicroCinemaConfig
    from microcinema_core.experiments.bundle import TOY_MODEL

    return MicroCinemaConfig.tiny(kind, resolution=TOY_SIZE, **TOY_MODEL)


def write_toy_standins(models_dir: Path, seed: int = 0, names: dict | None = None) -> dict:
    """Random-weight toy VAE, base and TSR files under ``models_dir`` (``names`` overrides file names);
    returns ``{"vae"|"base"|"tsr": path}``. Deterministic in ``seed``; an existing file is rewritten."""
    import torch

    from microcinema_core.models.microcinema import MicroCinemaModel
    from microcinema_core.vae.taesd_layout import ToyVAE
    from microcinema_core.weights.checkpoint import save_checkpoint
    from microcinema_core.weights.files import atomic_save_safetensors

    paths = toy_paths(models_dir)
    for key, name in (names or {}).items():
        paths[key] = paths[key].with_name(name)
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        atomic_save_safetensors(ToyVAE().comfy_state_dict(), paths["vae"], {"microcinema.standin": "random"})
        for kind in ("base", "tsr"):
            save_checkpoint(MicroCinemaModel(toy_config(kind)).eval(), paths[kind], dtype="fp16",
                            extra_metadata={"microcinema.standin": "random weights (scripts/toy_standins.py)"})
    return paths
