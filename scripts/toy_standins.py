"""The toy bundle's files (``models/`` of the pack), and random-weight stand-ins in their exact format.

The pack's embedded default is the trained toy bundle (``python -m microcinema_core.experiments.bundle``):
``models/vae/microcinema_toy_vae.safetensors`` (TAESD layout: the stock VAELoader loads it) and
``models/microcinema/microcinema_toy_base.safetensors`` / ``microcinema_toy_tsr.safetensors`` (9 frames
base, 5-frame TSR clips, at the size the toy workflow uses): the image-to-video files (``IMAGE_TO_VIDEO``). The
subject-driven model ``microcinema_toy_custom.safetensors`` (issue 36, ``"custom"``: the toy base's config with
``appearance_input = "subject"``) is a fourth file that ships later: ``shipped_toy_files_present`` asks only for the
image-to-video files, ``shipped_custom_file_present`` for the custom one. Where they are missing (a checkout before
the bundle was trained), the demo's ``--smoke`` and the host tests write stand-ins: the same architectures, configs,
key names and fp16 storage, with untrained weights. The pipeline is real with them; the pixels are not.
"""
from __future__ import annotations

from pathlib import Path

from microcinema_core.experiments.toy_files import FILES, MODEL_FOLDERS, TOY_SIZE

REPO = Path(__file__).resolve().parent.parent
PACK_MODELS = REPO / "models"
# subfolder of a ComfyUI models folder -> file name (the one list: microcinema_core/experiments/toy_files.py)
TOY_FILES = {key: (MODEL_FOLDERS[key], FILES[key]) for key in FILES}
IMAGE_TO_VIDEO = ("vae", "base", "tsr")   # the files the image-to-video default (demo, toy workflow) runs on
CUSTOM = "custom"                         # the subject-driven model (the "toy subject to video" workflow)
_SEED_OFFSETS = {"vae": 0, "base": 1, "tsr": 2, "custom": 3}


def toy_paths(models_dir: Path = PACK_MODELS, kinds=None) -> dict:
    """``{kind: path}`` of the toy files under a models folder: every file of ``FILES`` ("vae", "base", "tsr",
    "custom"), or only ``kinds``."""
    return {key: Path(models_dir) / folder / name for key, (folder, name) in TOY_FILES.items()
            if kinds is None or key in kinds}


def shipped_toy_files_present(models_dir: Path = PACK_MODELS) -> bool:
    """True when the pack carries the three trained image-to-video toy files (VAE, base, TSR); the subject-driven
    model is not asked for (``shipped_custom_file_present``)."""
    return all(path.is_file() for path in toy_paths(models_dir, IMAGE_TO_VIDEO).values())


def shipped_custom_file_present(models_dir: Path = PACK_MODELS) -> bool:
    """True when the pack carries the trained subject-driven toy model (``microcinema_toy_custom.safetensors``)."""
    return toy_paths(models_dir, (CUSTOM,))[CUSTOM].is_file()


def toy_config(kind: str):
    """The toy bundle's MicroCinema config for ``kind``: "base", "tsr", or "custom" (the base's config with
    ``appearance_input = "subject"``, docs/customisation.md)."""
    from microcinema_core.config import MicroCinemaConfig
    from microcinema_core.experiments.bundle import TOY_MODEL

    if kind == CUSTOM:
        return MicroCinemaConfig.tiny("base", resolution=TOY_SIZE, appearance_input="subject", **TOY_MODEL)
    return MicroCinemaConfig.tiny(kind, resolution=TOY_SIZE, **TOY_MODEL)


def write_toy_standins(models_dir: Path, seed: int = 0, names: dict | None = None, kinds=None) -> dict:
    """Random-weight toy VAE, base, TSR and custom files under ``models_dir`` (``kinds``: only those; ``names``
    overrides file names); returns ``{kind: path}`` of the files written. Deterministic in ``seed``, each file
    independently of which others are written; an existing file is rewritten."""
    import torch

    from microcinema_core.models.microcinema import MicroCinemaModel
    from microcinema_core.vae.taesd_layout import ToyVAE
    from microcinema_core.weights.checkpoint import save_checkpoint
    from microcinema_core.weights.files import atomic_save_safetensors

    paths = toy_paths(models_dir, kinds)
    for key, name in (names or {}).items():
        if key in paths:
            paths[key] = paths[key].with_name(name)
    for kind, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + _SEED_OFFSETS[kind])
            if kind == "vae":
                atomic_save_safetensors(ToyVAE().comfy_state_dict(), path, {"microcinema.standin": "random"})
            else:
                save_checkpoint(MicroCinemaModel(toy_config(kind)).eval(), path, dtype="fp16",
                                extra_metadata={"microcinema.standin": "random weights (scripts/toy_standins.py)"})
    return paths
