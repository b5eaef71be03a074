"""scripts/queue_batch.py: override logic in-process, then a real batch against the ComfyUI server."""
from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from video_probe import probe

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "queue_batch.py"
WORKFLOW = REPO / "tests" / "data" / "save_video_api.json"

_spec = importlib.util.spec_from_file_location("queue_batch", SCRIPT)
qb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(qb)

# A typical text-to-image graph in API format (no server needed for the override logic).
SAMPLER_GRAPH = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "cfg": 7.5, "model": ["4", 0],
                                               "positive": ["6", 0], "negative": ["7", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd21.safetensors"}},
    "6": {"class_type": "CLIPTextEncode", "_meta": {"title": "Positive"}, "inputs": {"text": "a cat", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "_meta": {"title": "Negative"}, "inputs": {"text": "blurry", "clip": ["4", 1]}},
    "9": {"class_type": "MicroCinemaNoisePrior", "inputs": {"gamma": 0.02, "model": ["4", 0]}},
}


def test_selectors_by_class_id_title_and_wildcard():
    g = json.loads(json.dumps(SAMPLER_GRAPH))
    assert qb.apply_override(g, "KSampler", "steps", 30) == ["3"]
    assert qb.apply_override(g, "#7", "text", "ugly") == ["7"]
    assert qb.apply_override(g, "Positive", "text", "a dog") == ["6"]
    assert qb.apply_override(g, "*", "gamma", -0.01) == ["9"]
    assert (g["3"]["inputs"]["steps"], g["7"]["inputs"]["text"], g["6"]["inputs"]["text"],
            g["9"]["inputs"]["gamma"]) == (30, "ugly", "a dog", -0.01)
    assert SAMPLER_GRAPH["3"]["inputs"]["steps"] == 20  # the original is untouched
    with pytest.raises(qb.OverrideError, match="no node matches"):
        qb.apply_override(g, "NoSuchNode", "steps", 1)
    with pytest.raises(qb.OverrideError, match="is a link"):
        qb.apply_override(g, "KSampler", "model", 1)


def test_values_and_sweeps_parse():
    assert qb.parse_assignment("Positive Prompt.text=a.b=c") == ("Positive Prompt", "text", "a.b=c")
    assert [qb.parse_value(v) for v in ("7", "0.5", "true", '"7"', "a cat")] == [7, 0.5, True, "7", "a cat"]
    assert qb.parse_sweep_values("-0.01,0,0.02") == [-0.01, 0, 0.02]
    assert qb.parse_sweep_values('["a, b", "c"]') == ["a, b", "c"]


def test_text_seed_gamma_sweeps_make_every_combination():
    sweeps = [qb.Sweep("text", qb.positive_text_targets(SAMPLER_GRAPH), ["a boat", "a dog"]),
              qb.Sweep("seed", [("*", "seed")], [1, 2]),
              qb.Sweep("gamma", [("*", "gamma")], [0.0, 0.02])]
    jobs = qb.build_jobs(SAMPLER_GRAPH, ["KSampler.steps=5"], sweeps)
    assert len(jobs) == 8
    seen = {(p["6"]["inputs"]["text"], p["3"]["inputs"]["seed"], p["9"]["inputs"]["gamma"]) for p, _ in jobs}
    assert len(seen) == 8
    assert all(p["3"]["inputs"]["steps"] == 5 and p["7"]["inputs"]["text"] == "blurry" for p, _ in jobs)
    assert jobs[0][1] == {"text": "a boat", "seed": 1, "gamma": 0.0}


def test_repeat_with_random_seeds():
    jobs = qb.build_jobs(SAMPLER_GRAPH, [], [], repeat=3, random_seed=True, rng=random.Random(0))
    seeds = [p["3"]["inputs"]["seed"] for p, _ in jobs]
    assert len(set(seeds)) == 3 and [o["seed"] for _, o in jobs] == seeds


def test_ui_format_workflow_is_refused(tmp_path):
    ui = tmp_path / "ui.json"
    ui.write_text(json.dumps({"nodes": [], "links": []}))
    with pytest.raises(SystemExit, match="API format"):
        qb.load_workflow(str(ui))


@pytest.mark.host
def test_batch_against_the_real_server(mc_host, tmp_path):
    """Sweep fps x format over HTTP; every file downloaded via /view decodes with the right settings.

    fps 2 and 5 are exact in gif too (frame times in 1/100 s).
    """
    out = tmp_path / "batch"
    cmd = [sys.executable, str(SCRIPT), str(WORKFLOW), "--server", mc_host.url, "--out", str(out),
           "--set", "MicroCinemaSaveVideo.filename_prefix=qb/video",
           "--sweep", "MicroCinemaSaveVideo.fps=2,5", "--sweep", "6.format=mp4,gif"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert [r["status"] for r in manifest] == ["done"] * 4
    assert [r["overrides"] for r in manifest] == [
        {"MicroCinemaSaveVideo.fps": fps, "6.format": fmt} for fps in (2, 5) for fmt in ("mp4", "gif")]
    assert "job 0: node 6 3/3" in run.stderr  # progress followed over the websocket
    for record in manifest:
        (name,) = record["files"]
        fmt, fps = record["overrides"]["6.format"], record["overrides"]["MicroCinemaSaveVideo.fps"]
        assert name.startswith(f"{record['job']:03d}_video_") and name.endswith("." + fmt)
        got = probe(out / name)
        assert got.count == 3 and got.size == (64, 48) and got.fps == pytest.approx(fps, rel=1e-3)
        server_copy = mc_host.output_dir / "qb" / name.split("_", 1)[1]
        assert server_copy.read_bytes() == (out / name).read_bytes()


@pytest.mark.host
def test_batch_reports_a_rejected_prompt_and_finishes_the_rest(mc_host, tmp_path):
    out = tmp_path / "bad"
    cmd = [sys.executable, str(SCRIPT), str(WORKFLOW), "--server", mc_host.url, "--out", str(out),
           "--no-progress", "--set", "6.filename_prefix=qb_bad/video", "--sweep", "6.fps=0,3"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert [r["status"] for r in manifest] == ["rejected", "done"]
    assert "HTTP 400" in manifest[0]["error"] and "fps" in manifest[0]["error"]
    assert probe(out / manifest[1]["files"][0]).fps == pytest.approx(3.0)
