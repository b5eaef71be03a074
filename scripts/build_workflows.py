"""Write ``workflows/<name>_ui.json`` (drag-and-drop) and ``workflows/api/<name>_api.json`` from
``workflows/definitions.py``, through the host's UI (a tool: it lives with the tools, the definitions with the JSON).

Both files come from the real web UI, so they are exactly what ComfyUI itself saves: a ComfyUI server with
this pack is started (``scripts/comfy_host.py``; empty placeholder files under the model names the workflows
use, so the loaders list them: nothing is executed here; the pack itself copies the example keyframes into the
input folder), each API prompt is loaded with ``app.loadApiJson`` (as dropping an API file does), titled,
seeds fixed, laid out left to right in groups with a Note as ``definitions.LAYOUTS`` / ``NOTES`` say; then
``app.graph.serialize()`` is the UI file and ``app.graphToPrompt()`` the API file.

Only UI files sit at the top of ``workflows/``: a current ComfyUI lists every ``*.json`` there in its template
browser (Workflow -> Browse Templates), with ``<name>.jpg`` beside it as the thumbnail
(``scripts/workflow_screenshots.py`` makes the thumbnails and the screenshots in ``docs/img/workflows/``).

    .venv/bin/python -m scripts.build_workflows        (from the repository root)
    .venv/bin/python -m scripts.build_workflows --only toy_subject_to_video      (one workflow; repeatable)
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from scripts.browser import ComfyBrowser
from scripts.comfy_host import ComfyHost, HostClient
from workflows import definitions as wf
from workflows.definitions import LAYOUTS, NOTES, WORKFLOWS

HERE = Path(__file__).resolve().parent.parent / "workflows"   # the workflows folder (definitions, JSON, keyframes)
API_DIR = HERE / "api"  # API-format files: for scripts and HTTP, not drag-and-drop (kept out of the template list)
# every model file a workflow names, by ComfyUI folder (the toy VAE and checkpoints may also be in the pack's
# own models/ folder: the loaders list a name once)
MODEL_FILES = {"microcinema": (wf.BASE_CKPT, wf.TSR_CKPT, wf.TOY_BASE_CKPT, wf.TOY_TSR_CKPT, wf.TOY_CUSTOM_CKPT),
               "vae": (wf.VAE, wf.TOY_VAE), "clip": (wf.TEXT_ENCODER,), "checkpoints": (wf.SDXL_CKPT,)}

# Node sizes in graph units (the frontends draw 14 px text at scale 1): every node gets one width, so the
# columns line up; stacked nodes leave room for their 30-unit title bar.
DIMS = {"width": 260, "col_gap": 50, "sub_gap": 40, "row_gap": 22, "pad": 14, "head": 44, "title": 30,
        "group_gap": 34, "prompt_height": 110}
# group colours by stage (the number a group's title starts with)
STAGE_COLORS = {"1": "#3f789e", "2": "#4a7a3e", "3": "#8a6a2e", "4": "#6a4a8a", "5": "#8a3f56"}

_LOAD = """(prompt) => {
    window.app.loadApiJson(prompt);
    const graph = window.app.graph;
    for (const [id, node] of Object.entries(prompt)) {
        const n = graph.getNodeById(+id);
        n.title = node._meta.title;
        for (const w of n.widgets || []) if (w.name === 'control_after_generate') w.value = 'fixed';
    }
}"""

# Places the nodes of definitions.LAYOUTS[name] and draws a group around each block. Run twice: Load Image's
# picture arrives after the first pass and may grow the node.
_PLACE = """([layout, note, pictures, dims, colors]) => {
    const graph = window.app.graph;
    for (const g of [...(graph._groups || graph.groups || [])]) graph.remove(g);
    const byId = (id) => {
        if (id !== 'note') return graph.getNodeById(+id);
        let n = graph._nodes.find(n => n.type === 'Note');
        if (!n) {
            n = window.LiteGraph.createNode('Note');
            graph.add(n);
        }
        n.title = 'Note: what to change';
        n.widgets[0].value = note;
        return n;
    };
    const heightOf = (n) => {
        const h = n.computeSize()[1];
        if (n.type === 'CLIPTextEncode') return Math.max(h, dims.prompt_height);
        if (n.type === 'Note') return Math.max(h, 30 + 14 * Math.ceil(note.length / 38) + 7 * note.split('\\n').length);
        if (n.type === 'LoadImage') {
            const [w, hh] = pictures[n.widgets.find(w => w.name === 'image').value] || [1, 0];
            return Math.max(n.size[1], h + dims.width * hh / w + 10);
        }
        return h;
    };
    let x = 0;
    for (const column of layout) {
        let y = 0, columnWidth = 0;
        for (const group of column) {
            const top = y + (group.title ? dims.head : 0);
            let gx = x + dims.pad, bottom = top;
            for (const col of group.cols) {
                let next = top;
                col.forEach((row, i) => {
                    let ry = group.pitch ? top + i * group.pitch : next;
                    for (const id of (Array.isArray(row) ? row : [row])) {
                        const n = byId(id);
                        n.size = [dims.width, heightOf(n)];
                        n.pos = [gx, ry + dims.title];
                        ry += dims.title + n.size[1] + dims.row_gap;
                    }
                    next = ry;
                    bottom = Math.max(bottom, ry - dims.row_gap);
                });
                gx += dims.width + dims.sub_gap;
            }
            const width = gx - dims.sub_gap + dims.pad - x;
            if (group.title) {
                const g = new window.LiteGraph.LGraphGroup(group.title);
                g.pos = [x, y];
                g.size = [width, bottom + dims.pad - y];
                g.color = colors[group.title[0]] || g.color;
                graph.add(g);
            }
            columnWidth = Math.max(columnWidth, width);
            y = bottom + dims.pad + dims.group_gap;
        }
        x += columnWidth + dims.col_gap;
    }
    graph.setDirtyCanvas(true, true);
}"""


def picture_sizes() -> dict:
    """Width and height of each example keyframe the pack provides (Load Image previews it)."""
    from PIL import Image

    return {p.name: list(Image.open(p).size) for p in sorted((HERE / "keyframes").glob("*.png"))}


def lay_out(page, name: str, prompt: dict) -> None:
    """Load the API prompt into the page's graph and place it as ``definitions.LAYOUTS[name]`` says."""
    page.evaluate(_LOAD, prompt)
    args = [LAYOUTS[name], NOTES[name], picture_sizes(), DIMS, STAGE_COLORS]
    page.evaluate(_PLACE, args)
    page.wait_for_timeout(1000)  # Load Image fetches its picture
    page.evaluate(_PLACE, args)


