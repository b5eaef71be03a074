"""The subject-driven evaluation's report: re-scoring the copy test at another threshold from the kept PSNRs."""
from __future__ import annotations

import json

import pytest

from microcinema_core.experiments import evaluate_custom as E


def _results(psnrs, pasted, target):
    records = [{"paste_psnr_db": v, "copy": False, "subject_sim": 0.6, "other_subject_sim": 0.5} for v in psnrs]
    row = {"copy_rate": 0.0, "records": records, "subject_sim": 0.6, "other_subject_sim": 0.5, "subject_wins": 1.0,
           "motion_agreement": 0.5, "scene_sim": 0.4, "other_scene_sim": 0.4, "scene_wins": 0.5}
    controls = {"pasted_psnr_list": pasted, "target_psnr_list": target, "pasted_psnr_db": sum(pasted) / len(pasted),
                "target_psnr_db": sum(target) / len(target), "pasted_psnr_min_db": min(pasted),
                "target_psnr_max_db": max(target), "pasted_flagged": 0.0, "target_flagged": 0.0, "threshold_db": 0.0}
    return {"models": {"shipped": row}, "copy_test_controls": controls}


def test_rescoring_flags_the_videos_and_controls_at_or_above_the_threshold():
    results = E.rescore_copy(_results([10.0, 17.4, 25.0, 16.0], [24.0, 18.0], [11.0, 17.0]), threshold_db=17.4)
    row, controls = results["models"]["shipped"], results["copy_test_controls"]
    assert [r["copy"] for r in row["records"]] == [False, True, True, False]
    assert row["copy_rate"] == 0.5
    assert (controls["pasted_flagged"], controls["target_flagged"], controls["threshold_db"]) == (1.0, 0.0, 17.4)


def test_a_control_without_its_per_case_list_is_refused_where_its_extremes_do_not_decide():
    results = _results([10.0], [24.0, 17.0], [11.0, 12.0])
    del results["copy_test_controls"]["pasted_psnr_list"]
    with pytest.raises(ValueError, match="run the evaluation again"):
        E.rescore_copy(results, threshold_db=17.4)   # the lowest paste (17.0) is under the threshold: undecidable


def test_the_rescore_command_rewrites_results_and_tables(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(_results([20.0, 10.0], [24.0], [11.0])))
    assert E.main(["--rescore-copy", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["models"]["shipped"]["copy_rate"] == 0.5
    table = (tmp_path / "tables.md").read_text()
    assert "| shipped |" in table and "| 50.0 % |" in table and f"threshold {E.COPY_PSNR_DB} dB" in table
