"""Save Video (MicroCinema): IMAGE frames -> mp4 (H.264) / animated webp / gif in ComfyUI's output folder.

The encoding lives in the core, ``microcinema_core/video/writer.py`` (no ComfyUI import); this file is the
ComfyUI glue: file naming through ``folder_paths``, progress and Cancel through ``comfy.utils`` /
``comfy.model_management``, and the UI dict that makes the web UI show the result like its own animated
outputs.
"""
from __future__ import annotations

import os

from ..microcinema_core.video.writer import (DEFAULT_CRF, FORMATS, check_finite_frames, prefix_problem,
                                             settings_problem, usable_prefix, validate_frames, write_video)


class MicroCinemaSaveVideo:
    """Write a batch of frames as one video file; shows it in the UI and outputs its path."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {
                    "tooltip": "The frames to save, in order: an IMAGE batch [frames, height, width, 3] "
                               "(e.g. the VAE Decode of a MicroCinema video latent)."}),
                "fps": ("FLOAT", {
                    "default": 8.0, "min": 0.01, "max": 240.0, "step": 0.5,
                    "tooltip": "Frames per second of the file. MicroCinema's base model makes 2 fps, one TSR "
                               "pass 8 fps, two passes 32 fps."}),
                "format": (list(FORMATS), {
                    "default": "mp4",
                    "tooltip": "mp4: H.264 (yuv420p, plays everywhere; odd sizes are padded by one pixel). "
                               "webp: animated WebP (lossy, quality 90). gif: 256 colours, frame times in "
                               "1/100 s. webp and gif store identical consecutive frames as one longer "
                               "frame (same playback)."}),
                "filename_prefix": ("STRING", {
                    "default": "MicroCinema/video",
                    "tooltip": "Name of the file in ComfyUI's output folder; a '/' makes a subfolder, and a "
                               "prefix ending in '/' names a folder (the file is then 'video'); empty means "
                               "'video'. A counter and the extension are appended (video_00001_.mp4). "
                               "%width% and %height% are replaced by the frame size. At most 200 bytes a "
                               "part; no '..' or absolute paths."}),
            },
            "optional": {
                "quality": ("INT", {
                    "default": DEFAULT_CRF, "min": 0, "max": 51, "step": 1,
                    "tooltip": "mp4 only: the H.264 CRF. Lower is better and bigger: 0 is lossless, 17-23 is "
                               "typical. webp and gif ignore it."}),
            },
            # the prompt and this node's id: an error about the frames can name the node they come from
            "hidden": {"prompt": "PROMPT", "unique_id": "UNIQUE_ID"},
        }

    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("path",)
    OUTPUT_TOOLTIPS = ("Absolute path of the saved file.",)
    FUNCTION = "save"
    OUTPUT_NODE = True
    CATEGORY = "MicroCinema"
    DESCRIPTION = ("Saves frames as an mp4 (H.264), animated webp or gif, shown in the UI like ComfyUI's own "
                   "animated outputs. The file appears only once it is complete: a failed or cancelled "
                   "save leaves nothing behind.")

    @classmethod
    def VALIDATE_INPUTS(cls, fps=None, format=None, filename_prefix=None):
        """Refused with HTTP 400 before anything runs (a linked input arrives as None and is checked at run time)."""
        problems = [p for p in (prefix_problem(filename_prefix) if filename_prefix is not None else None,
                                settings_problem(fps, format)) if p]
        return "; ".join(problems) if problems else True

    def save(self, images, fps, format, filename_prefix, quality=DEFAULT_CRF, prompt=None, unique_id=None):
        import comfy.model_management
        import comfy.utils
        import folder_paths

        validate_frames(tuple(images.shape), fps, format)
        problem = prefix_problem(filename_prefix)
        if problem:
            raise ValueError(problem + ".")
        filename_prefix = usable_prefix(filename_prefix)
        source = upstream_node(prompt, unique_id, "images")
        check_finite_frames(images, source)
        num_frames, height, width = (int(s) for s in images.shape[:3])
        output_dir = folder_paths.get_output_directory()
        folder, base, counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, output_dir, width, height)
        filename = f"{base}_{counter:05}_.{format}"
        while os.path.exists(os.path.join(folder, filename)):  # never overwrite an earlier result
            counter += 1
            filename = f"{base}_{counter:05}_.{format}"
        path = os.path.join(folder, filename)

        progress = comfy.utils.ProgressBar(num_frames)

        def on_frame(index: int) -> None:
            comfy.model_management.throw_exception_if_processing_interrupted()
            progress.update_absolute(index + 1, num_frames)

        write_video(images, path, fps, format, crf=quality, on_frame=on_frame, source=source)
        ui_item = {"filename": filename, "subfolder": subfolder, "type": "output"}
        return {"ui": {"images": [ui_item], "animated": (True,)}, "result": (path,)}


def upstream_node(prompt, unique_id, input_name: str):
    """``"node 10 (VAEDecode)"``: the node linked to ``input_name`` of node ``unique_id`` in the API prompt,
    or None when it cannot be told (no prompt, a widget value)."""
    try:
        source_id = prompt[str(unique_id)]["inputs"][input_name][0]
        return f"node {source_id} ({prompt[str(source_id)]['class_type']}, its output into '{input_name}')"
    except (KeyError, IndexError, TypeError):
        return None


NODE_CLASS_MAPPINGS = {"MicroCinemaSaveVideo": MicroCinemaSaveVideo}
NODE_DISPLAY_NAME_MAPPINGS = {"MicroCinemaSaveVideo": "Save Video (MicroCinema)"}
