"""Scale-out: ``torchrun --nproc_per_node 2`` (Gloo, CPU) updates like one process with the combined batch."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from training_fixtures import build_test_cache, tiny_run_config

from microcinema_core.training.progress import read_metrics

ROOT = Path(__file__).resolve().parents[1]


def _write_config(path: Path, run) -> Path:
    path.write_text(json.dumps({"data": dataclasses.asdict(run.data), "train": dataclasses.asdict(run.train)}))
    return path


def _run(cmd: list[str], timeout: int = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-5000:]}"
    return proc


def test_two_gloo_processes_match_one_process_with_the_combined_batch(tmp_path):
    cache = build_test_cache(tmp_path / "data", count=4, num_frames=5)
    common = dict(max_steps=2, warmup_steps=1, lr=1e-3, text_drop_rate=0.5, grad_clip=0.5, log_every=1)
    two = _write_config(tmp_path / "two.json", tiny_run_config(cache, tmp_path / "two", batch_size=1, **common))
    one = _write_config(tmp_path / "one.json", tiny_run_config(cache, tmp_path / "one", batch_size=2, **common))

    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
          "-m", "microcinema_core.train", "--config", str(two), "--device", "cpu"])
    _run([sys.executable, "-m", "microcinema_core.train", "--config", str(one), "--device", "cpu"])

    start = read_metrics(tmp_path / "two" / "metrics.jsonl", event="start")[0]
    assert start["world_size"] == 2 and start["global_batch"] == 2 and start["backend"] == "gloo"
    assert read_metrics(tmp_path / "one" / "metrics.jsonl", event="start")[0]["world_size"] == 1
    loss_two = [r["loss"] for r in read_metrics(tmp_path / "two" / "metrics.jsonl")]
    loss_one = [r["loss"] for r in read_metrics(tmp_path / "one" / "metrics.jsonl")]
    assert len(loss_two) == len(loss_one) == 2
    assert all(abs(a - b) < 1e-5 for a, b in zip(loss_two, loss_one)), (loss_two, loss_one)

    assert_same_update(cache, tmp_path / "two", tmp_path / "one")


def assert_same_update(cache, run_a, run_b):
    """Both runs moved the weights from the same start by the same vector (within float noise).

    Sums run in a different order (Gloo all-reduce vs one batch), and Adam's first steps divide tiny,
    cancelling gradients by about eps, so single elements may differ by a few per cent: the test
    bounds the relative norm of the difference of the two updates.
    """
    from microcinema_core.training.caching import LatentCache
    from microcinema_core.training.trainer import build_model, model_config_for

    init = tiny_run_config(cache, run_a).train
    start = build_model(init, model_config_for(init, LatentCache(cache))).state_dict()
    a = load_file(str(run_a / "tiny.safetensors"))
    b = load_file(str(run_b / "tiny.safetensors"))
    keys = sorted(a)
    ua = torch.cat([(a[k] - start[k]).flatten() for k in keys])
    ub = torch.cat([(b[k] - start[k]).flatten() for k in keys])
    rel = float((ua - ub).norm() / ub.norm())
    print(f"update norm {float(ub.norm()):.3e}, largest element {float(ub.abs().max()):.3e}, "
          f"relative difference {rel:.2e}, largest element difference {float((ua - ub).abs().max()):.2e}")
    assert float(ub.abs().max()) > 1e-3      # the steps really moved the weights
    assert rel < 1e-3
    assert float((ua - ub).abs().max()) < 0.1 * float(ub.abs().max())


def test_fsdp_two_processes_with_a_resume_match_one_process(tmp_path):
    """FSDP2 over 2 Gloo processes, stopped after step 1 and resumed, equals one plain process."""
    cache = build_test_cache(tmp_path / "data", count=4, num_frames=5)
    common = dict(max_steps=2, warmup_steps=1, lr=1e-3, grad_clip=0.5, log_every=1)
    fsdp = _write_config(tmp_path / "fsdp.json", tiny_run_config(cache, tmp_path / "fsdp", batch_size=1,
                                                                 parallel="fsdp", **common))
    one = tiny_run_config(cache, tmp_path / "one", batch_size=2, **common)
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
              "-m", "microcinema_core.train", "--config", str(fsdp), "--device", "cpu"]
    _run(launch + ["--stop-at", "1"])
    assert not (tmp_path / "fsdp" / "tiny.safetensors").exists()
    _run(launch)
    assert read_metrics(tmp_path / "fsdp" / "metrics.jsonl", event="resume")
    from microcinema_core.training.trainer import train

    train(one)
    assert_same_update(cache, tmp_path / "fsdp", tmp_path / "one")


def test_a_bare_cuda_device_gets_this_process_gpu_index():
    """``--device cuda`` reached ``torch.cuda.set_device("cuda")``, which needs an index (it failed on an H200,
    docs/benchmarks.md); the index is the process's LOCAL_RANK, an explicit one is kept, the CPU stays the CPU."""
    from microcinema_core.training.distributed import process_device

    assert process_device("cuda", local_rank=0) == torch.device("cuda", 0)
    assert process_device("cuda", local_rank=3) == torch.device("cuda", 3)
    assert process_device("cuda:1", local_rank=3) == torch.device("cuda", 1)
    assert process_device("cpu", local_rank=2) == torch.device("cpu")
    if not torch.cuda.is_available():
        assert process_device(None, local_rank=1) == torch.device("cpu")
