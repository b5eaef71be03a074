"""The pack's template folder (what a current ComfyUI lists in Workflow -> Browse Templates).

A current ComfyUI lists ``<pack>/<folder>/*.json`` for each of ``example_workflows``, ``example``, ``examples``,
``workflow``, ``workflows`` and serves the first of those folders that exists; its frontend shows
``<name>.jpg`` beside ``<name>.json`` as the card picture and opens the file as drag-and-drop would. So the
folder must hold only drag-and-drop (UI-format) workflows, each with a thumbnail, and no other candidate
folder may exist. The browser test opens every listed file in the host's own UI (on a current host: fetched
from the template URLs the frontend uses).
"""
from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

from scripts.browser import ComfyBrowser, browser_unavailable_reason
from scripts.comfy_host import PACK_DIR_NAME
from scripts.workflow_screenshots import TEMPLATE_FOLDERS, template_folder

REPO = Path(__file__).resolve().parent.parent
KEYFRAMES = REPO / "workflows" / "keyframes"


def example_inputs() -> tuple:
    """``EXAMPLE_INPUTS`` of nodes/helpers/example_inputs.py (read, not imported: ``nodes`` is also ComfyUI's module)."""
    tree = ast.parse((REPO / "nodes" / "helpers" / "example_inputs.py").read_text())
    return next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                and any(getattr(t, "id", None) == "EXAMPLE_INPUTS" for t in n.targets))


def listed_templates() -> list[Path]:
    """Every file the template list would show: ``*.json`` at the top of each candidate folder."""
    return sorted(p for name in TEMPLATE_FOLDERS for p in (REPO / name).glob("*.json"))


def is_ui_workflow(data) -> bool:
    return isinstance(data, dict) and isinstance(data.get("nodes"), list) and isinstance(data.get("links"), list)


def test_template_folder_is_workflows_with_only_drag_and_drop_files():
    assert template_folder() == REPO / "workflows", [n for n in TEMPLATE_FOLDERS if (REPO / n).is_dir()]
    files = listed_templates()
    assert files and all(p.parent == REPO / "workflows" for p in files), files
    not_ui = [p.name for p in files if not is_ui_workflow(json.loads(p.read_text()))]
    assert not_ui == [], f"not drag-and-drop (UI-format) workflows in the template folder: {not_ui}"
    no_thumbnail = [p.name for p in files if not p.with_suffix(".jpg").is_file()
                    or p.with_suffix(".jpg").read_bytes()[:2] != b"\xff\xd8"]
    assert no_thumbnail == [], f"no JPEG thumbnail <name>.jpg beside: {no_thumbnail}"
    api = sorted(p.name.replace("_api.json", "") for p in (REPO / "workflows" / "api").glob("*_api.json"))
    assert api == sorted(p.name.replace("_ui.json", "") for p in files)


def test_every_load_image_names_a_provided_picture():
    for path in listed_templates():
        for node in json.loads(path.read_text())["nodes"]:
            if node["type"] == "LoadImage":
                picture = node["widgets_values"][0]
                assert picture in example_inputs() and (KEYFRAMES / picture).is_file(), (path.name, picture)


@pytest.mark.host
@pytest.mark.skipif(browser_unavailable_reason() is not None, reason=browser_unavailable_reason() or "")
def test_every_template_opens_in_the_host_ui(mc_models):
    """Each listed file loads with no missing node, dialog, widget error or console error. On a host with the
    template endpoints, they list exactly these files and serve each with its thumbnail."""
    client = mc_models.client
    status, listing = client.request("GET", "/workflow_templates")
    served = status == 200 and isinstance(listing, dict)
    names = [p.stem for p in listed_templates()]
    if served:
        assert sorted(listing.get(PACK_DIR_NAME, [])) == sorted(names), listing
    with ComfyBrowser(mc_models.url, viewport=(1600, 1000)) as ui:
        for name in names:
            workflow = json.loads((REPO / "workflows" / f"{name}.json").read_text())
            if served:
                status, body = client.request("GET", f"/api/workflow_templates/{PACK_DIR_NAME}/{name}.json")
                assert status == 200, (name, status)
                assert (json.loads(body) if isinstance(body, bytes) else body) == workflow
                status, thumb = client.request("GET", f"/api/workflow_templates/{PACK_DIR_NAME}/{name}.jpg")
                assert status == 200 and thumb[:2] == b"\xff\xd8", (name, status)
            report = ui.load_workflow(workflow)
            console = [e for e in report["console"] if not e.endswith("/favicon.ico]")]
            widgets = [w for w in report["widgets"] if "sd_xl_base" not in w]  # SDXL: no weights offline
            sdxl_only = len(widgets) < len(report["widgets"])  # ComfyUI 0.28.2's error overlay reports it too
            dialogs = [d for d in report["dialogs"] if not (sdxl_only and "\n1 required model is missing\n" in d)]
            assert (report["missing"], dialogs, widgets, console) == ([], [], [], []), (name, report)
        if ui.page.evaluate("() => !!window.app.extensionManager"):  # a current frontend: its template browser
            shot = template_browser_shot(ui, names)
            if os.environ.get("MICROCINEMA_UPDATE_SCREENSHOTS") == "1" and mc_models.version:
                version = "".join(str(part) for part in mc_models.version)
                (REPO / "docs" / "img" / f"template_browser_{version}.png").write_bytes(shot)


def template_browser_shot(ui, names: list[str]) -> bytes:
    """Workflow -> Browse Templates -> the pack's category: every card shows with its thumbnail loaded."""
    page = ui.page
    page.evaluate("() => window.app.extensionManager.command.execute('Comfy.BrowseTemplates')")
    page.get_by_text(PACK_DIR_NAME, exact=True).first.click()
    for name in names:
        page.locator(f"[data-testid='template-workflow-{name}']").first.wait_for(state="visible")
    page.wait_for_function("""(names) => names.every(name => {
        const card = document.querySelector(`[data-testid='template-workflow-${name}']`);
        const img = card && card.querySelector('img');
        return img && img.complete && img.naturalWidth > 0;
    })""", arg=names, timeout=120_000)
    page.wait_for_timeout(1000)
    shot = page.screenshot()
    page.keyboard.press("Escape")
    return shot
