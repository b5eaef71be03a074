"""Where MicroCinema checkpoints live (``models/microcinema``) and what a wrong file is.

``register_model_folder`` adds the folder to ComfyUI's ``folder_paths`` by APPENDING to an existing
``microcinema`` entry (extra_model_paths.yaml may have made one before the pack loads), never replacing it.
``register_pack_model_folders`` also APPENDS the pack's own ``models/vae`` and ``models/microcinema`` (where
the shipped toy VAE and MicroCinema checkpoints live) to ComfyUI's ``vae`` and ``microcinema`` folders, so the
stock VAE loader and our loaders list them right after install, with no copying.
``describe_file`` names what a non-MicroCinema file is and which ComfyUI loader takes it.
"""
from __future__ import annotations

import os
from pathlib import Path

FOLDER = "microcinema"
EXTENSIONS = {".safetensors"}
PACK_ROOT = Path(__file__).resolve().parents[2]
# ComfyUI folder name -> the pack's own sub-folder of models/ that is added to it
PACK_MODEL_FOLDERS = {"vae": "vae", FOLDER: "microcinema"}


def register_model_folder() -> None:
    """Make ``models/microcinema`` (plus any configured extra paths) a ComfyUI model folder."""
    import folder_paths

    default = os.path.join(folder_paths.models_dir, FOLDER)
    entry = folder_paths.folder_names_and_paths.get(FOLDER)
    if entry is None:
        folder_paths.folder_names_and_paths[FOLDER] = ([default], set(EXTENSIONS))
        return
    paths, extensions = entry[0], entry[1]
    if default not in paths:
        paths.append(default)
    if isinstance(extensions, set):
        extensions.update(EXTENSIONS)
    else:  # a list on some hosts: rebuild the entry with the same paths
        folder_paths.folder_names_and_paths[FOLDER] = (paths, set(extensions) | EXTENSIONS)


def pack_model_folder(kind: str, pack_root: Path | None = None) -> str:
    """``<pack>/models/<sub-folder>`` for a ComfyUI folder name of ``PACK_MODEL_FOLDERS``."""
    return str(Path(pack_root or PACK_ROOT) / "models" / PACK_MODEL_FOLDERS[kind])


def register_pack_model_folders(pack_root: Path | None = None) -> list:
    """Append the pack's ``models/vae`` and ``models/microcinema`` to ComfyUI's folder lists (once each; the
    folders need not exist yet). Returns the paths. Uses the host's ``add_model_folder_path`` (both hosts
    have it; it appends unless asked otherwise), after making sure ``microcinema`` exists with its
    ``.safetensors`` extension."""
    import folder_paths

    register_model_folder()
    added = []
    for kind in PACK_MODEL_FOLDERS:
        path = pack_model_folder(kind, pack_root)
        if kind not in folder_paths.folder_names_and_paths or path not in folder_paths.get_folder_paths(kind):
            folder_paths.add_model_folder_path(kind, path)  # the 2024 host appends duplicates: checked above
        added.append(path)
    return added


def checkpoint_names() -> list:
    import folder_paths

    return folder_paths.get_filename_list(FOLDER)


def checkpoint_path(name: str) -> str:
    import folder_paths

    path = folder_paths.get_full_path(FOLDER, name)
    if path is None:
        raise FileNotFoundError(f"MicroCinema checkpoint '{name}' not found in models/{FOLDER}/")
    return path


def describe_file(path: str) -> str:
    """What a weights file that is not a MicroCinema checkpoint holds, and the loader for it."""
    try:
        from safetensors import safe_open

        with safe_open(path, framework="pt") as f:
            keys = list(f.keys())
    except Exception:
        return "not a readable safetensors file (truncated, or another format)"
    joined = "\n".join(keys[:2000])
    if "lora_unet_" in joined or "lora_te" in joined or ".lora_up." in joined or ".lora_A." in joined:
        return "a LoRA: load it with 'Load LoRA'"
    if any(k.startswith("model.diffusion_model.") for k in keys):
        if any("label_emb" in k for k in keys):
            return "an SDXL checkpoint: load it with 'Load Checkpoint' (e.g. for the keyframe)"
        return ("a Stable Diffusion checkpoint: load it with 'Load Checkpoint'; an SD2.1-base one can become "
                "an untrained MicroCinema model with 'Inflate SD2.1 to MicroCinema'")
    if any(k.startswith(("input_blocks.", "diffusion_model.")) for k in keys):
        return "a bare diffusion U-Net: load it with 'Load Diffusion Model' / 'UNETLoader'"
    if any(k.startswith(("taesd_", "encoder.conv_in", "decoder.conv_in", "first_stage_model.")) for k in keys):
        return "a VAE: load it with 'Load VAE'"
    if any("text_model." in k or k.startswith("transformer.resblocks.") for k in keys):
        return "a text encoder: load it with 'Load CLIP'"
    return "not a MicroCinema checkpoint (no 'microcinema.*' metadata)"
