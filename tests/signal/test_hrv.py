"""Per-minute HRV / CVHR / EDR features against straightforward numpy references."""

from __future__ import annotations

import numpy as np
import pytest

from sleepbench.signal.hrv import (
    FEATURE_NAMES,
    band_power,
    clean_rr,
    minute_features,
    r_amplitudes,
)

FS = 250.0
COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


def _beats(rr_of_t, seconds: float) -> np.ndarray:
    """Beat times (s) with each interval given by ``rr_of_t(time of the beat starting it)``."""
    t = [0.5]
    while t[-1] < seconds:
        t.append(t[-1] + float(rr_of_t(t[-1])))
    return np.array(t[:-1])


def _features(beat_s: np.ndarray, minutes: int, ecg: np.ndarray | None = None, **kw) -> np.ndarray:
    peaks = np.rint(beat_s * FS).astype(np.int64)
    ecg = np.zeros(int(minutes * 60 * FS)) if ecg is None else ecg
    x, names = minute_features(peaks, ecg, FS, minutes, **kw)
    assert names == FEATURE_NAMES and x.shape == (minutes, len(FEATURE_NAMES))
    return x


def _reference(beat_s: np.ndarray, minute: int) -> dict[str, float]:
    """Time-domain features of one minute, from its intervals as the textbook defines them."""
    peaks = np.rint(beat_s * FS) / FS
    rr, end = np.diff(peaks), peaks[1:]
    sel = (end >= 60 * minute) & (end < 60 * (minute + 1))
    r = rr[sel]
    d = np.diff(rr)[sel[1:] & sel[:-1]]
    return {
        "mean_rr_s": r.mean(),
        "sdnn_s": r.std(),
        "rmssd_s": np.sqrt(np.mean(d**2)),
        "pnn50": np.mean(np.abs(d) > 0.05),
        "rr_range_s": r.max() - r.min(),
        "mean_hr_bpm": np.mean(60.0 / r),
    }


def test_constant_rr_has_no_variability() -> None:
    x = _features(_beats(lambda t: 1.0, 300), 5)
    assert np.allclose(x[:, COL["mean_rr_s"]], 1.0)
    assert np.allclose(x[:, COL["mean_hr_bpm"]], 60.0)
    for name in ("sdnn_s", "rmssd_s", "pnn50", "rr_range_s"):
        assert np.allclose(x[:, COL[name]], 0.0, atol=1e-9), name
    assert np.all(x[:, COL["cvhr_power_s2"]] < 1e-12)


def test_alternating_rr_matches_the_reference() -> None:
    beats = 0.5 + np.concatenate([[0.0], np.cumsum(np.tile([0.9, 1.0], 94))])  # 178.6 s
    x = _features(beats, 3)
    for m in range(3):
        ref = _reference(beats, m)
        for name, value in ref.items():
            assert x[m, COL[name]] == pytest.approx(value, rel=1e-6, abs=1e-9), (m, name)
    assert x[1, COL["rmssd_s"]] == pytest.approx(0.1, abs=1e-6)
    assert x[1, COL["sdnn_s"]] == pytest.approx(0.05, abs=1e-3)
    assert x[1, COL["pnn50"]] == 1.0 and x[1, COL["rr_range_s"]] == pytest.approx(0.1)


def test_varying_rr_matches_the_reference() -> None:
    rng = np.random.default_rng(0)
    jitter = rng.uniform(-0.05, 0.05, 2000)
    beats = _beats(lambda t: 0.85 + 0.1 * np.sin(t / 7.0) + jitter[int(t)], 240)
    x = _features(beats, 4)
    for m in range(4):
        for name, value in _reference(beats, m).items():
            assert x[m, COL[name]] == pytest.approx(value, rel=1e-6, abs=1e-9), (m, name)


