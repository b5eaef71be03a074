"""A MicroCinema video through a current ComfyUI's own VIDEO type (Create Video, Save Video, Get Video Components).

Over HTTP, on the toy workflow (2 steps, the pack's toy files or their stand-ins): VAE Decode -> Create Video
-> the host's Save Video writes the same 33 frames at 8 fps as Save Video (MicroCinema), and a VIDEO taken
apart by Get Video Components feeds TSR Interpolate (images). Skipped on the 2024 host (no VIDEO type).
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest

from host_kind import skip_unless_host_has
from scripts.comfy_host import output_files
from video_probe import probe
from workflow_assets import as_test_prompt

pytestmark = pytest.mark.host
TOY_API = Path(__file__).resolve().parent.parent / "workflows" / "api" / "toy_image_to_video_api.json"
NATIVE_VIDEO_NODES = ("CreateVideo", "SaveVideo", "GetVideoComponents")


def saved(host, entry, node_id: str):
    (item,) = entry["outputs"][node_id]["images"]
    return probe(host.output_dir / item["subfolder"] / item["filename"])


def test_a_microcinema_video_reaches_the_native_video_nodes(mc_models):
    skip_unless_host_has(mc_models, *NATIVE_VIDEO_NODES, what="VIDEO type (Create Video / Save Video)")
    tag = uuid.uuid4().hex[:6]
    prompt = as_test_prompt(json.loads(TOY_API.read_text()), size=64)
    ours = prompt["25"]["inputs"]
    ours.update(filename_prefix=f"native/ours_{tag}", quality=0)  # lossless: the reference frames
    prompt.update({
        "30": {"class_type": "CreateVideo", "inputs": {"images": ["24", 0], "fps": ours["fps"]}},
        "31": {"class_type": "SaveVideo", "inputs": {"video": ["30", 0], "filename_prefix": f"native/host_{tag}",
                                                     "format": "mp4", "codec": "h264"}},
        # the other way: a VIDEO (Load Video, Create Video...) taken apart, its frames through the TSR
        "32": {"class_type": "GetVideoComponents", "inputs": {"video": ["30", 0]}},
        "33": {"class_type": "MicroCinemaTSRInterpolateImages", "inputs": {
            **{k: v for k, v in prompt["23"]["inputs"].items() if k != "video_latent"},
            "images": ["32", 0], "vae": ["3", 0]}},
        "35": {"class_type": "VAEDecode", "inputs": {"samples": ["33", 0], "vae": ["3", 0]}},
        "34": {"class_type": "MicroCinemaSaveVideo", "inputs": {
            "images": ["35", 0], "fps": ours["fps"] * 4, "format": "mp4", "filename_prefix": f"native/tsr_{tag}",
            "quality": 18}},
    })
    entry = mc_models.client.run(prompt, timeout=600)
    reference, native, interpolated = (saved(mc_models, entry, nid) for nid in ("25", "31", "34"))
    assert (native.count, native.size, native.fps, native.codec) == (33, (64, 64), pytest.approx(8.0), "h264")
    assert output_files(entry) and all(f["type"] == "output" for f in output_files(entry))
    # the same frames, in order: the host's encoder (its own quality) is off our lossless file by less than the
    # video changes from one frame to the next (measured with the shipped toy files: 1.7 against 3.4, of 255)
    difference = np.abs(native.frames.astype(float) - reference.frames.astype(float)).mean()
    frame_to_frame = np.abs(np.diff(reference.frames.astype(float), axis=0)).mean()
    assert difference < min(3.0, frame_to_frame), (difference, frame_to_frame)
    assert (interpolated.count, interpolated.size, interpolated.fps) == (129, (64, 64), pytest.approx(32.0))
