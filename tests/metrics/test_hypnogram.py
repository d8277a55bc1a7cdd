"""Hypnogram night statistics against values counted by hand."""

from __future__ import annotations

import pytest

from sleepbench.metrics.hypnogram import HYPNOGRAM_DEFINITIONS, hypnogram_statistics

# 20 epochs of 30 s (10 min): index: stage
#  0-2 W (latency), 3 N1 (sleep onset), 4-5 N2, 6 W, 7 None (unscored), 8 W  -> one awakening
#  9 N2, 10 N3, 11 N3, 12 W, 13 REM (first REM, 10 epochs after onset), 14 REM, 15 N2 (last sleep)
#  16-18 W (final awakening, not WASO), 19 None
NIGHT = ["W", "W", "W", "N1", "N2", "N2", "W", None, "W", "N2"] + [
    "N3",
    "N3",
    "W",
    "REM",
    "REM",
    "N2",
    "W",
    "W",
    "W",
    None,
]


def test_a_night_counted_by_hand() -> None:
    s = hypnogram_statistics(NIGHT, epoch_s=30.0)
    assert set(s) == set(HYPNOGRAM_DEFINITIONS)
    assert s["tib_min"] == 10.0
    # sleep epochs: 3, 4, 5, 9, 10, 11, 13, 14, 15 -> 9 epochs
    assert s["tst_min"] == 4.5
    assert s["sleep_efficiency_pct"] == pytest.approx(45.0)
    assert s["sleep_onset_latency_min"] == 1.5
    assert s["rem_latency_min"] == 5.0  # epoch 13 - epoch 3
    assert s["spt_min"] == 6.5  # epochs 3..15
    assert s["waso_min"] == 1.5  # epochs 6, 8, 12 (not 16-18)
    assert s["n_awakenings"] == 2  # 6-8 (across the unscored 7) and 12
    assert s["unscored_min"] == 1.0
    assert (s["w_min"], s["n1_min"], s["n2_min"], s["n3_min"], s["rem_min"]) == (
        4.5,  # W epochs 0-2, 6, 8, 12, 16-18
        0.5,
        2.0,
        1.0,
        1.0,
    )
    assert s["n1_pct_tst"] == pytest.approx(100 / 9)
    assert s["n2_pct_tst"] == pytest.approx(400 / 9)
    assert s["n3_pct_tst"] == pytest.approx(200 / 9)
    assert s["rem_pct_tst"] == pytest.approx(200 / 9)
    assert "w_pct_tst" not in s


def test_no_sleep_and_no_rem() -> None:
    s = hypnogram_statistics(["W", "W", None])
    assert s["tst_min"] == 0.0 and s["sleep_efficiency_pct"] == 0.0
    assert s["sleep_onset_latency_min"] is None and s["rem_latency_min"] is None
    assert s["waso_min"] == 0.0 and s["n_awakenings"] == 0 and s["n2_pct_tst"] is None
    s = hypnogram_statistics(["N2", "W", "N3"], epoch_s=20.0)
    assert s["rem_latency_min"] is None and s["sleep_onset_latency_min"] == 0.0
    assert s["waso_min"] == pytest.approx(1 / 3) and s["n_awakenings"] == 1


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown stage labels"):
        hypnogram_statistics(["W", "S4"])
    with pytest.raises(ValueError, match="epoch_s"):
        hypnogram_statistics(["W"], epoch_s=0)
    assert hypnogram_statistics([])["sleep_efficiency_pct"] is None
