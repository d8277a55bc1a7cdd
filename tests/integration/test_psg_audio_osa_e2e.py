"""psg_audio_osa end to end on a tiny synthetic PSG-Audio set: train.run -> CRNN row + acoustic
peer row on the same nights -> leaderboard with the paper's numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from sleepbench.config import isolated_outputs
from sleepbench.leaderboard import build_tables
from sleepbench.results import ResultsStore
from sleepbench.train import run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    tmp = tmp_path_factory.mktemp("psga_e2e")
    rows = run(
        "psg_audio_osa",
        [
            *isolated_outputs(tmp),
            "protocol=psga_holdout",
            "synthetic.n_subjects=12",
            "synthetic.minutes=4",
            "synthetic.part_s=120",
            "trainer.max_epochs=1",
            "plots.max_nights=1",
        ],
    )
    return tmp, rows


def test_crnn_and_peer_rows_score_the_same_nights(trained) -> None:
    _, rows = trained
    assert [r["model"] for r in rows] == ["DualStreamCRNN", "AcousticEnvelope"]
    crnn, peer = rows
    for row in rows:
        m = row["metrics"]
        assert 0.0 <= m["test/f1_macro"] <= 1.0
        assert m["test/n_nights"] == crnn["data"]["n_test_records"]
        assert row["data"]["synthetic"] is True
    assert crnn["metrics"]["test/n_frames_scored"] == peer["metrics"]["test/n_frames_scored"]
    assert crnn["protocol_tags"]["eval"].startswith("night")
    assert crnn["reference"]["metrics"]["f1_macro"] == pytest.approx(0.64)
    assert crnn["n_params"] == 109_827  # the small CPU size of the synthetic default


def test_artifacts_and_leaderboard(trained) -> None:
    tmp, _ = trained
    run_dir = next((tmp / "runs" / "psg_audio_osa" / "psga_holdout").iterdir())
    assert list(run_dir.glob("*.png")), "a per-night figure is saved with the run"
    tables = build_tables(ResultsStore(tmp / "results.jsonl"))
    task_table = next(t for t in tables if t[0] == "psg_audio_osa")
    models = [r[0] for r in task_table[2]]
    assert "DualStreamCRNN" in models and "AcousticEnvelope" in models
    assert any(m.startswith("paper") for m in models)
