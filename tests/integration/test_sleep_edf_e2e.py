"""sleep_edf end to end on a tiny synthetic set: TinyUStaging and YASA rows, hypnogram figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sleepbench.cache.store import CacheStore
from sleepbench.config import isolated_outputs
from sleepbench.data.splits import Split
from sleepbench.results import ResultsStore
from sleepbench.train import run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    tmp = tmp_path_factory.mktemp("sleep_edf_e2e")
    overrides = [
        *isolated_outputs(tmp),
        "data.synthetic=true",
        "synthetic.n_subjects=5",
        "synthetic.nights_per_subject=1",
        "synthetic.minutes=40",
        "data.seq_epochs=5",
        "data.train_sequences_per_epoch=16",
        "preprocess.trim_wake_min=10",
        "trainer.max_epochs=1",
    ]
    return tmp, run("sleep_edf", overrides)


def test_model_and_yasa_rows(rows: tuple[Path, list[dict]]) -> None:
    tmp, result = rows
    assert [r["model"] for r in result] == ["TinyUStaging", "YASA"]
    ours, yasa = result
    for key in ("task", "protocol", "fold", "seed", "config_hash"):
        assert ours[key] == yasa[key]
    assert ours["protocol"] == "sedf20_5fold" and ours["data"]["synthetic"] is True
    for row in result:
        tags = row["protocol_tags"]
        assert tags["wake_trim"] == "±10 min around sleep" and tags["night_list"] == "synthetic"
        m = row["metrics"]
        for key in ("acc", "f1_macro", "kappa", "subj_acc", "subj_f1_macro", "subj_kappa"):
            assert np.isfinite(m[f"test/{key}"]), key
        for name in ("W", "REM", "N1", "N2", "N3"):
            assert f"test/f1_{name}" in m
    assert "YASA" in yasa["protocol_tags"]["pretrained"]
    assert yasa["protocol_tags"]["nights"].startswith("identical")
    assert len(list(ResultsStore(tmp / "results.jsonl"))) == 2

    # both rows scored exactly the scored epochs of the test nights, each once
    cache = next((tmp / "cache").glob("sleep_edf-*.h5"))
    store = CacheStore(cache)
    split = Split.load(next((tmp / "splits").glob("sleep_edf-sedf20_5fold-fold0-*.json")))
    scored = sum(int((store.read(store.index_of(r), "y") != 5).sum()) for r in split.test)
    assert ours["metrics"]["test/n_epochs_scored"] == yasa["metrics"]["test/n_epochs_scored"]
    assert ours["metrics"]["test/n_epochs_scored"] == scored > 0


def test_hypnograms_and_artifacts_saved(rows: tuple[Path, list[dict]]) -> None:
    tmp, result = rows
    run_dir = next((tmp / "runs" / "sleep_edf" / "sedf20_5fold").iterdir())
    split = Split.load(next((tmp / "splits").glob("sleep_edf-*.json")))
    for rid in split.test:
        for folder in (run_dir, run_dir / "yasa"):
            png = folder / f"hypnogram_{rid}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    predictions = json.loads((run_dir / "predictions.json").read_text())
    assert set(predictions["nights"]) == set(split.test)
    confmat = np.array(
        json.loads((run_dir / "confusion_matrix.json").read_text())["rows=reference,cols=predicted"]
    )
    assert confmat.sum() == result[0]["metrics"]["test/n_epochs_scored"]
    assert (run_dir / "yasa" / "per_subject.json").exists()
