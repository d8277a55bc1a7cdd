"""Classical apnea_ecg peer: beats the majority rate, same minutes and metrics as the model."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import wfdb
from omegaconf import DictConfig

from sleepbench.config import load_config
from sleepbench.errors import ConfigError
from sleepbench.tasks.apnea_ecg.data import ApneaECGDataModule, read_ecg_record
from sleepbench.tasks.apnea_ecg.peer import ClassicalPeer, record_peaks, run_classical_peer
from sleepbench.tasks.apnea_ecg.scoring import MinuteScoring, score_minutes
from sleepbench.tasks.apnea_ecg.synth import write_synthetic_apnea_ecg

RESULT = {
    "task": "apnea_ecg",
    "protocol": "official",
    "fold": 0,
    "seed": 42,
    "config_hash": "abc",
    "git_sha": "",
    "config": {},
}


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("apnea_peer")
    write_synthetic_apnea_ecg(root, n_released=6, n_withheld=3, minutes=60, seed=0)
    return root


def _cfg(root: Path, tmp: Path, *extra: str) -> DictConfig:
    return load_config(
        "apnea_ecg",
        [
            f"data.root={root}",
            f"data.cache_dir={tmp / 'cache'}",
            f"output.splits_dir={tmp / 'splits'}",
            "data.build_workers=1",
            "trainer.enable_progress_bar=false",
            "split.val_records=1",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def dm(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> ApneaECGDataModule:
    module = ApneaECGDataModule(_cfg(synth_root, tmp_path_factory.mktemp("apnea_peer_cache")))
    module.setup("fit")
    return module


def test_peer_beats_the_majority_rate_on_the_model_test_minutes(
    dm: ApneaECGDataModule, tmp_path: Path
) -> None:
    (row,) = run_classical_peer(dm.cfg, dm, RESULT, tmp_path)
    m = row["metrics"]
    assert row["model"] == "HRV+EDR logistic regression" and row["config_hash"] == "abc"
    assert m["test/acc"] > m["test/majority_acc"] + 0.1
    assert m["test/auroc"] > 0.9 and m["test/index_pearson_r"] > 0.9
    assert {"test/f1", "test/mcc", "test/bal_acc", "test/class_abc_acc", "test/index_mae"} <= set(m)
    tags = row["protocol_tags"]
    assert tags["minutes"] == "identical to the model's test minutes"
    assert tags["fitted_on"].startswith(f"{len(dm.split.train)} training records")
    assert tags["r_peaks"] == "database .qrs annotations" and not tags["leaky"]
    out = tmp_path / "classical_peer"
    confmat = json.loads((out / "confusion_matrix.json").read_text())["rows=target,cols=pred"]
    assert sum(map(sum, confmat)) == len(dm.test_set.index)
    per_record = json.loads((out / "per_record.json").read_text())
    assert sorted(r["record"] for r in per_record) == sorted(dm.split.test)
    minutes = (out / "per_minute.csv").read_text().splitlines()
    assert len(minutes) == 1 + len(dm.test_set.index)
    model = json.loads((out / "model.json").read_text())
    assert set(model["coefficients"]) == set(model["features"]) and row["n_params"] == 14


def test_gboost_fitted_on_training_and_validation(dm: ApneaECGDataModule, tmp_path: Path) -> None:
    cfg = dm.cfg.copy()
    cfg.peer.classifier, cfg.peer.fit_on = "gboost", "train+val"
    (row,) = run_classical_peer(cfg, dm, RESULT, tmp_path)
    assert row["model"] == "HRV+EDR gradient boosting"
    n = len(dm.split.train) + len(dm.split.val)
    assert row["protocol_tags"]["fitted_on"].startswith(f"{n} training and validation records")
    assert row["metrics"]["test/acc"] > row["metrics"]["test/majority_acc"]
    assert row["n_params"] > 0


def test_xqrs_agrees_with_the_qrs_annotations(synth_root: Path) -> None:
    stem = synth_root / "x01"
    ecg = read_ecg_record(stem, 10.0).data
    qrs, src_q = record_peaks(stem, ecg, 100.0, "auto")
    xqrs, src_x = record_peaks(stem, ecg, 100.0, "xqrs")
    assert (src_q, src_x) == ("qrs", "xqrs")
    assert np.array_equal(qrs, np.unique(wfdb.rdann(str(stem), "qrs").sample))
    j = np.clip(np.searchsorted(xqrs, qrs), 1, xqrs.size - 1)
    nearest = np.minimum(np.abs(xqrs[j] - qrs), np.abs(xqrs[j - 1] - qrs))
    assert np.mean(nearest <= 5) > 0.95  # within 50 ms
    assert abs(xqrs.size - qrs.size) < 0.05 * qrs.size


def test_unreadable_records_are_skipped_and_logged(
    synth_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    dm = ApneaECGDataModule(_cfg(root, tmp_path))
    dm.setup("fit")
    # after the cache was built: a test record's signal truncated, a training record's removed
    dat = root / "x02.dat"
    dat.write_bytes(dat.read_bytes()[: dat.stat().st_size // 3])
    (root / f"{dm.split.train[0]}.dat").unlink()
    (root / "x03.qrs").unlink()  # auto: falls back to the detector
    with caplog.at_level(logging.ERROR, logger="sleepbench.tasks.apnea_ecg.peer"):
        (row,) = run_classical_peer(dm.cfg, dm, RESULT, tmp_path)
    assert "x02" in caplog.text and dm.split.train[0] in caplog.text
    assert set(row["data"]["classical_peer_failed"]) == {"x02", dm.split.train[0]}
    n_test = len(dm.test_set.index)
    assert row["protocol_tags"]["minutes"] == (
        f"{n_test - 60} of the model's {n_test} test minutes (1 test records could not be read)"
    )
    assert row["protocol_tags"]["r_peaks"] == "database .qrs annotations + wfdb XQRS detector"
    assert row["protocol_tags"]["fitted_on"].startswith(f"{len(dm.split.train) - 1} training")

    cfg = dm.cfg.copy()
    cfg.peer.detector = "qrs"  # the annotation file is now required
    (row,) = run_classical_peer(cfg, dm, RESULT, tmp_path)
    assert "x03" in row["data"]["classical_peer_failed"]


def test_one_update_scores_as_the_module_batches_do() -> None:
    rng = np.random.default_rng(1)
    record = np.repeat(np.arange(4), 120)
    minute = np.tile(np.arange(120), 4)
    target = (rng.random(record.size) < np.repeat([0.5, 0.2, 0.05, 0.0], 120)).astype(np.int64)
    probs = np.clip(0.6 * target + rng.normal(0.2, 0.25, record.size), 0, 1)
    names = ["x01", "x02", "x03", "x04"]
    whole = score_minutes(probs, target, record, minute, (5, 15, 30), names)
    scoring = MinuteScoring((5, 15, 30))
    for part in np.array_split(rng.permutation(record.size), 7):
        scoring.update(
            torch.as_tensor(probs[part], dtype=torch.float32),
            torch.as_tensor(target[part]),
            torch.as_tensor(record[part]),
            torch.as_tensor(minute[part]),
        )
    batched = scoring.compute(names)
    assert whole[0].keys() == batched[0].keys()
    for k, v in whole[0].items():
        assert v == pytest.approx(batched[0][k], nan_ok=True), k
    assert whole[1] == batched[1] and torch.equal(whole[2], batched[2])
    assert whole[0]["test/majority_acc"] == pytest.approx(max(target.mean(), 1 - target.mean()))


def test_settings_are_checked(synth_root: Path, tmp_path: Path) -> None:
    cfg = _cfg(synth_root, tmp_path, "peer.classifier=gboost", "peer.detector=xqrs")
    assert ClassicalPeer.from_cfg(cfg) == ClassicalPeer(classifier="gboost", detector="xqrs")
    assert ClassicalPeer.from_cfg(DictConfig({})) == ClassicalPeer()
    with pytest.raises(ConfigError, match="peer.classifier"):
        _cfg(synth_root, tmp_path, "peer.classifier=svm")
    with pytest.raises(ValueError, match="peer.fit_on"):
        ClassicalPeer.from_cfg(DictConfig({"peer": {"fit_on": "test"}}))
    assert (
        run_classical_peer(DictConfig({"peer": {"enabled": False}}), None, RESULT, tmp_path) == []
    )
