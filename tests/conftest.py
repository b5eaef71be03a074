"""Shared fixtures: one real ComfyUI server per test session (see ``scripts/comfy_host.py``).

* ``comfy_host``: the running server (``ComfyHost``), started once, stopped at the end of the session.
* ``mc_host``: the same server, after checking that this pack imported without errors and that its
  nodes are listed by ``GET /object_info``. Tests that talk to the host should use this one and be
  marked ``@pytest.mark.host`` (deselect them with ``-m "not host"``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # lets tests import their helpers (video_probe...)

from scripts.comfy_host import ComfyHost  # noqa: E402

# Node classes that must be registered once the pack has loaded.
EXPECTED_NODES = ("MicroCinemaSaveVideo", "MicroCinemaModelLoader", "MicroCinemaTSRModelLoader",
                  "MicroCinemaInflateSD21", "MicroCinemaKeyframeConditioning", "MicroCinemaSubjectConditioning",
                  "MicroCinemaSubjectConditioningMasked",
                  "MicroCinemaNoisePrior",
                  "MicroCinemaNoisePriorFromLatent", "MicroCinemaAppearanceNoisePrior", "MicroCinemaSampler",
                  "MicroCinemaTSRInterpolateLatent", "MicroCinemaTSRInterpolateImages", "MicroCinemaTSRInterpolate",
                  "MicroCinemaPriorAncestralSampler",
                  "MicroCinemaTextEncoderLoader")


@pytest.fixture(scope="session")
def comfy_host(tmp_path_factory):
    """The real 2024 ComfyUI host as a server on 127.0.0.1, with this pack in its custom_nodes."""
    host = ComfyHost(tmp_path_factory.mktemp("comfy_host"))
    host.start(timeout=300)  # generous: a busy 2-core machine can take minutes to import torch + ComfyUI
    try:
        yield host
    finally:
        host.stop()


@pytest.fixture(scope="session")
def mc_host(comfy_host):
    """``comfy_host`` after checking the pack loaded: no IMPORT FAILED, our nodes in /object_info."""
    problems = comfy_host.pack_import_problems()
    assert not problems, "custom node import failed:\n" + "\n".join(problems) + "\n" + comfy_host.log_tail()
    info = comfy_host.client.object_info()
    missing = [name for name in EXPECTED_NODES if name not in info]
    assert not missing, f"nodes missing from /object_info: {missing}\n{comfy_host.log_tail()}"
    return comfy_host


@pytest.fixture(scope="session")
def mc_models(mc_host):
    """``mc_host`` with tiny/random stand-ins of every model file the shipped workflows name
    (see ``workflow_assets.py`` for what is substituted and why)."""
    from workflow_assets import install_test_models

    install_test_models(mc_host.models_dir, mc_host.input_dir)
    return mc_host