def strip_meta(prompt: dict) -> dict:
    """Class and inputs only; without the UI-only 'upload' button value of LoadImage."""
    return {nid: {"class_type": n["class_type"], "inputs": {k: v for k, v in n["inputs"].items() if k != "upload"}}
            for nid, n in prompt.items()}


def install_placeholders(models_dir: Path) -> None:
    """Empty files under every model name the workflows use, except the files the pack ships in its own
    ``models/`` (a placeholder in the host's folder would be found first); the pack copies the keyframes."""
    for folder, names in MODEL_FILES.items():
        (models_dir / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            if not (models_dir / folder / name).exists() and not (HERE.parent / "models" / folder / name).exists():
                (models_dir / folder / name).touch()


def optional_defaults(url: str) -> dict:
    """{class: {optional input: default}}: inputs a host's UI adds at their defaults where a definition has none
    (e.g. a newer host's extra widgets); the comparison below accepts exactly those."""
    info = HostClient(url).object_info()
    out = {}
    for cls, spec in info.items():
        for name, value in (spec.get("input", {}).get("optional") or {}).items():
            if len(value) > 1 and isinstance(value[1], dict) and "default" in value[1]:
                out.setdefault(cls, {})[name] = value[1]["default"]
    return out


def build(url: str, only=None) -> None:
    defaults = optional_defaults(url)
    unknown = sorted(set(only or ()) - set(WORKFLOWS))
    if unknown:
        raise SystemExit(f"no workflow named {unknown}; the workflows are {sorted(WORKFLOWS)}")
    with ComfyBrowser(url, viewport=(1600, 1000)) as ui:
        for name, make in WORKFLOWS.items():
            if only and name not in only:
                continue
            prompt = make()
            lay_out(ui.page, name, prompt)
            graph = ui.serialized_graph()
            api = ui.graph_to_prompt()
            got, want = strip_meta(api), strip_meta(prompt)
            for nid, node in want.items():
                added = {k: v for k, v in got.get(nid, {}).get("inputs", {}).items()
                         if k not in node["inputs"] and defaults.get(node["class_type"], {}).get(k, ...) == v}
                node["inputs"].update(added)
                # the files name only what the definition gives: optional widgets a host or a newer pack adds
                # (after the required ones) stay at their defaults, so the files load with and without them
                for k in added:
                    del api[nid]["inputs"][k]
                if added:
                    ui_node = next(n for n in graph["nodes"] if str(n["id"]) == nid)
                    ui_node["widgets_values"] = ui_node["widgets_values"][:-len(added)]
            if got != want:
                diff = {nid: (got.get(nid), want.get(nid)) for nid in set(got) | set(want)
                        if got.get(nid) != want.get(nid)}
                raise SystemExit(f"{name}: the UI's prompt differs from the definition:\n{diff}")
            for nid, node in api.items():
                node["_meta"] = prompt[nid]["_meta"]
            (HERE / f"{name}_ui.json").write_text(json.dumps(graph, indent=2) + "\n")
            API_DIR.mkdir(exist_ok=True)
            (API_DIR / f"{name}_api.json").write_text(json.dumps(api, indent=2) + "\n")
            print("wrote", name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running host (with placeholder model files) instead of starting one")
    parser.add_argument("--only", action="append", help="write this workflow only (repeatable; default: all)")
    args = parser.parse_args()
    if args.url:
        return build(args.url, args.only)
    with tempfile.TemporaryDirectory() as scratch:
        host = ComfyHost(Path(scratch)).start(timeout=1800)  # a busy machine can take many minutes
        try:
            install_placeholders(host.models_dir)
            build(host.url, args.only)
        finally:
            host.stop()


if __name__ == "__main__":
    main()
