"""Drag-and-drop of each shipped UI-format workflow into the host's own web UI (headless Chromium):
no missing nodes / widget errors / dialogs, the UI's own ``graphToPrompt()`` equals the shipped API file,
and that prompt (test variant, see ``workflow_assets.py``) runs. Screenshots: ``docs/img/workflows/<name>_<host>.png``
(refreshed with ``MICROCINEMA_UPDATE_SCREENSHOTS=1``; ``scripts/workflow_screenshots.py`` makes the same ones).
On a current frontend the toy workflow, queued with the UI's own Run command, ends in a playing ``<video>``
preview (screenshot ``docs/img/toy_preview_playing_<host version>.png``, e.g. ``_0282``).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from microcinema_core.experiments.toy_files import TOY_SIZE
from scripts.browser import ComfyBrowser, browser_unavailable_reason
from scripts.comfy_host import output_files
from workflow_assets import as_test_prompt

REPO = Path(__file__).resolve().parent.parent
NAMES = ("image_to_video", "sdxl_keyframe_to_video", "gamma_sweep", "toy_image_to_video", "toy_subject_to_video")
EXPECTED_VIDEOS = {"image_to_video": 1, "sdxl_keyframe_to_video": 1, "gamma_sweep": 3, "toy_image_to_video": 1,
                   "toy_subject_to_video": 1}

pytestmark = [pytest.mark.host,
              pytest.mark.skipif(browser_unavailable_reason() is not None, reason=browser_unavailable_reason() or "")]


def without_ui_only_values(prompt: dict, added: dict | None = None) -> dict:
    """Class and inputs, without LoadImage's UI-only 'upload' value; ``added`` fills in inputs per node id."""
    return {nid: {"class_type": n["class_type"],
                  "inputs": {**(added or {}).get(nid, {}),
                             **{k: v for k, v in n["inputs"].items() if k != "upload"}}}
            for nid, n in prompt.items()}


def host_defaults(host, prompt: dict) -> dict:
    """Optional widget inputs a newer host adds to stock nodes (e.g. CLIPLoader's 'device'), at their
    defaults: the shipped files (written on the 2024 host) do not have them."""
    info = host.client.object_info()
    added = {}
    for nid, node in prompt.items():
        optional = info[node["class_type"]]["input"].get("optional", {})
        for name, value in node["inputs"].items():
            spec = optional.get(name)
            if not spec:
                continue
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            default = options.get("default", spec[0][0] if isinstance(spec[0], list) and spec[0] else None)
            if default == value:
                added.setdefault(nid, {})[name] = value
    return added


def run_test_variant(host, ui, prompt: dict, suffix: str, videos: int) -> None:
    """Queue the UI's prompt as the tests run it (``workflow_assets.as_test_prompt``); it must make ``videos``."""
    variant = as_test_prompt(prompt)
    for node in variant.values():
        if "filename_prefix" in node["inputs"]:
            node["inputs"]["filename_prefix"] += suffix
    entry = host.client.wait(host.client.queue(variant, client_id=ui.client_id()), timeout=240)
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert len(output_files(entry)) == videos


@pytest.fixture(scope="module")
def ui(mc_models):
    with ComfyBrowser(mc_models.url, viewport=(1600, 1000)) as browser:
        yield browser


