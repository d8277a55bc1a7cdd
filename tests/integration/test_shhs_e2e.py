"""shhs_spo2 end to end on a tiny synthetic NSRR set: train.run -> result row -> leaderboard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sleepbench.config import isolated_outputs
from sleepbench.leaderboard import build_tables
from sleepbench.results import ResultsStore
from sleepbench.train import run

pytestmark = pytest.mark.integration


def _overrides(tmp: Path) -> list[str]:
    return [
        *isolated_outputs(tmp),
        "synthetic.n_subjects=16",
        "synthetic.hours=1.0",
        "preprocess.n_samples=3600",
        "model.channels=[4,8,16]",
        "model.lstm_hidden=8",
        "model.fusion_hidden=16",
        "trainer.max_epochs=2",
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("shhs_e2e")
    rows = run("shhs_spo2", _overrides(tmp))
    assert len(rows) == 5 and rows[0]["model"] == "MSC-Mamba-LSTM"  # + four ODI peer rows
    return tmp, rows[0]


def test_result_row_carries_both_test_sets_and_the_overlap(trained) -> None:
    tmp, row = trained
    m = row["metrics"]
    for key in ("acc", "kappa", "f1_macro", "sens_macro", "spec_macro", "prec_macro"):
        assert 0.0 <= m[f"test/{key}"] <= 1.0 or key == "kappa"
        assert f"test/shhs2_{key}" in m
    for ahi in (5, 15):
        for key in ("acc", "sens", "spec", "f1", "auroc"):
            assert f"test/ahi{ahi}_{key}" in m and f"test/shhs2_ahi{ahi}_{key}" in m
    assert {f"test/auroc_{c}" for c in ("normal", "mild", "moderate", "severe")} <= set(m)
    data = row["data"]
    assert data["synthetic"] is True and data["n_test_shhs2_records"] > 0
    assert data["balance"]["method"] == "smote"
    assert data["labels"]["class_agreement"] == 1.0
    notes = data["split_notes"]
    assert (
        int(notes["shhs2_overlap_train"]) > 0
        and "SHHS1 night in training" in notes["shhs2_overlap"]
    )
    tags = row["protocol_tags"]
    assert tags["shhs2_in_shhs1_train"].startswith(notes["shhs2_overlap_train"] + "/")
    assert tags["task_variant"] == "severity4" and tags["smoothing"] == "adaptive"
    assert row["reference"]["metrics"]["acc"] == pytest.approx(0.8051)


def test_artifacts_and_leaderboard(trained) -> None:
    tmp, row = trained
    run_dir = next((tmp / "runs" / "shhs_spo2" / "shhs1_holdout").iterdir())
    confmats = json.loads((run_dir / "confusion_matrix.json").read_text())
    assert set(confmats) == {
        f"{s}/{k}" for s in ("shhs1_test", "shhs2") for k in ("severity", "ahi5", "ahi15")
    }
    severity = confmats["shhs1_test/severity"]
    assert severity["labels"] == ["normal", "mild", "moderate", "severe"]
    assert sum(map(sum, severity["rows=target,cols=pred"])) == row["data"]["n_test_records"]
    per_record = json.loads((run_dir / "per_record.json").read_text())
    assert len(per_record) == row["data"]["n_test_records"] + row["data"]["n_test_shhs2_records"]
    assert {r["visit"] for r in per_record} == {1, 2}
    tables = build_tables(ResultsStore(tmp / "results.jsonl"))
    task_table = next(t for t in tables if t[0] == "shhs_spo2")
    assert "shhs2_acc" in task_table[1]
    assert any(r[0].startswith("paper") for r in task_table[2])


def test_a_failing_peer_keeps_the_model_row(trained, monkeypatch, caplog) -> None:
    """A peer that raises is logged; the model's row (hours of training) is still stored."""
    tmp, _ = trained

    def broken_peer(*args, **kwargs):
        raise RuntimeError("peer exploded")

    monkeypatch.setattr("sleepbench.tasks.shhs_spo2.peer.run_odi_peer", broken_peer)
    other = tmp / "failing_peer"
    overrides = [
        *_overrides(tmp),
        f"output.results={other / 'results.jsonl'}",
        f"output.runs_dir={other / 'runs'}",
        "trainer.max_epochs=1",
    ]
    with caplog.at_level("ERROR"):
        rows = run("shhs_spo2", overrides)
    assert [r["model"] for r in rows] == ["MSC-Mamba-LSTM"]
    assert len(list(ResultsStore(other / "results.jsonl"))) == 1
    assert "peer rows failed" in caplog.text and "peer exploded" in caplog.text
