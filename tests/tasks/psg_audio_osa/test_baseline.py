"""The training-free acoustic baseline: envelope deficit, threshold search, and its result row."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import scipy.signal
from omegaconf import OmegaConf
from sklearn.metrics import f1_score

from sleepbench.tasks.psg_audio_osa.baseline import (
    MODEL_NAME,
    EnvelopeRule,
    envelope_deficit_db,
    fit_thresholds,
    frame_energy_db,
    label_frames,
    run_acoustic_baseline,
)

pytestmark = pytest.mark.filterwarnings("ignore:The ``compute`` method")


def test_label_frames_by_hand() -> None:
    d = np.array([np.nan, -1.0, 2.9, 3.0, 5.0, 6.0, 9.0])
    assert label_frames(d, 6.0, 3.0).tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert label_frames(d, 6.0, 6.0).tolist() == [0, 0, 0, 0, 0, 2, 2]  # no hypopnea band


def test_deficit_finds_a_drop_and_ignores_unscored_frames() -> None:
    n = round(600 / 0.08)
    energy = np.full(n, -30.0)
    drop = slice(round(300 / 0.08), round(320 / 0.08))
    energy[drop] -= 10.0
    mask = np.ones(n, bool)
    mask[: round(100 / 0.08)] = False
    energy[~mask] = -80.0  # a recording gap: silence that is not an apnea
    rule = EnvelopeRule(smooth_s=3.0, baseline_s=120.0, quantile=0.5)
    d = envelope_deficit_db(energy, mask, rule)
    assert np.isnan(d[~mask]).all()
    inner = slice(drop.start + 40, drop.stop - 40)  # away from the smoothing edges
    np.testing.assert_allclose(d[inner], 10.0, atol=1e-9)
    far = np.r_[round(110 / 0.08) : round(250 / 0.08), round(400 / 0.08) : n]
    np.testing.assert_allclose(d[far], 0.0, atol=1e-9)  # the gap did not lower the baseline


def test_fit_thresholds_is_the_best_pair_of_the_grid() -> None:
    rng = np.random.default_rng(0)
    targets = [np.repeat(rng.integers(0, 3, 40), 25) for _ in range(3)]
    deficits = [
        np.where(rng.random(t.size) < 0.1, np.nan, 4.0 * t + rng.normal(0, 2.0, t.size))
        for t in targets
    ]
    grid = np.arange(1.0, 11.0, 1.0)
    apnea, hypopnea, best = fit_thresholds(deficits, targets, grid)

    d, t = np.concatenate(deficits), np.concatenate(targets)
    ok = np.isfinite(d)

    def macro(a, h):
        return f1_score(t[ok], label_frames(d[ok], a, h), labels=[0, 1, 2], average="macro")

    brute = max(macro(a, h) for a, h in itertools.product(grid, grid) if h <= a)
    assert best == pytest.approx(brute)
    assert macro(apnea, hypopnea) == pytest.approx(best)
    assert hypopnea <= apnea


def make_cfg(mode: str = "night", enabled: bool = True) -> OmegaConf:
    return OmegaConf.create(
        {
            "task": "psg_audio_osa",
            "protocol": "psgaudio_70_15_15",
            "fold": 0,
            "seed": 42,
            "eval": {"mode": mode},
            "plots": {"nights": True, "max_nights": 1},
            "baseline": {
                "enabled": enabled,
                "smooth_s": 3.0,
                "baseline_s": 120.0,
                "quantile": 0.5,
                "grid_step_db": 1.0,
                "grid_max_db": 20.0,
                "max_train_nights": None,
            },
        }
    )


RESULT = {
    "task": "psg_audio_osa",
    "protocol": "psga_5fold",
    "fold": 0,
    "seed": 42,
    "config_hash": "abc",
    "git_sha": "deadbeef",
    "config": {},
}  # the CRNN row the peer sits beside (its key parts)


def test_baseline_row_on_the_test_nights(osa_dm, tmp_path) -> None:
    rows = run_acoustic_baseline(make_cfg(), osa_dm, RESULT, tmp_path)
    assert len(rows) == 1
    row = rows[0]
    assert row["model"] == MODEL_NAME and row["config_hash"] == "abc"
    m = row["metrics"]
    rule = json.loads((tmp_path / "acoustic_baseline" / "rule.json").read_text())
    # the row's frame macro-F1, recomputed from the fitted rule with scipy and sklearn
    store, all_t, all_p = osa_dm.store, [], []
    for rid in osa_dm.split.test:
        rec = store.index_of(rid)
        mask = store.read(rec, "mask").astype(bool)
        d = envelope_deficit_db(frame_energy_db(store, rec), mask, EnvelopeRule(3.0, 120.0, 0.5))
        labels = np.where(mask, label_frames(d, rule["apnea_drop_db"], rule["hypopnea_drop_db"]), 0)
        smoothed = scipy.signal.medfilt(labels.astype(float), 5).astype(int)
        all_p.append(smoothed[mask])
        all_t.append(store.read(rec, "y")[mask])
    t, p = np.concatenate(all_t), np.concatenate(all_p)
    assert m["test/f1_macro"] == pytest.approx(
        f1_score(t, p, labels=[0, 1, 2], average="macro", zero_division=0), abs=1e-6
    )
    # the fake nights' events are quiet stretches: the rule must find most of them
    assert m["test/agn_event_recall"] >= 0.5
    assert {"test/ahi_mae", "test/event_iou", "test/collar_f1"} <= set(m)
    assert (tmp_path / "acoustic_baseline" / "per_night.json").exists()
    assert (tmp_path / "acoustic_baseline" / "night_n4.png").exists()
    assert row["protocol_tags"]["eval"].startswith("night")


def test_baseline_parity_mode_and_switch(osa_dm, tmp_path) -> None:
    rows = run_acoustic_baseline(make_cfg("parity"), osa_dm, RESULT, tmp_path)
    assert rows[0]["protocol_tags"]["eval"].startswith("parity")
    assert not list((tmp_path / "acoustic_baseline").glob("*.png"))
    assert run_acoustic_baseline(make_cfg(enabled=False), osa_dm, RESULT, tmp_path) == []
