"""The shipped example keyframes in ComfyUI's input folder, so the workflows' stock Load Image finds them.

``workflows/toy_image_to_video_ui.json`` loads ``toy_cat.png``, ``image_to_video_ui.json`` and
``gamma_sweep_ui.json`` load ``microcinema_keyframe.png``, ``toy_subject_to_video_ui.json`` loads
``toy_coffee_cutout.png`` (all in ``workflows/keyframes/``) with the stock Load Image node, which only lists files
in ComfyUI's input folder. This is the pack's one side effect outside its own folder: when the server starts (the
2024 host applies ``--input-directory`` only after loading custom nodes, hence the start-up hook) the pictures are
copied there, and only when no file of that name exists (a user's own file is never replaced). Nothing is copied
when no ComfyUI server runs in the process.
"""
from __future__ import annotations

import logging
import os
import shutil
import sys

KEYFRAMES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "workflows",
                         "keyframes")
EXAMPLE_INPUTS = ("toy_cat.png", "microcinema_keyframe.png", "toy_coffee_cutout.png")


def copy_example_inputs() -> list:
    """Copy each missing example picture into the input folder; returns the paths written."""
    import folder_paths

    written = []
    for name in EXAMPLE_INPUTS:
        target = os.path.join(folder_paths.get_input_directory(), name)
        if os.path.exists(target):
            continue
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(os.path.join(KEYFRAMES, name), target)
            written.append(target)
        except OSError as exc:  # a read-only input folder must not stop the pack from loading
            logging.warning("MicroCinema: could not copy the example keyframe to %s (%s)", target, exc)
    return written


def provide_example_inputs() -> None:
    """Copy when the server starts (after the host has set its input folder); nothing without a server."""
    server = sys.modules.get("server")  # ComfyUI's server module, imported by main.py before the packs load
    instance = getattr(getattr(server, "PromptServer", None), "instance", None)
    if instance is None:  # in-process use (tests, scripts): no Load Image UI to serve
        return

    async def on_startup(_app):
        copy_example_inputs()

    try:
        instance.app.on_startup.append(on_startup)
    except RuntimeError:  # the server is already running (the pack loaded late): its input folder is set
        copy_example_inputs()
