"""An API-format ComfyUI graph (node id -> ``{class_type, inputs, _meta}``) and the edits a batch makes to it.

Selectors name nodes by id (``12`` or ``#12``), class (``KSampler``), title (``_meta.title``), or ``*``: every
node that has the input as a value. An input fed by a link is never overwritten: that would cut the graph.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

SEED_INPUTS = ("seed", "noise_seed")
TEXT_INPUTS = ("text", "text_g", "text_l")
# inputs that carry the positive conditioning towards a sampler
POSITIVE_INPUTS = ("positive", "conditioning", "conditioning_to", "conditioning_1", "conditioning_2")
KEYFRAME_INPUT = "keyframe"
KEYFRAME_SAVE_NODE = "zero_shot_keyframe"


class OverrideError(ValueError):
    """An override names no node or input of the workflow, or a linked input."""


def is_link(value) -> bool:
    """Whether an input value is a link ``[source node id, output index]``."""
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], int) and not isinstance(value[1], bool))


def parse_value(text: str):
    """JSON when it parses (numbers, true/false, null, lists, quoted strings), else the raw string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignment(spec: str) -> tuple[str, str, str]:
    """``SEL.input=value`` -> (selector, input, raw value). The selector may contain dots and spaces."""
    if "=" not in spec:
        raise OverrideError(f"'{spec}': expected SELECTOR.input=value")
    target, raw = spec.split("=", 1)
    if "." not in target:
        raise OverrideError(f"'{spec}': expected SELECTOR.input=value (e.g. KSampler.seed=5)")
    selector, input_name = target.rsplit(".", 1)
    return selector.strip(), input_name.strip(), raw


def select_nodes(graph: dict, selector: str, input_name: str) -> list[str]:
    """Ids of the nodes a selector names: ``*`` (nodes having ``input_name`` as a value), an id, a class or a title."""
    if selector == "*":
        return [nid for nid, node in graph.items()
                if input_name in node.get("inputs", {}) and not is_link(node["inputs"][input_name])]
    if selector.lstrip("#") in graph:
        return [selector.lstrip("#")]
    by_class = [nid for nid, node in graph.items() if node.get("class_type") == selector]
    if by_class:
        return by_class
    return [nid for nid, node in graph.items() if (node.get("_meta") or {}).get("title") == selector]


def apply_override(graph: dict, selector: str, input_name: str, value) -> list[str]:
    """Set ``input_name`` on every node the selector names (in place); returns their ids.

    Raises ``OverrideError`` when no node matches or when the input is a link."""
    ids = select_nodes(graph, selector, input_name)
    if not ids:
        classes = sorted({n.get("class_type", "?") for n in graph.values()})
        raise OverrideError(f"no node matches '{selector}.{input_name}'; node classes here: {', '.join(classes)}")
    for nid in ids:
        if is_link(graph[nid].setdefault("inputs", {}).get(input_name)):
            raise OverrideError(f"node {nid} ({graph[nid].get('class_type')}).{input_name} is a link, not a value: "
                                "set the node it comes from instead")
        graph[nid]["inputs"][input_name] = value
    return ids


def positive_text_nodes(graph: dict) -> list[str]:
    """Ids of the nodes with a text input on the positive path of any node with a ``positive`` input
    (through conditioning combine/concat nodes)."""
    found, seen = [], set()

    def walk(link):
        node_id = str(link[0])
        if node_id in seen or node_id not in graph:
            return
        seen.add(node_id)
        inputs = graph[node_id].get("inputs", {})
        if any(isinstance(inputs.get(k), str) for k in TEXT_INPUTS):
            found.append(node_id)
            return
        for name in POSITIVE_INPUTS:
            if is_link(inputs.get(name)):
                walk(inputs[name])

    for node in graph.values():
        link = node.get("inputs", {}).get("positive")
        if is_link(link):
            walk(link)
    return sorted(found, key=lambda k: (len(k), k))