@pytest.mark.parametrize("name", NAMES)
def test_ui_workflow_loads_converts_and_runs(mc_models, ui, name, tmp_path):
    workflow = json.loads((REPO / "workflows" / f"{name}_ui.json").read_text())
    report = ui.load_workflow(workflow)
    console = [e for e in report["console"] if not e.endswith("/favicon.ico]")]
    # the one model the tests cannot install: SDXL (its stage is replaced by LoadImage in the test variant)
    widgets = [w for w in report["widgets"] if not w.startswith("CheckpointLoaderSimple#11.ckpt_name: 'sd_xl_base")]
    # ... which ComfyUI 0.28.2's error overlay also reports (the 2024 UI shows no notice for it)
    sdxl_only = len(widgets) < len(report["widgets"])
    dialogs = [d for d in report["dialogs"] if not (sdxl_only and "\n1 required model is missing\n" in d)]
    assert (report["missing"], dialogs, widgets, console) == ([], [], [], []), report
    prompt = ui.graph_to_prompt()
    shipped = json.loads((REPO / "workflows" / "api" / f"{name}_api.json").read_text())
    assert without_ui_only_values(prompt) == without_ui_only_values(shipped, host_defaults(mc_models, prompt))

    current = ui.page.evaluate("() => !!window.app.extensionManager")  # a current frontend fits by itself
    shot = ui.screenshot(tmp_path / f"{name}.png", fit=not current)
    if os.environ.get("MICROCINEMA_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, REPO / "docs" / "img" / "workflows" / f"{name}_{'current' if current else '2024'}.png")

    run_test_variant(mc_models, ui, prompt, "_browser", EXPECTED_VIDEOS[name])


def test_a_workflow_saved_with_the_deprecated_nodes_still_loads_and_runs(mc_models, ui):
    """The toy workflow as shipped until 2026-12-07 (Noise Prior and TSR with optional keyframe / video inputs)."""
    workflow = json.loads((REPO / "tests" / "data" / "toy_image_to_video_ui_before_required_inputs.json").read_text())
    report = ui.load_workflow(workflow)
    console = [e for e in report["console"] if not e.endswith("/favicon.ico]")]
    assert (report["missing"], report["dialogs"], report["widgets"], console) == ([], [], [], []), report
    prompt = ui.graph_to_prompt()
    classes = {node["class_type"] for node in prompt.values()}
    assert {"MicroCinemaAppearanceNoisePrior", "MicroCinemaTSRInterpolate"} <= classes
    run_test_variant(mc_models, ui, prompt, "_deprecated", 1)


# The newest <video> showing a file: its state after it has been asked to play for a while (muted, as a page may
# autoplay only muted media). ``played`` accumulates the ranges actually played, wherever the loop is.
_PLAY_VIDEO = """async (filename) => {
    const videos = [...document.querySelectorAll('video')].filter(v => (v.currentSrc || v.src).includes(filename));
    const v = videos[videos.length - 1];
    if (!v) return null;
    v.muted = true; v.loop = true;
    await v.play();
    await new Promise(r => setTimeout(r, 1500));
    let played = 0;
    for (let i = 0; i < v.played.length; i++) played += v.played.end(i) - v.played.start(i);
    return {src: v.currentSrc || v.src, duration: v.duration, readyState: v.readyState, paused: v.paused,
            played, width: v.videoWidth, height: v.videoHeight, visible: v.getBoundingClientRect().width > 0};
}"""


def test_toy_workflow_run_from_the_ui_plays_its_video_preview(mc_models, ui, tmp_path):
    """The shipped toy workflow (its own files, as shipped), queued with the UI's Run command
    (``Comfy.QueuePrompt``), shows its mp4 in the node as a ``<video>`` that has frames, a duration and plays.
    A current frontend only: the 2024 UI previews outputs with ``<img>`` and shows no mp4 (docs/host_tests.md)."""
    if not ui.page.evaluate("() => !!window.app.extensionManager"):
        pytest.skip("the 2024 web UI shows no mp4 preview (it previews outputs with <img>)")
    workflow = json.loads((REPO / "workflows" / "toy_image_to_video_ui.json").read_text())
    report = ui.load_workflow(workflow)
    assert (report["missing"], report["dialogs"], report["widgets"]) == ([], [], []), report
    (save,) = [n["id"] for n in workflow["nodes"] if n["type"] == "MicroCinemaSaveVideo"]
    before = set(mc_models.client.get_json("/history"))
    ui.page.evaluate("() => window.app.extensionManager.command.execute('Comfy.QueuePrompt')")
    ui.wait_for_output(str(save), timeout_ms=900_000)
    (new,) = [k for k in mc_models.client.get_json("/history") if k not in before]
    entry = mc_models.client.history(new)
    assert entry["status"]["status_str"] == "success", entry["status"]
    (item,) = output_files(entry)
    assert item["filename"].endswith(".mp4"), item
    ui.page.wait_for_function("""(name) => [...document.querySelectorAll('video')].some(
        v => (v.currentSrc || v.src).includes(name) && v.readyState >= 2 && v.duration > 0)""",
                              arg=item["filename"], timeout=60_000)
    state = ui.page.evaluate(_PLAY_VIDEO, item["filename"])
    assert state is not None and state["visible"], state
    # 33 frames at 8 fps (9 keyframe-model frames, one TSR pass x4); the toy's TOY_SIZE px square
    assert state["duration"] == pytest.approx(33 / 8, abs=0.2), state
    assert (state["width"], state["height"]) == (TOY_SIZE, TOY_SIZE), state
    assert state["readyState"] >= 2 and not state["paused"] and state["played"] > 0.5, state

    shot = ui.screenshot(tmp_path / "toy_preview_playing.png", fit=False)
    if os.environ.get("MICROCINEMA_UPDATE_SCREENSHOTS") == "1" and mc_models.version:
        version = "".join(str(part) for part in mc_models.version)
        shutil.copyfile(shot, REPO / "docs" / "img" / f"toy_preview_playing_{version}.png")
