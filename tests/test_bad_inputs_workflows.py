"""Every HTTP-400 case of docs/bad_inputs.md against every shipped API workflow, through the real server.

Each case breaks one input of the workflow (found by node class, so the same case fits every workflow that has
that node) and must be refused with HTTP 400 before anything runs, naming the node and the input; a good prompt
runs right after it. A case a workflow has no node for is "n/a" in the table. With
``MICROCINEMA_BAD_INPUT_TABLE=<file>`` the module writes the case x workflow table (docs/bad_inputs.md has it).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from scripts.comfy_host import PromptRejected
from test_host_server import assert_good_prompt_still_works
from workflow_assets import as_test_prompt

pytestmark = pytest.mark.host
WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows" / "api"
NAMES = sorted(p.name[:-len("_api.json")] for p in WORKFLOWS.glob("*_api.json"))
SAMPLERS = ("KSampler", "MicroCinemaSampler")
GAMMA_NODES = ("MicroCinemaSampler", "MicroCinemaNoisePrior", "MicroCinemaTSRInterpolateLatent")
LAMBDA_NODES = GAMMA_NODES
CONDITIONING_NODES = ("MicroCinemaKeyframeConditioning", "MicroCinemaSubjectConditioning",
                      "MicroCinemaSubjectConditioningMasked")


def _outputs(prompt: dict) -> list:
    return [nid for nid, node in prompt.items() if node["class_type"] == "MicroCinemaSaveVideo"]


def _first(prompt: dict, classes) -> str | None:
    ids = sorted((nid for nid, node in prompt.items() if node["class_type"] in classes), key=str)
    return ids[0] if ids else None


def _setter(classes, name, value):
    def apply(prompt):
        nid = _first(prompt, classes)
        if nid is not None:
            prompt[nid]["inputs"][name] = value
        return nid, name
    return apply


def _broken_link(prompt):
    """The video's link into TSR (or the frames' into Save Video) pointed at a node that does not exist."""
    nid = _first(prompt, ("MicroCinemaTSRInterpolateLatent",))
    name = "video_latent"
    if nid is None:
        nid, name = _first(prompt, ("MicroCinemaSaveVideo",)), "images"
    prompt[nid]["inputs"][name] = ["99", 0]
    return nid, name


def _vae_as_video(prompt):
    """The VAE loader's output wired into TSR's LATENT input (the host's own type check names both types)."""
    nid = _first(prompt, ("MicroCinemaTSRInterpolateLatent",))
    if nid is not None:
        prompt[nid]["inputs"]["video_latent"] = [_first(prompt, ("VAELoader",)), 0]
    return nid, "video_latent"


# case -> (break the prompt: returns the broken node id (None: not applicable) and input name, words expected)
CASES = {
    "missing model file": (_setter(("MicroCinemaModelLoader",), "ckpt_name", "no_such_model.safetensors"),
                           "value_not_in_list"),
    "frames < 2": (_setter(CONDITIONING_NODES, "frames", 1), "value_smaller_than_min"),
    "width 100 (not a multiple of 64)": (_setter(CONDITIONING_NODES, "width", 100),
                                         "width 100 is not a multiple of 64 px; use 64 or 128"),
    "gamma 0.5 (out of range)": (_setter(GAMMA_NODES, "gamma", 0.5), "value_bigger_than_max"),
    "prior_lambda -0.5": (_setter(LAMBDA_NODES, "prior_lambda", -0.5), "prior_lambda is -0.5"),
    "prior_lambda 100": (_setter(LAMBDA_NODES, "prior_lambda", 100.0), "100"),
    "sampler steps 0": (_setter(SAMPLERS, "steps", 0), "value_smaller_than_min"),
    "sampler cfg 101": (_setter(SAMPLERS, "cfg", 101.0), "value_bigger_than_max"),
    "seed 2**64": (_setter(SAMPLERS, "seed", 2 ** 64), "value_bigger_than_max"),
    "Save Video fps 0": (_setter(("MicroCinemaSaveVideo",), "fps", 0.0), "fps"),
    "Save Video format avi": (_setter(("MicroCinemaSaveVideo",), "format", "avi"), "format"),
    "gif at 120 fps": (lambda p: (_setter(("MicroCinemaSaveVideo",), "format", "gif")(p),
                                  _setter(("MicroCinemaSaveVideo",), "fps", 120.0)(p))[1], "1/100 s"),
    "filename_prefix ../escaped": (_setter(("MicroCinemaSaveVideo",), "filename_prefix", "../escaped/clip"),
                                   "outside ComfyUI's output folder"),
    "filename_prefix with a NUL byte": (_setter(("MicroCinemaSaveVideo",), "filename_prefix", "clip\x00x"), "NUL"),
    "filename_prefix of 300 characters": (_setter(("MicroCinemaSaveVideo",), "filename_prefix", "v" * 300),
                                          "shorten filename_prefix"),
    "a link to a node that does not exist": (_broken_link, "99"),
    "a VAE wired into the video latent": (_vae_as_video, "return_type_mismatch"),
}
RESULTS: dict = {}


@pytest.fixture(scope="module", autouse=True)
def table():
    yield RESULTS
    target = os.environ.get("MICROCINEMA_BAD_INPUT_TABLE")
    if target and RESULTS:
        lines = ["| case | " + " | ".join(NAMES) + " |", "|---|" + "---|" * len(NAMES)]
        for case in CASES:
            cells = [RESULTS.get((case, name), "not run").replace("|", "\\|").replace("\n", " ") for name in NAMES]
            lines.append(f"| {case} | " + " | ".join(cells) + " |")
        Path(target).write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("workflow", NAMES)
@pytest.mark.parametrize("case", list(CASES))
def test_every_bad_value_is_refused_before_running_in_every_workflow(mc_models, case, workflow):
    breakage, words = CASES[case]
    prompt = as_test_prompt(json.loads((WORKFLOWS / f"{workflow}_api.json").read_text()))
    nid, name = breakage(prompt)
    if nid is None:
        RESULTS[(case, workflow)] = "n/a"
        pytest.skip(f"{workflow} has no node for this case")
    with pytest.raises(PromptRejected) as rejected:
        mc_models.client.queue(prompt)
    body, status = rejected.value.body, rejected.value.status
    errors = body.get("node_errors", {}).get(nid, {}).get("errors", [])
    text = json.dumps(errors) if errors else json.dumps(body)
    assert words in text, body
    if status == 200:
        # several outputs (the gamma sweep's three videos): the host runs the valid ones and reports the broken
        # branch in node_errors; that branch never runs
        assert errors and len(_outputs(prompt)) > 1, body
        entry = mc_models.client.wait(body["prompt_id"], timeout=300)
        broken_outputs = set(body["node_errors"][nid]["dependent_outputs"])
        assert not broken_outputs & set(entry.get("outputs", {})), entry.get("outputs")
    else:
        assert status == 400, body
    shown = errors[0] if errors else body.get("error", {})
    RESULTS[(case, workflow)] = (f"{status}, node {nid} `{name}`: {shown.get('type', '')}: "
                                 f"{(shown.get('details') or shown.get('message') or '')[:90]}")
    assert_good_prompt_still_works(mc_models, f"after400/{workflow}_{abs(hash(case)) % 10**6}/clip")
