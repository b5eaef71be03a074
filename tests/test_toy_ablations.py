"""The toy-scale ablation runner (tab. 2, fig. 6, app. fig. 5, TSR vs RIFE vs blend) on a smoke bundle."""
from __future__ import annotations

import json
import math

import pytest

from microcinema_core.experiments import ablations, bundle
from microcinema_core.toyworld.sources import load_or_gather
from microcinema_core.weights.checkpoint import read_checkpoint_config


@pytest.fixture(scope="module")
def smoke_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation_bundle")
    load_or_gather(out / "sources.npz")
    # what the rows need: the sources, a VAE and the base cache (the TSR comparison uses the shipped toy files)
    assert bundle.main(["--out", str(out), "--profile", "smoke", "--device", "cpu", "--stop-after", "cache_base"]) == 0
    return out


def test_rows_train_from_scratch_measure_and_report(smoke_bundle, tmp_path, monkeypatch):
    # fewer sampling steps than the real protocol's 20 and 5 / 50 (the plan records what a run used)
    monkeypatch.setattr(ablations, "STEPS", 2)
    monkeypatch.setattr(ablations, "FEW_STEPS", (1, 3))
    out, report = tmp_path / "abl", tmp_path / "report"
    # no shipped base as a yardstick: the shipped files are 128 px like the smoke rows, and measuring them is slow
    argv = ["--bundle", str(smoke_bundle), "--out", str(out), "--budget", "smoke", "--rows", "concat,add_encdec_spade",
            "--skip-tsr", "--shipped-base", ""]
    assert ablations.main([*argv, "--report", str(report)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["rows"]) == ["concat", "add_encdec_spade"]
    for name, row in results["rows"].items():
        config = read_checkpoint_config(row["checkpoint"])             # the row's own setting, the budget's rest
        assert (config.injection, config.noise_prior_lambda, config.prediction) == (
            ablations.ROWS[name]["injection"], ablations.ROWS[name]["noise_prior_lambda"], "v")
        main = row["main"]
        assert main["videos"] == ablations.BUDGETS["smoke"].videos
        assert math.isfinite(main["fvd"]) and main["fvd"] >= 0 and 0 <= main["agreement"] <= 1
    spade = results["rows"]["add_encdec_spade"]
    assert [s["gamma"] for s in spade["gamma_sweep"]] == list(ablations.GAMMAS)
    assert [(s["steps"], s["lambda_at_sampling"]) for s in spade["few_steps"]] == [(1, 0.03), (1, 0.0), (3, 0.03), (3, 0.0)]
    assert json.loads((out / "plan.json").read_text())["sampling"]["few_steps"] == [1, 3]
    assert "gamma_sweep" not in results["rows"]["concat"]
    refs = results["references"]          # yardsticks on the same cases (no shipped base: --shipped-base "")
    assert set(refs) == {"vae_roundtrip", "frozen_keyframe", "add_encdec_spade_seed_1"}
    assert refs["frozen_keyframe"]["mean_flow_px"] < 1e-3 and refs["frozen_keyframe"]["centre_psnr_db"] == pytest.approx(100)
    assert refs["vae_roundtrip"]["videos"] == ablations.BUDGETS["smoke"].videos
    tables = (report / "tables.md").read_text()
    assert "| concat | concat | 0.03 |" in tables and "| frozen_keyframe |" in tables and "Few steps" in tables and "Gamma sweep" in tables
    assert (report / "gamma_sweeps.png").stat().st_size > 0
    # the same command again: nothing retrained or re-measured
    stamp = (out / "add_encdec_spade" / "microcinema_toy_base.safetensors").stat().st_mtime_ns
    assert ablations.main(argv) == 0
    assert (out / "add_encdec_spade" / "microcinema_toy_base.safetensors").stat().st_mtime_ns == stamp
    assert json.loads((out / "results.json").read_text())["rows"] == results["rows"]


def test_a_changed_budget_is_refused(tmp_path, capsys):
    ablations.fix_plan(tmp_path, "smoke", ("concat",))
    fixed = json.loads((tmp_path / "plan.json").read_text())
    with pytest.raises(ablations.PlanChanged, match="Use another --out folder"):
        ablations.fix_plan(tmp_path, "cpu", ("concat",))
    assert json.loads((tmp_path / "plan.json").read_text()) == fixed     # the plan on disk is untouched
    assert ablations.main(["--out", str(tmp_path), "--budget", "cpu", "--rows", "concat", "--bundle", "nowhere"]) == 2
    assert "fixes budget 'smoke'" in capsys.readouterr().err


def test_tsr_comparison_on_the_shipped_toy_files(smoke_bundle):
    from pathlib import Path

    from microcinema_core.experiments.evaluate import load_bundle

    _, tsr, vae, text = load_bundle(Path(__file__).resolve().parent.parent / "models")
    sources = load_or_gather(smoke_bundle / "sources.npz")
    results = ablations.tsr_comparison(tsr, vae, text, sources, count=1)
    for source in ("toy_heldout", "real_carphone"):
        r = results[source]
        assert r["clips"] == 1 and set(r) == {"clips", "tsr", "rife", "blend", "latent_blend", "truth"}
        for method in ("tsr", "rife", "blend", "latent_blend"):
            assert 5 < r[method]["psnr"] < 60 and 0 < r[method]["ssim"] <= 1
        assert all(0 <= r[m]["warp_error"] < 1 for m in r if m != "clips")
    # the report's TSR table
    table = ablations.markdown({"budget_name": "smoke", "budget": {}, "sampling": {}}, {"tsr": results})
    assert "| real_carphone | rife |" in table and "| toy_heldout | truth |" in table


def test_rows_train_in_the_cpu_recipes_precision_on_a_cpu_and_bf16_on_a_gpu(tmp_path):
    """The cpu recipe's fp32 is a CPU measurement (docs/training.md); a row run on a GPU keeps "auto" (bf16)."""
    from microcinema_core.experiments.ablations import BUDGETS, row_run

    on_cpu = row_run("concat", BUDGETS["cpu"], tmp_path, tmp_path / "rows", "cpu").train
    on_gpu = row_run("concat", BUDGETS["gpu"], tmp_path, tmp_path / "rows", "cuda:0").train
    assert (on_cpu.precision, on_gpu.precision) == ("fp32", "auto")
