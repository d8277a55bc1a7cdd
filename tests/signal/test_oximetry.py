"""Oximetry measures on constructed SpO2 signals with known desaturations."""

from __future__ import annotations

import numpy as np
import pytest

from sleepbench.signal.oximetry import (
    clean_spo2,
    desaturations,
    odi_per_hour,
    oximetry_summary,
)


def _flat(n: int = 1200, level: float = 96.0) -> np.ndarray:
    return np.full(n, level)


def _dip(x: np.ndarray, start: int, length: int, depth: float) -> np.ndarray:
    """A rectangular desaturation of ``depth`` points for ``length`` seconds."""
    y = x.copy()
    y[start : start + length] -= depth
    return y


# ---------------------------------------------------------------------------- desaturations


@pytest.mark.parametrize(
    ("depth", "drop", "found"),
    [(4.0, 3.0, 1), (4.0, 4.0, 1), (3.0, 3.0, 1), (2.9, 3.0, 0), (4.0, 5.0, 0)],
)
def test_depth_against_the_threshold(depth: float, drop: float, found: int) -> None:
    # reaching the threshold exactly counts (SpO2 <= baseline - drop)
    assert len(desaturations(_dip(_flat(), 300, 20, depth), drop_pct=drop)) == found


@pytest.mark.parametrize(("length", "found"), [(9, 0), (10, 1), (45, 1)])
def test_minimum_duration(length: int, found: int) -> None:
    runs = desaturations(_dip(_flat(), 300, length, 5.0), 3.0, min_duration_s=10)
    assert len(runs) == found
    if found:
        assert runs == [(300, 300 + length)]  # start and stop in seconds (samples at 1 Hz)


def test_two_dips_need_a_recovery_between_them() -> None:
    x = _dip(_dip(_flat(), 300, 20, 5.0), 340, 20, 5.0)
    assert desaturations(x, 3.0) == [(300, 320), (340, 360)]
    # the gap between them stays 3 % down: one long desaturation
    x[320:340] = 92.5
    assert desaturations(x, 3.0) == [(300, 360)]


def test_baseline_is_the_maximum_of_the_preceding_window() -> None:
    x = _flat(1200, 96.5)
    x[100:105] = 99.0  # a brief peak: part of the baseline for the next 120 s
    # 3.5 below the peak but only 1 below the level: a desaturation while the peak is in the
    # window of every sample of the run (the window of sample t is the 120 samples before it,
    # so the last peak sample, 104, is seen up to t = 224)
    inside = x.copy()
    inside[215:225] = 95.5
    assert desaturations(inside, 3.0, baseline_s=120) == [(215, 225)]
    # one second later the run's last sample no longer sees the peak: 9 s left, too short
    late = x.copy()
    late[216:226] = 95.5
    assert desaturations(late, 3.0, baseline_s=120) == []
    far = x.copy()
    far[300:320] = 95.5
    assert desaturations(far, 3.0, baseline_s=120) == []
    # a longer window still sees the peak
    assert desaturations(far, 3.0, baseline_s=240) == [(300, 320)]


def test_slow_decline_is_no_desaturation() -> None:
    # 97 -> 92 % over 20 min: never 3 % below the maximum of the last 2 min
    x = np.concatenate([np.full(300, 97.0), np.linspace(97.0, 92.0, 1200), np.full(300, 92.0)])
    assert desaturations(x, 3.0) == []
    # the same 5 % fall within 30 s is one
    fast = np.concatenate([np.full(300, 97.0), np.linspace(97.0, 92.0, 30), np.full(300, 92.0)])
    (run,) = desaturations(fast, 3.0)
    assert 300 <= run[0] <= 330


def test_signal_edges() -> None:
    # a night that starts low: the first value is the baseline of the first seconds, so
    # starting desaturated is not a desaturation ...
    x = np.concatenate([np.full(60, 91.0), np.full(600, 96.0)])
    assert desaturations(x, 3.0) == []
    # ... and one still under way when the recording ends is counted if long enough
    y = _flat(600)
    y[580:] = 90.0
    assert desaturations(y, 3.0) == [(580, 600)]
    y[591:] = 90.0
    y[580:591] = 96.0
    assert desaturations(y, 3.0) == []  # 9 s left
    assert desaturations(np.zeros(0), 3.0) == []


def test_realistic_dip_shape() -> None:
    """A V-shaped 5 % desaturation (20-s fall, 5 s at the nadir, fast recovery) on a noisy,
    quantised baseline is found once at 3 % and at 4 %, not at 6 %."""
    rng = np.random.default_rng(0)
    t = np.arange(1800.0)
    deficit = np.interp(t, [600, 620, 625, 640], [0.0, 5.0, 5.0, 0.0])
    x = np.round(96.0 + rng.uniform(-0.2, 0.2, t.size) - deficit)
    for drop, n in ((3.0, 1), (4.0, 1), (6.0, 0)):
        runs = desaturations(x, drop)
        assert len(runs) == n
        if n:
            assert 600 <= runs[0][0] <= 622 and 620 <= runs[0][1] <= 640


# ---------------------------------------------------------------------------- ODI, cleaning


def test_odi_per_hour_counts_per_hour_of_signal() -> None:
    x = _flat(7200)  # 2 h
    for start in range(300, 7000, 600):  # 12 dips: 6 of 5 %, 6 of 3.5 %
        x = _dip(x, start, 20, 5.0 if (start // 600) % 2 == 0 else 3.5)
    odi = odi_per_hour(x, drops=(3, 4))
    assert odi == {3.0: 6.0, 4.0: 3.0}
    assert odi_per_hour(x, drops=(3,), min_duration_s=25) == {3.0: 0.0}
    assert np.isnan(odi_per_hour(np.zeros(0))[3.0])


def test_odi_matches_the_summary() -> None:
    rng = np.random.default_rng(1)
    x = np.round(96 + rng.normal(0, 0.3, 3600))
    for start in rng.choice(np.arange(100, 3400, 60), 20, replace=False):
        x[start : start + 15] -= rng.integers(2, 7)
    summary = oximetry_summary(x, 1.0, drop_pct=3.0)
    assert odi_per_hour(x, drops=(3,))[3.0] == pytest.approx(summary.odi_per_h)
    assert summary.n_desaturations == len(desaturations(x, 3.0))


def test_clean_spo2_interpolates_resamples_and_keeps_the_window() -> None:
    x = _flat(600)
    x[100:130] = 0.0  # probe off
    x[200:205] = 30.0  # implausible
    clean = clean_spo2(x, 1.0)
    np.testing.assert_allclose(clean, 96.0)
    # a probe-off stretch is no desaturation once interpolated
    assert desaturations(clean, 3.0) == []
    assert clean_spo2(x, 1.0, n_samples=300).size == 300
    assert clean_spo2(x, 1.0, n_samples=900).size == 600  # never padded
    # 4 Hz in, 1 Hz out, values kept
    fast = np.repeat(_dip(_flat(600), 300, 20, 5.0), 4)
    one_hz = clean_spo2(fast, 4.0)
    assert one_hz.size == 600
    assert len(desaturations(one_hz, 3.0)) == 1
    with pytest.raises(ValueError, match="no valid SpO2"):
        clean_spo2(np.zeros(100), 1.0)
