"""A running ComfyUI server, through its HTTP API only (standard library: urllib, json; no ComfyUI import).

* ``Server``: ``POST /prompt``, ``GET /history/{id}``, ``GET /view``, ``POST /upload/image``.
* ``Workflow``: an API-format graph (ComfyUI: Workflow > Export (API)) and the edits the zero-shot protocol
  makes to it: the prompt text into the text nodes on the positive path of every sampler, one seed into
  every ``seed`` / ``noise_seed`` input, a keyframe file into the Load Image node that feeds the keyframe,
  ``NODE.input=value`` overrides, and a Save Image node attached to the keyframe so it comes back too.
"""
from __future__ import annotations

import copy
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

SEED_INPUTS = ("seed", "noise_seed")
TEXT_INPUTS = ("text", "text_g", "text_l")
# inputs that carry the positive conditioning towards a sampler
POSITIVE_INPUTS = ("positive", "conditioning", "conditioning_to", "conditioning_1", "conditioning_2")
KEYFRAME_INPUT = "keyframe"
KEYFRAME_SAVE_NODE = "zero_shot_keyframe"
VIDEO_EXTENSIONS = (".mp4", ".webm", ".gif", ".mov", ".mkv", ".avi", ".webp")


class ComfyError(RuntimeError):
    """The server refused a prompt, failed running it, or could not be reached."""


