"""The pack's layering (docs/architecture.md, issue 37): every import arrow points down, and no circle.

Every ``.py`` file of the pack (``__init__.py``, ``nodes/``, ``microcinema_core/``, ``scripts/``, ``workflows/``,
``bench/``) is parsed with ``ast`` (nothing is imported); its imports, relative ones resolved, and
``importlib.import_module("<constant>", __package__)`` calls, become arrows between the units of ``LAYERS``.
An absolute ``import nodes`` is ComfyUI's module (the pack's ``nodes/`` is only reached relatively).

``MICROCINEMA_LAYER_GRAPH=docs/layers.txt .venv/bin/python -m pytest -q tests/test_layering.py`` writes the graph
(one line per unit: what it imports); docs/architecture.md carries the same lines and must match.
"""
from __future__ import annotations

import ast
import os
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("__init__.py", "nodes", "microcinema_core", "scripts", "workflows", "bench")
CORE = "microcinema_core"

# The allowed order, top to bottom. A unit may import any unit of a layer below it, and units of its own layer
# as long as no circle forms; never a unit of a layer above. A unit is a top-level folder, or inside
# microcinema_core/ a subpackage or a module.
LAYERS = [
    ("entry", ["__init__.py"]),                        # ComfyUI's entry: the node mappings
    ("benchmarks", ["bench"]),
    ("tools", ["scripts"]),
    ("workflow definitions", ["workflows"]),
    ("ComfyUI glue", ["nodes"]),
    ("core: drivers", ["microcinema_core/experiments", "microcinema_core/train.py"]),
    ("core: library", ["microcinema_core/training", "microcinema_core/eval", "microcinema_core/vae",
                       "microcinema_core/weights", "microcinema_core/models", "microcinema_core/diffusion",
                       "microcinema_core/nn", "microcinema_core/text", "microcinema_core/comfy_http"]),
    ("core: toy data world", ["microcinema_core/toyworld"]),
    ("core: base", ["microcinema_core/video", "microcinema_core/hardware.py", "microcinema_core/config.py",
                    "microcinema_core/errors.py", "microcinema_core/atomic.py", "microcinema_core/__init__.py"]),
]
# ComfyUI's own top-level modules: only the layers above the core may import them.
COMFYUI = {"comfy", "comfy_extras", "comfy_api", "comfy_api_nodes", "comfy_execution", "comfy_config",
           "comfyui_version", "folder_paths", "latent_preview", "node_helpers", "execution", "server", "nodes"}
# Known arrows that break a rule: (importing file, imported unit or "ComfyUI") -> why it stays.
EXCEPTIONS = {
    # a separate entry point (python -m ...encode_cache) that uses ComfyUI's model loaders as a library
    ("microcinema_core/training/encode_cache.py", "ComfyUI"): "documented in docs/architecture.md",
}

RANK = {unit: rank for rank, (_, units) in enumerate(LAYERS) for unit in units}
LAYER_OF = {unit: name for name, units in LAYERS for unit in units}


def pack_files() -> list[Path]:
    files = []
    for name in SOURCES:
        path = REPO / name
        files += [path] if path.is_file() else sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)
    return files


def is_pack_module(dotted: str) -> bool:
    path = REPO.joinpath(*dotted.split("."))  # a folder without __init__.py is a namespace package (workflows/)
    return path.with_suffix(".py").is_file() or path.is_dir() and any(path.glob("*.py"))


def unit_of(dotted: str) -> str:
    """The layer unit of a pack module given by its dotted name from the repository root ('' is the root)."""
    parts = dotted.split(".") if dotted else []
    if not parts:
        return "__init__.py"
    if parts[0] != CORE:
        return parts[0]
    if len(parts) == 1:
        return f"{CORE}/__init__.py"
    return f"{CORE}/{parts[1]}" + ("" if (REPO / CORE / parts[1]).is_dir() else ".py")


