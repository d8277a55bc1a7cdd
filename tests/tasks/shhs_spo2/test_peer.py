"""The ODI peer of shhs_spo2: cut-off fitting, probabilities, one night's ODI from its EDF, and
the rows it adds on the model's test nights."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from sleepbench.config import load_config
from sleepbench.io.edf_write import write_edf
from sleepbench.metrics import flatten_metric_dict
from sleepbench.metrics.severity import collapse_probs_at_cutoff
from sleepbench.recording import Signal
from sleepbench.tasks.shhs_spo2.data import ShhsSpO2DataModule
from sleepbench.tasks.shhs_spo2.module import BINARY_CUTOFFS, _test_metrics
from sleepbench.tasks.shhs_spo2.peer import (
    OdiPeer,
    fit_cutoffs,
    grade,
    night_odi,
    odi_probs,
    peer_model_name,
    run_odi_peer,
)
from sleepbench.tasks.shhs_spo2.synth import write_synthetic_shhs

PRE = {
    "spo2_channels": ["SaO2", "SpO2"],
    "artefact_low": 50.0,
    "artefact_high": 100.0,
    "target_fs_hz": 1.0,
    "n_samples": 7200,
}


# ---------------------------------------------------------------------------- fitting


def test_fit_finds_separating_cutoffs() -> None:
    scores = np.array([0.5, 1.0, 1.5, 4.0, 5.0, 6.0, 10.0, 12.0, 20.0, 30.0, 40.0])
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3])
    cuts, acc, kappa = fit_cutoffs(scores, labels)
    assert acc == 1.0 and kappa == pytest.approx(1.0)
    assert 1.5 < cuts[0] < 4.0 and 6.0 < cuts[1] < 10.0 and 12.0 < cuts[2] < 20.0
    np.testing.assert_array_equal(grade(scores, cuts), labels)


def test_fit_is_monotone_and_handles_overlap_and_missing_classes() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    s = np.exp(0.9 * y + rng.normal(0.0, 0.6, 400))
    cuts, acc, kappa = fit_cutoffs(s, y)
    assert list(cuts) == sorted(cuts)
    assert acc == pytest.approx(np.mean(grade(s, cuts) == y))
    # in-sample optimum: at least as good as the true class centres' midpoints
    naive = np.exp(0.9 * np.array([0.5, 1.5, 2.5]))
    assert acc >= np.mean(grade(s, naive) == y)
    # no "mild" night: an empty class is allowed (two equal cut-offs or an unused interval)
    keep = y != 1
    cuts2, acc2, _ = fit_cutoffs(s[keep], y[keep])
    assert acc2 >= 0.7 and list(cuts2) == sorted(cuts2)


def test_fit_binary_and_kappa_objective() -> None:
    s = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    y = np.array([0, 0, 1, 0, 1, 1])
    (cut,), acc, _ = fit_cutoffs(s, y, n_classes=2)
    assert acc == pytest.approx(5 / 6) and cut in (2.5, 4.5)
    # kappa rewards the minority classes: unbalanced labels, accuracy and kappa disagree
    s = np.arange(10.0)
    y = np.array([0, 0, 0, 0, 0, 0, 0, 1, 0, 1])
    _, acc_a, kappa_a = fit_cutoffs(s, y, 2, "acc")
    _, acc_k, kappa_k = fit_cutoffs(s, y, 2, "kappa")
    assert acc_a >= acc_k and kappa_k >= kappa_a
    with pytest.raises(ValueError, match="no training scores"):
        fit_cutoffs(np.zeros(0), np.zeros(0, dtype=int))


def test_probabilities_keep_the_grade_and_rank_by_the_odi() -> None:
    rng = np.random.default_rng(1)
    odi = np.sort(rng.gamma(1.5, 8.0, 200))
    cuts = (3.0, 9.0, 20.0)
    p = odi_probs(odi, cuts)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert p.min() >= 0.0
    np.testing.assert_array_equal(p.argmax(axis=1), grade(odi, cuts))
    for cls in (1, 2, 3):
        collapsed = collapse_probs_at_cutoff(torch.as_tensor(p), cls).numpy()
        assert np.all(np.diff(collapsed) > 0)  # strictly rising with the ODI
        assert (collapsed >= 0.5).tolist() == (odi >= cuts[cls - 1]).tolist()
    # so any AUROC of a collapsed probability is that of the ODI itself
    y = (odi + rng.normal(0, 8, odi.size) > 15).astype(int)
    collapsed = collapse_probs_at_cutoff(torch.as_tensor(p), 2).numpy()
    assert roc_auc_score(y, collapsed) == pytest.approx(roc_auc_score(y, odi))
    binary = odi_probs(odi, (5.0,))
    assert binary.shape == (200, 2) and (binary.argmax(1) == (odi >= 5.0)).all()


def test_settings_from_config() -> None:
    cfg = load_config("shhs_spo2", [])
    peer = OdiPeer.from_cfg(cfg)
    assert peer.drops == (3.0, 4.0) and peer.cutoffs == ("ahi", "fitted") and peer.enabled
    assert peer_model_name(3.0, "ahi") == "ODI3 (AHI cut-offs)"
    assert peer_model_name(4.0, "fitted") == "ODI4 (fitted cut-offs)"
    with pytest.raises(ValueError, match="peer.cutoffs"):
        OdiPeer.from_cfg({"peer": {"cutoffs": ["aasm"]}})


# ---------------------------------------------------------------------------- one night


def _edf(path: Path, spo2: np.ndarray, fs: float = 1.0) -> Path:
    return write_edf(
        path,
        [Signal("SpO2", spo2.astype(np.float32), fs, "%")],
        start=dt.datetime(2000, 1, 1, 22, 0, 0),
        record_duration_s=1.0,
        physical_ranges={"SpO2": (0.0, 100.0)},
    )


def test_night_odi_from_the_edf(tmp_path: Path) -> None:
    """3 h at 96 %: 25 dips of 20 s every 280 s in the first 2 h (the model's window here),
    alternately 5 % and 3.5 % deep, 12 more of 5 % in the third hour (outside the window), and a
    10-min probe-off (0 %) stretch over three of the first dips, interpolated to nothing."""
    x = np.full(3 * 3600, 96.0)
    for k, start in enumerate(range(200, 7000, 280)):  # k = 0..24
        x[start : start + 20] -= 5.0 if k % 2 == 0 else 3.5
    for start in range(7400, 10700, 280):
        x[start : start + 20] -= 5.0
    x[3000:3600] = 0.0  # hides the dips k = 10, 11, 12
    odi, hours = night_odi(_edf(tmp_path / "n.edf", x), PRE, OdiPeer())
    assert hours == pytest.approx(2.0)
    # 5 % dips: 13 (k even) - 2 hidden; 3.5 % dips: 12 (k odd) - 1 hidden
    assert odi == {3.0: pytest.approx(22 / 2.0), 4.0: pytest.approx(11 / 2.0)}
    # a 4-Hz channel gives the same ODI
    odi4hz, _ = night_odi(_edf(tmp_path / "n4.edf", np.repeat(x, 4), 4.0), PRE, OdiPeer())
    assert odi4hz == pytest.approx(odi)
    # a stricter minimum duration drops the 20-s dips; the whole night when the window is longer
    assert night_odi(tmp_path / "n.edf", PRE, OdiPeer(min_duration_s=25))[0] == {3.0: 0.0, 4.0: 0.0}
    whole, hours = night_odi(tmp_path / "n.edf", PRE | {"n_samples": 28800}, OdiPeer())
    assert hours == pytest.approx(3.0) and whole[4.0] == pytest.approx((11 + 12) / 3.0)


# ---------------------------------------------------------------------------- the rows


@pytest.fixture(scope="module")
def peer_run(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("peer")
    root = tmp / "data"
    write_synthetic_shhs(root, n_subjects=40, hours=1.0, seed=2)
    cfg = load_config(
        "shhs_spo2",
        [
            f"data.root={root}",
            f"data.cache_dir={tmp / 'cache'}",
            f"output.splits_dir={tmp / 'splits'}",
            "preprocess.n_samples=3600",
            "data.build_workers=1",
            "balance.method=none",
            "split.test_fraction=0.2",
        ],
    )
    dm = ShhsSpO2DataModule(cfg)
    dm.setup("fit")
    result = {
        "task": "shhs_spo2",
        "protocol": "shhs1_holdout",
        "fold": 0,
        "seed": 42,
        "config_hash": "abc123",
        "git_sha": "none",
        "config": {},
    }
    rows = run_odi_peer(cfg, dm, result, tmp / "run")
    return cfg, dm, rows, tmp / "run" / "odi_peer"


def _model_metric_names() -> set[str]:
    """The names the model's own test metrics log (both test sets, severity4)."""
    rng = np.random.default_rng(0)
    probs = torch.as_tensor(rng.dirichlet(np.ones(4), 8), dtype=torch.float32)
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    names = set()
    for prefix in ("test/", "test/shhs2_"):
        metrics = _test_metrics(prefix, "severity4")
        metrics["severity"].update(probs, y)
        for ahi, cls in BINARY_CUTOFFS.items():
            metrics[f"ahi{ahi}"].update(collapse_probs_at_cutoff(probs, cls), (y >= cls).long())
        for metric in metrics.values():
            out = metric.compute()
            names |= set(flatten_metric_dict({k: v for k, v in out.items() if "confmat" not in k}))
    return names


def test_four_rows_with_the_models_metric_names(peer_run) -> None:
    _, _, rows, _ = peer_run
    assert [r["model"] for r in rows] == [
        "ODI3 (AHI cut-offs)",
        "ODI3 (fitted cut-offs)",
        "ODI4 (AHI cut-offs)",
        "ODI4 (fitted cut-offs)",
    ]
    names = _model_metric_names()
    assert {"test/acc", "test/kappa", "test/ahi5_auroc", "test/shhs2_f1_macro"} <= names
    for row in rows:
        assert set(row["metrics"]) == names
        assert row["task"] == "shhs_spo2" and row["protocol"] == "shhs1_holdout"
        assert row["key"] == f"shhs_spo2/{row['model']}/shhs1_holdout/fold0/seed42/abc123"
        assert 0.0 <= row["metrics"]["test/acc"] <= 1.0


def test_rows_are_tagged_with_what_they_were_fitted_on(peer_run) -> None:
    _, dm, rows, out = peer_run
    by_model = {r["model"]: r for r in rows}
    ahi = by_model["ODI3 (AHI cut-offs)"]
    fitted = by_model["ODI3 (fitted cut-offs)"]
    assert ahi["protocol_tags"]["fitted_on"].startswith("nothing")
    assert ahi["protocol_tags"]["cutoffs"] == "5 / 15 / 30 events/h" and ahi["n_params"] == 0
    assert fitted["protocol_tags"]["fitted_on"].startswith(f"{len(dm.split.train)} SHHS1 training")
    assert fitted["n_params"] == 3
    cut = json.loads((out / "cutoffs.json").read_text())
    assert cut["ODI3 (AHI cut-offs)"]["cutoffs"] == [5.0, 15.0, 30.0]
    fitted_cuts = cut["ODI3 (fitted cut-offs)"]["cutoffs"]
    assert fitted_cuts == sorted(fitted_cuts)
    # the AUROCs are the ODI's own: the same for both cut-off rows of one threshold
    assert ahi["metrics"]["test/ahi15_auroc"] == pytest.approx(
        fitted["metrics"]["test/ahi15_auroc"]
    )


def test_rows_score_exactly_the_models_test_nights(peer_run) -> None:
    _, dm, rows, out = peer_run
    per_record = json.loads((out / "per_record.json").read_text())
    tested = [dm.store.records[i].record_id for i in dm.test_set.index.record]
    assert sorted(r["record"] for r in per_record) == sorted(tested)
    assert {r["visit"] for r in per_record} == {1, 2}
    cuts = json.loads((out / "cutoffs.json").read_text())
    for row in rows:
        model = row["model"]
        drop, mode = model[3], "ahi" if "AHI" in model else "fitted"
        shhs1 = [r for r in per_record if r["visit"] == 1]
        shhs2 = [r for r in per_record if r["visit"] == 2]
        pred = grade(np.array([r[f"odi{drop}"] for r in shhs1]), cuts[model]["cutoffs"])
        assert [r[f"pred_odi{drop}_{mode}"] for r in shhs1] == pred.tolist()
        acc1 = np.mean(pred == [r["target"] for r in shhs1])
        acc2 = np.mean([r[f"pred_odi{drop}_{mode}"] == r["target"] for r in shhs2])
        assert row["metrics"]["test/acc"] == pytest.approx(acc1)
        assert row["metrics"]["test/shhs2_acc"] == pytest.approx(acc2)
    assert (out / "odi_vs_ahi.png").stat().st_size > 1000
    assert json.loads((out / "confusion_matrix.json").read_text())


def test_disabled_or_binary(peer_run, tmp_path) -> None:
    cfg, dm, _, _ = peer_run
    off = copy.deepcopy(cfg)
    off.peer.enabled = False
    assert run_odi_peer(off, dm, {}, tmp_path) == []
    binary = copy.deepcopy(cfg)
    binary.task_variant = "binary15"
    binary.peer.drops = [3.0]
    result = {"task": "shhs_spo2", "protocol": "p", "fold": 0, "seed": 1, "config_hash": "x"}
    rows = run_odi_peer(binary, dm, result | {"git_sha": "", "config": {}}, tmp_path)
    assert [r["protocol_tags"]["cutoffs"] for r in rows][0] == "15 events/h"
    assert rows[1]["n_params"] == 1
    assert "test/ahi15_acc" in rows[0]["metrics"] and "test/acc" not in rows[0]["metrics"]