class Server:
    def __init__(self, url: str, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.client_id = uuid.uuid4().hex

    def _request(self, method: str, path: str, data: bytes | None = None, headers: dict | None = None):
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()
        except (urllib.error.URLError, OSError) as err:
            raise ComfyError(f"ComfyUI server {self.url} not reachable ({err}); start ComfyUI "
                             "(python main.py --listen 127.0.0.1 --port 8188) or pass --server") from err

    def get_json(self, path: str):
        status, raw = self._request("GET", path)
        if status != 200:
            raise ComfyError(f"GET {path} -> HTTP {status}: {raw[:2000]!r}")
        return json.loads(raw)

    def check(self) -> dict:
        """``GET /system_stats`` (raises ``ComfyError`` when nothing answers)."""
        return self.get_json("/system_stats")

    def queue(self, prompt: dict) -> str:
        body = json.dumps({"prompt": prompt, "client_id": self.client_id}).encode()
        status, raw = self._request("POST", "/prompt", body, {"Content-Type": "application/json"})
        try:
            payload = json.loads(raw)
        except json.JSONDecodeError:
            payload = {"raw": raw[:2000].decode(errors="replace")}
        if status != 200 or payload.get("node_errors"):
            raise ComfyError(f"the server refused the prompt (HTTP {status}): {json.dumps(payload)[:3000]}")
        return payload["prompt_id"]

    def history(self, prompt_id: str) -> dict | None:
        return self.get_json(f"/history/{prompt_id}").get(prompt_id)

    def wait(self, prompt_id: str, timeout: float, poll: float = 0.25) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.history(prompt_id)
            if entry is not None:
                error = run_error(entry)
                if error:
                    raise ComfyError(f"prompt {prompt_id} failed on the server: {error}")
                return entry
            time.sleep(poll)
        raise ComfyError(f"prompt {prompt_id} not finished after {timeout:.0f} s (raise --timeout)")

    def view(self, item: dict) -> bytes:
        query = urllib.parse.urlencode({"filename": item["filename"], "subfolder": item.get("subfolder", ""),
                                        "type": item.get("type", "output")})
        status, raw = self._request("GET", "/view?" + query)
        if status != 200:
            raise ComfyError(f"GET /view {item} -> HTTP {status}")
        return raw

    def upload_image(self, path: str | Path, name: str) -> str:
        """``POST /upload/image`` (multipart, overwrite); returns the value a Load Image node takes."""
        boundary = uuid.uuid4().hex
        parts = []
        for field, value in (("overwrite", "true"), ("type", "input")):
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n'
                         .encode())
        parts.append((f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
                      "Content-Type: application/octet-stream\r\n\r\n").encode() + Path(path).read_bytes()
                     + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        status, raw = self._request("POST", "/upload/image", b"".join(parts),
                                    {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        if status != 200:
            raise ComfyError(f"POST /upload/image {name} -> HTTP {status}: {raw[:500]!r}")
        payload = json.loads(raw)
        return f"{payload['subfolder']}/{payload['name']}" if payload.get("subfolder") else payload["name"]


def run_error(entry: dict) -> str | None:
    status = entry.get("status") or {}
    for kind, data in status.get("messages", []):
        if kind in ("execution_error", "execution_interrupted"):
            return f"{kind}: node {data.get('node_type')} ({data.get('node_id')}): {data.get('exception_message')}"
    if status.get("status_str") == "error":
        return "error (no message)"
    return None


def output_items(entry: dict) -> dict:
    """node id -> list of ``{filename, subfolder, type}`` a history entry's outputs point at."""
    items = {}
    for node_id, out in (entry.get("outputs") or {}).items():
        for key in ("images", "gifs", "videos"):
            items.setdefault(node_id, []).extend(i for i in out.get(key, []) if "filename" in i)
    return items


def _is_link(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)


class Workflow:
    """An API-format graph and the protocol's edits (each returns a new ``Workflow``)."""

    def __init__(self, graph: dict, source: str = "<graph>"):
        if not isinstance(graph, dict) or not all(isinstance(v, dict) and "class_type" in v
                                                  for v in graph.values()):
            raise ValueError(f"{source} is not an API-format workflow (node id -> {{class_type, inputs}}): "
                             "in ComfyUI use Workflow > Export (API)")
        self.graph = graph
        self.source = source

    @classmethod
    def load(cls, path: str | Path) -> "Workflow":
        return cls(json.loads(Path(path).read_text()), str(path))

    def copy(self) -> "Workflow":
        return Workflow(copy.deepcopy(self.graph), self.source)

    # -- finding nodes ----------------------------------------------------------------------------
    def find(self, selector: str) -> list:
        """Node ids matching an id, a class_type or a title (``_meta.title``); ``*`` is every node."""
        if selector == "*":
            return list(self.graph)
        if selector in self.graph:
            return [selector]
        return [k for k, v in self.graph.items()
                if v["class_type"] == selector or (v.get("_meta") or {}).get("title") == selector]

    def positive_text_nodes(self) -> list:
        """Ids of the nodes with a text input on the positive path of any node with a ``positive`` input."""
        found, seen = [], set()

        def walk(link):
            node_id = link[0]
            if node_id in seen or node_id not in self.graph:
                return
            seen.add(node_id)
            inputs = self.graph[node_id].get("inputs", {})
            if any(isinstance(inputs.get(k), str) for k in TEXT_INPUTS):
                found.append(node_id)
                return
            for name in POSITIVE_INPUTS:
                if _is_link(inputs.get(name)):
                    walk(inputs[name])

        for node in self.graph.values():
            link = node.get("inputs", {}).get("positive")
            if _is_link(link):
                walk(link)
        return sorted(found, key=lambda k: (len(k), k))

    def keyframe_links(self) -> list:
        """``(node id, [source id, output])`` of every ``keyframe`` input fed by a link."""
        return [(k, v["inputs"][KEYFRAME_INPUT]) for k, v in self.graph.items()
                if _is_link(v.get("inputs", {}).get(KEYFRAME_INPUT))]

    # -- edits --------------------------------------------------------------------------------------
    def with_text(self, text: str, nodes: list | None = None) -> "Workflow":
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
        wf = self.copy()
        for node in wf.graph.values():
            for name in SEED_INPUTS:
                if name in node.get("inputs", {}) and not _is_link(node["inputs"][name]):
                    node["inputs"][name] = int(seed)
        return wf

    def with_override(self, spec: str) -> "Workflow":
        """``SELECTOR.input=value`` (value parsed as JSON, else taken as a string)."""
        target, sep, raw = spec.partition("=")
        selector, dot, name = target.rpartition(".")
        if not sep or not dot:
            raise ValueError(f"--set {spec!r}: expected NODE.input=value (NODE: id, class or title)")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        wf = self.copy()
        ids = [k for k in wf.find(selector.strip()) if name.strip() in wf.graph[k].get("inputs", {})]
        if not ids:
            raise ValueError(f"--set {spec!r}: no node {selector!r} with an input {name!r} in {self.source}")
        for k in ids:
            wf.graph[k]["inputs"][name.strip()] = value
        return wf

    def with_keyframe_file(self, image_name: str) -> "Workflow":
        """Point the Load Image node(s) feeding every keyframe input at an uploaded image."""
        wf = self.copy()
        sources = {link[0] for _, link in wf.keyframe_links()}
        loaders = [s for s in sources if "image" in wf.graph[s].get("inputs", {})
                   and not _is_link(wf.graph[s]["inputs"]["image"])]
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
        wf = self.copy()
        for k, node in wf.graph.items():
            if k != KEYFRAME_SAVE_NODE and "filename_prefix" in node.get("inputs", {}):
                node["inputs"]["filename_prefix"] = prefix
        return wf