def test_cvhr_band_dominates_for_apnea_like_cycles() -> None:
    cvhr = _features(_beats(lambda t: 1.0 + 0.1 * np.sin(2 * np.pi * 0.025 * t), 600), 10)
    hf = _features(_beats(lambda t: 1.0 + 0.03 * np.sin(2 * np.pi * 0.25 * t), 600), 10)
    assert np.all(cvhr[:, COL["cvhr_ratio"]] > 0.8)
    assert np.all(hf[:, COL["cvhr_ratio"]] < 0.1) and np.all(hf[:, COL["hf_ratio"]] > 0.8)
    # an RR sinusoid of amplitude a has power a^2 / 2
    assert np.median(cvhr[:, COL["cvhr_power_s2"]]) == pytest.approx(0.1**2 / 2, rel=0.15)


def test_band_power_of_a_sine() -> None:
    fs, t = 4.0, np.arange(1200) / 4.0
    x = np.stack([0.3 * np.sin(2 * np.pi * 0.025 * t), 0.3 * np.sin(2 * np.pi * 0.3 * t)])
    low, high = band_power(x, fs, (0.01, 0.05)), band_power(x, fs, (0.1, 0.5))
    assert low[0] == pytest.approx(0.3**2 / 2, rel=0.05) and low[1] < 1e-4
    assert high[1] == pytest.approx(0.3**2 / 2, rel=0.05) and high[0] < 1e-4


def test_cleaning_drops_missed_and_false_beats() -> None:
    beats = np.arange(0.0, 60.0, 0.8)
    missed = np.delete(beats, 30)  # one 1.6-s interval
    t, rr, keep = clean_rr(missed)
    assert not keep[29] and keep.sum() == rr.size - 1
    extra = np.sort(np.append(beats, beats[40] + 0.3))  # a 0.3-s and a 0.5-s interval
    t, rr, keep = clean_rr(extra)
    assert keep.sum() == rr.size - 2 and not keep[40] and not keep[41]
    assert np.all((rr[keep] >= 0.3) & (rr[keep] <= 2.0))
    # the dropped intervals leave the minute's features those of the regular rhythm
    x = _features(missed, 1)
    assert x[0, COL["sdnn_s"]] == pytest.approx(0.0, abs=1e-9)


def test_edr_follows_the_r_amplitude() -> None:
    minutes, beats = 2, _beats(lambda t: 1.0, 120)
    peaks = np.rint(beats * FS).astype(np.int64)
    amp = 1.0 + 0.2 * np.sin(2 * np.pi * 0.25 * beats)
    ecg = np.full(int(minutes * 60 * FS), 0.4)  # offset: the baseline is removed
    for p, a in zip(peaks, amp):
        ecg[p - 2 : p + 3] += a * np.array([0.3, 0.8, 1.0, 0.8, 0.3])
    assert np.allclose(r_amplitudes(ecg, peaks + 1, FS), amp)  # detector one sample off
    assert np.allclose(r_amplitudes(-ecg, peaks, FS), amp)  # inverted lead
    x = _features(beats, minutes, ecg)
    assert x[0, COL["edr_std_mv"]] == pytest.approx(np.std(amp[1:61]), rel=0.05)
    rel = np.std(amp[1:61]) / np.median(amp[1:])  # relative to the record's median amplitude
    assert x[0, COL["edr_rel_std"]] == pytest.approx(rel, rel=0.05)
    assert np.all(x[:, COL["edr_resp_ratio"]] > 0.8)


def test_too_few_beats_give_nan() -> None:
    beats = np.concatenate([np.arange(0.5, 60, 1.0), np.arange(120.5, 180, 1.0)])
    x = _features(beats, 4, context_min=0)
    assert np.isfinite(x[0, :6]).all() and np.isnan(x[1]).all() and np.isfinite(x[2, :6]).all()
    assert np.isnan(x[3]).all()  # no beat at all in the last minute
    assert np.isnan(_features(np.array([1.0, 2.0]), 2)).all()