class Workflow:
    """An API-format graph and the zero-shot protocol's edits (each returns a new ``Workflow``)."""

    def __init__(self, graph: dict, source: str = "<graph>"):
        if not isinstance(graph, dict) or not all(isinstance(v, dict) and "class_type" in v
                                                  for v in graph.values()):
            raise ValueError(f"{source} is not an API-format workflow (node id -> {{class_type, inputs}}): "
                             "in ComfyUI use Workflow > Export (API)")
        self.graph = graph
        self.source = source

    @classmethod
    def load(cls, path: str | Path) -> "Workflow":
        """Read an API-format file; a UI-format (drag-and-drop) file is refused with what to do."""
        graph = json.loads(Path(path).read_text())
        if isinstance(graph, dict) and "nodes" in graph and "links" in graph:
            raise ValueError(f"{path} is a UI-format workflow; export it in API format "
                             "(ComfyUI menu: Workflow > Export (API), or 'Save (API Format)')")
        return cls(graph, str(path))

    def copy(self) -> "Workflow":
        return Workflow(copy.deepcopy(self.graph), self.source)

    def positive_text_nodes(self) -> list[str]:
        return positive_text_nodes(self.graph)

    def keyframe_links(self) -> list:
        """``(node id, [source id, output])`` of every ``keyframe`` input fed by a link."""
        return [(k, v["inputs"][KEYFRAME_INPUT]) for k, v in self.graph.items()
                if is_link(v.get("inputs", {}).get(KEYFRAME_INPUT))]

    def with_text(self, text: str, nodes: list | None = None) -> "Workflow":
        """The prompt text into every text input of ``nodes`` (default: the positive path's text nodes)."""
        wf = self.copy()
        targets = nodes if nodes is not None else wf.positive_text_nodes()
        if not targets:
            raise ValueError(f"{self.source}: no prompt node found (a CLIPTextEncode on the 'positive' path of a "
                             "sampler); name it with --text-node ID")
        for node_id in targets:
            inputs = wf.graph[node_id]["inputs"]
            names = [k for k in TEXT_INPUTS if isinstance(inputs.get(k), str)]
            if not names:
                raise ValueError(f"{self.source}: node {node_id} has no text input")
            for name in names:
                inputs[name] = text
        return wf

    def with_seed(self, seed: int) -> "Workflow":
        """One seed into every ``seed`` / ``noise_seed`` input that is a value."""
        wf = self.copy()
        for name in SEED_INPUTS:
            for nid in select_nodes(wf.graph, "*", name):
                wf.graph[nid]["inputs"][name] = int(seed)
        return wf

    def with_override(self, spec: str) -> "Workflow":
        """``SELECTOR.input=value`` (value parsed as JSON, else taken as a string); see ``apply_override``."""
        selector, name, raw = parse_assignment(spec)
        wf = self.copy()
        try:
            apply_override(wf.graph, selector, name, parse_value(raw))
        except OverrideError as err:
            raise OverrideError(f"--set {spec!r} in {self.source}: {err}") from None
        return wf

    def with_keyframe_file(self, image_name: str) -> "Workflow":
        """Point the Load Image node(s) feeding every keyframe input at an uploaded image."""
        wf = self.copy()
        sources = {str(link[0]) for _, link in wf.keyframe_links()}
        loaders = [s for s in sources if "image" in wf.graph[s].get("inputs", {})
                   and not is_link(wf.graph[s]["inputs"]["image"])]
        if not loaders:
            raise ValueError(f"{self.source}: --keyframes needs the keyframe input fed by a Load Image node")
        for s in loaders:
            wf.graph[s]["inputs"]["image"] = image_name
        return wf

    def with_keyframe_saved(self, prefix: str) -> "Workflow":
        """Add a Save Image node on the (first) keyframe input's source, so the keyframe comes back."""
        wf = self.copy()
        links = wf.keyframe_links()
        if links:
            wf.graph[KEYFRAME_SAVE_NODE] = {"class_type": "SaveImage",
                                            "inputs": {"images": list(links[0][1]), "filename_prefix": prefix},
                                            "_meta": {"title": "zero-shot: keyframe"}}
        return wf

    def with_video_prefix(self, prefix: str) -> "Workflow":
        """Every ``filename_prefix`` (but the keyframe's Save Image) set to ``prefix``."""
        wf = self.copy()
        for k, node in wf.graph.items():
            if k != KEYFRAME_SAVE_NODE and "filename_prefix" in node.get("inputs", {}):
                node["inputs"]["filename_prefix"] = prefix
        return wf