def module_of(path: Path) -> tuple[str, list[str]]:
    """(dotted name, package parts) of a pack file."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), parts
    return ".".join(parts), parts[:-1]


def resolve(package: list[str], level: int, module: str | None) -> str | None:
    """A relative import's absolute dotted name; None when it climbs above the pack's root."""
    if level - 1 > len(package):
        return None
    base = package[:len(package) - (level - 1)]
    return ".".join(base + (module.split(".") if module else []))


def imports_of(path: Path):
    """Yield (line, the import as written, dotted target or None, is_pack) for every import of one file."""
    _, package = module_of(path)
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                yield node.lineno, f"import {alias.name}", alias.name, top != "nodes" and is_pack_module(top)
        elif isinstance(node, ast.ImportFrom):
            written = f"from {'.' * node.level}{node.module or ''} import {', '.join(a.name for a in node.names)}"
            if node.level:
                base = resolve(package, node.level, node.module)
                if base is None:
                    yield node.lineno, written, None, True
                    continue
                is_pack = True
            else:
                base = node.module
                top = base.split(".")[0]
                is_pack = top != "nodes" and is_pack_module(top)
            for alias in node.names:  # `from pkg import submodule` reaches the submodule
                sub = f"{base}.{alias.name}" if base else alias.name
                yield node.lineno, written, sub if is_pack and is_pack_module(sub) else base, is_pack
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            name = node.args[0].value
            if name.startswith("."):
                level = len(name) - len(name.lstrip("."))
                yield node.lineno, f"import_module({name!r})", resolve(package, level, name.lstrip(".") or None), True
            else:
                top = name.split(".")[0]
                yield node.lineno, f"import_module({name!r})", name, top != "nodes" and is_pack_module(top)


def import_graph():
    """(unit -> set of imported units, list of (file, line, import, target unit)) over the whole pack."""
    edges: dict[str, set] = defaultdict(set)
    arrows = []
    for path in pack_files():
        source = unit_of(module_of(path)[0])
        for line, written, target, is_pack in imports_of(path):
            if target is None:
                unit = "<above the pack's root>"
            elif is_pack:
                unit = unit_of(target)
            elif target.split(".")[0] in COMFYUI:
                unit = "ComfyUI"
            else:
                continue  # the standard library or a third-party package
            arrows.append((path.relative_to(REPO).as_posix(), line, written, source, unit))
            if unit != source:
                edges[source].add(unit)
    return edges, arrows


def rule_broken(source: str, unit: str) -> str | None:
    if source not in RANK:
        return f"{source} is in no layer of LAYERS (tests/test_layering.py): add it"
    if unit == "ComfyUI":
        if RANK[source] >= RANK[f"{CORE}/experiments"]:
            return "microcinema_core/ never imports ComfyUI (only nodes/, scripts/, bench/ may)"
        return None
    if unit not in RANK:
        return f"{unit} is in no layer of LAYERS (tests/test_layering.py)"
    if RANK[unit] < RANK[source]:
        return (f"an arrow up: layer '{LAYER_OF[source]}' may not import layer '{LAYER_OF[unit]}' "
                f"(order: {' > '.join(name for name, _ in LAYERS)})")
    return None


def test_every_import_arrow_points_down():
    _, arrows = import_graph()
    assert len(arrows) > 300, "the parser found too few imports: is it reading the pack?"
    problems, used = [], set()
    for file, line, written, source, unit in arrows:
        why = rule_broken(source, unit)
        if why and (file, unit) in EXCEPTIONS:
            used.add((file, unit))
        elif why:
            problems.append(f"{file}:{line}: `{written}` ({source} -> {unit}): {why}")
    assert problems == [], "\n".join(problems)
    assert set(EXCEPTIONS) == used, f"exceptions that no longer happen (remove them): {set(EXCEPTIONS) - used}"


def test_no_import_circle_between_units():
    edges, _ = import_graph()
    state, stack, circles = {}, [], []

    def visit(unit):
        state[unit] = "open"
        stack.append(unit)
        for nxt in sorted(edges.get(unit, ())):
            if state.get(nxt) == "open":
                circles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[unit] = "done"

    for unit in sorted(edges):
        if unit not in state:
            visit(unit)
    assert circles == [], "import circles between units:\n" + "\n".join(circles)


def short(unit: str) -> str:
    return unit.removeprefix(f"{CORE}/") if unit != f"{CORE}/__init__.py" else f"{CORE}/"


def graph_text() -> str:
    """One line per importing unit, by layer: ``unit -> what it imports`` (units below it, ComfyUI); ``*`` marks
    an arrow that only EXCEPTIONS make."""
    edges, arrows = import_graph()
    excepted = {(s, u) for f, _, _, s, u in arrows if (f, u) in EXCEPTIONS} - {
        (s, u) for f, _, _, s, u in arrows if (f, u) not in EXCEPTIONS}
    lines = []
    for name, units in LAYERS:
        for unit in units:
            targets = sorted(edges.get(unit, ()), key=lambda u: (RANK.get(u, len(LAYERS)), u))
            if targets:
                label = f"{name}:" if not any(line.startswith(f"{name}:") for line in lines) else ""
                marked = [short(t) + ("*" if (unit, t) in excepted else "") for t in targets]
                lines.append(f"{label:<22}{short(unit):<18}-> {', '.join(marked)}")
    if excepted:
        lines.append("* only through an exception listed in tests/test_layering.py")
    return "\n".join(lines) + "\n"


def test_architecture_doc_shows_the_current_graph():
    text = graph_text()
    target = os.environ.get("MICROCINEMA_LAYER_GRAPH")
    if target:
        Path(target).write_text(text)
    doc = (REPO / "docs" / "architecture.md").read_text()
    assert text in doc, ("docs/architecture.md's import graph is not the current one: run "
                         "MICROCINEMA_LAYER_GRAPH=docs/layers.txt .venv/bin/python -m pytest -q tests/test_layering.py "
                         "and paste docs/layers.txt under the layers drawing\n" + text)
