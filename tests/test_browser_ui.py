"""Drag-and-drop in a real browser: the UI-format workflow loads in the host's own web UI with no missing
nodes or widget errors, the UI converts it (``app.graphToPrompt()``) and that prompt runs over HTTP.

Set ``MICROCINEMA_UPDATE_SCREENSHOTS=1`` to refresh ``docs/img/save_video_workflow.png``.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import pytest

from scripts.browser import ComfyBrowser, browser_unavailable_reason, load_json
from scripts.comfy_host import output_files
from video_probe import probe

REPO = Path(__file__).resolve().parent.parent
UI_WORKFLOW = REPO / "tests" / "data" / "save_video_ui.json"
SCREENSHOT = REPO / "docs" / "img" / "save_video_workflow.png"

pytestmark = [pytest.mark.host,
              pytest.mark.skipif(browser_unavailable_reason() is not None,
                                 reason=browser_unavailable_reason() or "")]


def relevant_console_errors(errors: list[str]) -> list[str]:
    """Console errors except the 2024 host's 404 for /favicon.ico (it serves none)."""
    return [e for e in errors if not e.endswith("/favicon.ico]")]


@pytest.fixture(scope="module")
def ui(mc_host):
    with ComfyBrowser(mc_host.url) as browser:
        yield browser


def test_ui_workflow_loads_converts_and_runs(mc_host, ui, tmp_path):
    workflow = load_json(UI_WORKFLOW)
    report = ui.load_workflow(workflow)
    assert report["missing"] == [] and report["dialogs"] == [] and report["widgets"] == [], report
    assert relevant_console_errors(report["console"]) == [], report["console"]

    prompt = ui.graph_to_prompt()
    assert {nid: node["class_type"] for nid, node in prompt.items()} == {
        "1": "EmptyImage", "2": "EmptyImage", "3": "EmptyImage", "4": "ImageBatch", "5": "ImageBatch",
        "6": "MicroCinemaSaveVideo"}
    assert prompt["6"]["inputs"] == {"images": ["5", 0], "fps": 4, "format": "webp",
                                     "filename_prefix": "MicroCinema/ui_workflow", "quality": 19}

    # Queue with the page's client id, so the UI receives the result like its own Queue button.
    entry = mc_host.client.wait(mc_host.client.queue(prompt, client_id=ui.client_id()), timeout=60)
    assert entry["status"]["status_str"] == "success", entry["status"]
    (item,) = output_files(entry)
    got = probe(mc_host.output_dir / item["subfolder"] / item["filename"])
    assert (got.count, got.size, got.fps) == (3, (64, 48), pytest.approx(4.0))
    ui.wait_for_output("6")
    assert ui.page.evaluate("() => window.app.nodeOutputs['6'].animated[0]") is True

    shot = ui.screenshot(tmp_path / "save_video_workflow.png")
    assert shot.stat().st_size > 10_000
    if os.environ.get("MICROCINEMA_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)


def test_missing_node_types_are_detected(ui):
    """The detector itself works: a node type the host lacks is reported, with the UI's own notice (the 2024 UI's
    dialog names the type; ComfyUI 0.28.2's error overlay says "Some nodes are missing" and outlines the node)."""
    workflow = copy.deepcopy(load_json(UI_WORKFLOW))
    workflow["nodes"][-1]["type"] = "MicroCinemaNoSuchNode"
    report = ui.load_workflow(workflow)
    assert report["missing"] == ["MicroCinemaNoSuchNode"]
    assert any("MicroCinemaNoSuchNode" in text or "nodes are missing" in text for text in report["dialogs"]), report
    ui.page.evaluate("""() => document.querySelectorAll('.comfy-modal, [data-testid="error-overlay"]')
                              .forEach(e => e.style.display = 'none')""")


def test_ui_round_trip_keeps_the_workflow(ui):
    """What the UI would save after loading the file has the same nodes, links and widget values."""
    workflow = load_json(UI_WORKFLOW)
    ui.load_workflow(workflow)
    saved = json.loads(json.dumps(ui.serialized_graph()))
    assert saved["links"] == workflow["links"]
    assert [(n["id"], n["type"], n.get("widgets_values") or []) for n in saved["nodes"]] == [
        (n["id"], n["type"], n.get("widgets_values") or []) for n in workflow["nodes"]]
