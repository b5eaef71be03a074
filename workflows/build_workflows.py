"""Write ``workflows/<name>_api.json`` and ``<name>_ui.json`` from ``definitions.py``, through the host's UI.

Both files come from the real web UI, so they are exactly what ComfyUI itself saves: a ComfyUI server with
this pack is started (``scripts/comfy_host.py``; empty placeholder files under the model names the workflows
use, so the loaders list them: nothing is executed here), each API prompt is loaded with ``app.loadApiJson``
(as dropping an API file does), titled, laid out left to right, seeds fixed; then ``app.graph.serialize()``
is the UI file and ``app.graphToPrompt()`` the API file.

    .venv/bin/python -m workflows.build_workflows        (from the repository root)
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from scripts.browser import ComfyBrowser
from scripts.comfy_host import ComfyHost
from workflows import definitions as wf
from workflows.definitions import WORKFLOWS

HERE = Path(__file__).resolve().parent
# every model file a workflow names, by ComfyUI folder (the toy VAE and checkpoints may also be in the pack's
# own models/ folder: the loaders list a name once)
MODEL_FILES = {"microcinema": (wf.BASE_CKPT, wf.TSR_CKPT, wf.TOY_BASE_CKPT, wf.TOY_TSR_CKPT),
               "vae": (wf.VAE, wf.TOY_VAE), "clip": (wf.TEXT_ENCODER,), "checkpoints": (wf.SDXL_CKPT,)}

_LAYOUT = """([prompt, columns]) => {
    const graph = window.app.graph;
    window.app.loadApiJson(prompt);
    const wrap = 5;  // columns per band: long graphs continue in a second band below
    let bandTop = 40, bandBottom = 40;
    columns.forEach((ids, index) => {
        const col = index % wrap;
        if (index && col === 0) bandTop = bandBottom + 80;
        let y = bandTop;
        for (const id of ids) {
            const node = graph.getNodeById(+id);
            node.title = prompt[id]._meta.title;
            for (const w of node.widgets || []) if (w.name === 'control_after_generate') w.value = 'fixed';
            node.size = node.computeSize();
            node.size[0] = Math.max(node.size[0], 300);
            // Load Image grows by its picture's preview once the picture loads: room for it up front
            if (node.type === 'LoadImage') node.size[1] = Math.max(node.size[1], 340);
            node.pos = [40 + col * 360, y];
            y += node.size[1] + 60;
            bandBottom = Math.max(bandBottom, y);
        }
    });
    graph.setDirtyCanvas(true, true);
}"""


def columns(prompt: dict) -> list:
    """Node ids grouped by depth (longest path from a source), for a left-to-right layout."""
    depth = {}

    def visit(nid):
        if nid not in depth:
            sources = [v[0] for v in prompt[nid]["inputs"].values() if isinstance(v, list) and len(v) == 2]
            depth[nid] = 1 + max((visit(s) for s in sources), default=-1)
        return depth[nid]

    for nid in prompt:
        visit(nid)
    cols = [[] for _ in range(max(depth.values()) + 1)]
    for nid in sorted(prompt, key=int):
        cols[depth[nid]].append(nid)
    return cols


def strip_meta(prompt: dict) -> dict:
    """Class and inputs only; without the UI-only 'upload' button value of LoadImage."""
    return {nid: {"class_type": n["class_type"], "inputs": {k: v for k, v in n["inputs"].items() if k != "upload"}}
            for nid, n in prompt.items()}


def install_placeholders(models_dir: Path, input_dir: Path) -> None:
    """Empty files under every model name the workflows use, and a small keyframe picture (the UI previews it;
    toy_cat.png is copied by the pack itself)."""
    from PIL import Image

    for folder, names in MODEL_FILES.items():
        (models_dir / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            (models_dir / folder / name).touch()
    Image.new("RGB", (96, 80), (120, 140, 160)).save(input_dir / wf.KEYFRAME_IMAGE)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch, ComfyHost(Path(scratch)) as host:
        install_placeholders(host.models_dir, host.input_dir)
        with ComfyBrowser(host.url, viewport=(1920, 1080)) as ui:
            for name, make in WORKFLOWS.items():
                prompt = make()
                ui.page.evaluate(_LAYOUT, [prompt, columns(prompt)])
                ui.page.wait_for_timeout(300)
                graph = ui.serialized_graph()
                api = ui.graph_to_prompt()
                got, want = strip_meta(api), strip_meta(prompt)
                if got != want:
                    diff = {nid: (got.get(nid), want.get(nid)) for nid in set(got) | set(want)
                            if got.get(nid) != want.get(nid)}
                    raise SystemExit(f"{name}: the UI's prompt differs from the definition:\n{diff}")
                for nid, node in api.items():
                    node["_meta"] = prompt[nid]["_meta"]
                (HERE / f"{name}_ui.json").write_text(json.dumps(graph, indent=2) + "\n")
                (HERE / f"{name}_api.json").write_text(json.dumps(api, indent=2) + "\n")
                print("wrote", name)


if __name__ == "__main__":
    main()
