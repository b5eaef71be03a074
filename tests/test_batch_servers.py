"""One batch over two real ComfyUI servers (``scripts/queue_batch.py`` on ``microcinema_core.comfy_http``): the
second server is killed mid-batch; every video is made exactly once and none is lost; a rerun makes only what is
missing, whichever server made the rest; per-server throughput is reported."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts.comfy_host import ComfyHost
from video_probe import probe

pytestmark = pytest.mark.host

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "queue_batch.py"
WORKFLOW = REPO / "tests" / "data" / "save_video_api.json"
JOBS = 8
# each job's fps says which job a file came from; 48 frames of 320x240 so a job lasts long enough to be killed
BATCH = ["--set", "6.filename_prefix=two/video", "--set", "*.batch_size=16", "--set", "*.width=320",
         "--set", "*.height=240", "--sweep", "6.fps=" + ",".join(str(f) for f in range(1, JOBS + 1)),
         "--no-progress"]


def _journal(out: Path) -> list[dict]:
    path = out / "journal.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip().startswith('{"key"')]


def _queue_batch(servers: list[str], out: Path, timeout: float = 120):
    cmd = [sys.executable, str(SCRIPT), str(WORKFLOW), *[a for url in servers for a in ("--server", url)],
           "--out", str(out), *BATCH]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _videos(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.suffix == ".mp4")


def test_two_servers_one_killed_mid_batch(mc_host, tmp_path):
    second = ComfyHost(tmp_path / "second").start(timeout=300)
    out = tmp_path / "batch"
    try:
        cmd = [sys.executable, str(SCRIPT), str(WORKFLOW), "--server", mc_host.url, "--server", second.url,
               "--out", str(out), *BATCH]
        batch = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not any(r["server"] == second.url for r in _journal(out)):   # the second server made a video...
            assert batch.poll() is None and time.monotonic() < deadline, batch.communicate()
            time.sleep(0.05)
        second.proc.kill()                                                  # ... and dies with more queued
        killed_at = len(_journal(out))
        stdout, stderr = batch.communicate(timeout=120)
    finally:
        second.stop()
    assert batch.returncode == 0, stderr
    assert f"{second.url} is down" in stderr and killed_at < JOBS

    # every video made exactly once: one journal line and one file per job, each with its own fps
    journal = _journal(out)
    assert sorted(r["job"] for r in journal) == list(range(JOBS))
    videos = _videos(out)
    assert [v.name[:3] for v in videos] == [f"{i:03d}" for i in range(JOBS)]
    for video in videos:
        got = probe(video)
        assert got.count == 48 and got.size == (320, 240)
        assert got.fps == pytest.approx(int(video.name[:3]) + 1, rel=1e-3)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [r["status"] for r in manifest] == ["done"] * JOBS

    # per-server throughput: both made videos, the dead one's queued prompts went to the other
    servers = {row["server"]: row for row in json.loads((out / "servers.json").read_text())["servers"]}
    first_row, second_row = servers[mc_host.url], servers[second.url]
    assert second_row["state"] == "down" and second_row["done"] >= 1 and second_row["moved_to_others"] >= 1
    assert first_row["done"] + second_row["done"] == JOBS and first_row["videos_per_minute"] > 0
    assert "per-server throughput" in stderr and "videos/min" in stderr
    print("\n" + stderr)

    # a rerun makes nothing (whichever server made the videos), even with the dead server still listed
    rerun = _queue_batch([mc_host.url, second.url], out)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{JOBS} jobs, {JOBS} already made" in rerun.stderr and len(_journal(out)) == JOBS

    # a video of the dead server lost: the rerun makes that one job again, on the live server, and only it
    lost = next(r for r in journal if r["server"] == second.url)
    (out / lost["files"][0]).unlink()
    rerun = _queue_batch([mc_host.url, second.url], out)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{JOBS} jobs, {JOBS - 1} already made" in rerun.stderr
    (remade,) = _journal(out)[JOBS:]
    assert remade["job"] == lost["job"] and remade["server"] == mc_host.url
    assert len(_videos(out)) == JOBS
    assert probe(out / remade["files"][0]).fps == pytest.approx(lost["job"] + 1, rel=1e-3)
