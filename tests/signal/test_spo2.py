"""SpO2 pre-processing: artefacts, length, resampling, the smoothers and the whole pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from sleepbench.signal.spo2 import (
    SMOOTHERS,
    adaptive_smooth,
    adaptive_window_lengths,
    butterworth_smooth,
    fix_length,
    interpolate_artefacts,
    median_smooth,
    minmax_scale,
    preprocess_spo2,
    resample_to,
)

BASELINE = 96.0


def _night_with_dips(
    seed: int, n: int = 900, centres: tuple[int, ...] = (200, 450, 700), noise: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """1 Hz SpO2: a 96 % baseline with 4-%-deep, 20-s triangular desaturations; (noisy, truth)."""
    t = np.arange(n)
    truth = np.full(n, BASELINE)
    for c in centres:
        truth -= 4.0 * np.clip(1 - np.abs(t - c) / 10, 0, None)
    noisy = truth + np.random.default_rng(seed).normal(0, noise, n)
    return noisy, truth


# --- artefacts --------------------------------------------------------------------------------


def test_interpolate_artefacts_linear_inside_and_nearest_at_edges() -> None:
    x = np.array([0.0, 94, 95, 0, 0, 98, 101, 97, np.nan, 12])
    clean, invalid = interpolate_artefacts(x)
    np.testing.assert_array_equal(invalid, [1, 0, 0, 1, 1, 0, 1, 0, 1, 1])
    np.testing.assert_allclose(clean, [94, 94, 95, 96, 97, 98, 97.5, 97, 97, 97])
    assert x[0] == 0  # the input is not modified


def test_interpolate_artefacts_keeps_valid_signal_and_bounds_inclusive() -> None:
    x = np.array([50.0, 75, 100])
    clean, invalid = interpolate_artefacts(x)
    np.testing.assert_array_equal(clean, x)
    assert not invalid.any()


def test_interpolate_artefacts_all_invalid_raises() -> None:
    with pytest.raises(ValueError, match="fraction"):
        interpolate_artefacts(np.full(100, 0.95))
    with pytest.raises(ValueError, match="NaN"):
        interpolate_artefacts(np.full(10, np.nan))


# --- length and rate --------------------------------------------------------------------------


def test_fix_length_truncates_keeping_the_start_and_pads_the_end() -> None:
    x = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(fix_length(x, 4), [0, 1, 2, 3])
    padded = fix_length(x, 13, pad_value=-1)
    np.testing.assert_array_equal(padded, [*range(10), -1, -1, -1])
    assert padded.dtype == np.float32
    np.testing.assert_array_equal(fix_length(x, 10), x)
    assert fix_length(np.ones(30_000)).shape == (28_800,)


def test_resample_4hz_to_1hz_keeps_slow_content_and_edges() -> None:
    fs = 4.0
    t = np.arange(0, 3600, 1 / fs)
    x = 95 + 2 * np.sin(2 * np.pi * t / 120)  # 2-min oscillation, far below the new Nyquist
    y = resample_to(x, fs, 1.0)
    assert y.shape == (3600,)
    t1 = np.arange(3600.0)
    np.testing.assert_allclose(y, 95 + 2 * np.sin(2 * np.pi * t1 / 120), atol=0.02)
    # a constant level is not dragged toward 0 % at the record edges
    np.testing.assert_allclose(resample_to(np.full(400, 95.0), fs, 1.0), 95.0, atol=1e-6)


def test_resample_removes_content_above_the_new_nyquist() -> None:
    t = np.arange(0, 600, 0.25)
    y = resample_to(95 + np.sin(2 * np.pi * 1.2 * t), 4.0, 1.0)  # 1.2 Hz would alias to 0.2 Hz
    assert np.std(y[20:-20]) < 0.05


def test_resample_same_rate_is_a_copy() -> None:
    x = np.linspace(90, 99, 50)
    y = resample_to(x, 1.0, 1.0)
    np.testing.assert_array_equal(y, x)
    assert y is not x


# --- smoothers --------------------------------------------------------------------------------


def test_window_lengths_follow_variability() -> None:
    x, _ = _night_with_dips(seed=0)
    w = adaptive_window_lengths(x, w_min_s=3, w_max_s=15, sigma_window_s=31)
    assert set(np.unique(w)) <= {3, 5, 7, 9, 11, 13, 15}
    assert (w[[200, 450, 700]] == 3).all()  # desaturation troughs: shortest window
    assert np.median(w[20:150]) == 15  # quiet baseline: longest window
    np.testing.assert_array_equal(adaptive_window_lengths(np.full(100, 97.0)), 15)
    # windows are in seconds: at 4 Hz the same rule gives 4x as many samples (rounded to odd)
    assert adaptive_window_lengths(np.full(100, 97.0), fs_hz=4.0).max() == 61


@pytest.mark.parametrize("statistic", ["mean", "median"])
def test_adaptive_keeps_desaturation_depth_better_than_median11(statistic: str) -> None:
    """The property the paper claims: less loss of desaturation depth than a fixed median."""
    centres = np.array([200, 450, 700])
    loss_adaptive, loss_median = [], []
    for seed in range(5):
        x, _ = _night_with_dips(seed)
        for smoothed, losses in (
            (adaptive_smooth(x, statistic=statistic), loss_adaptive),
            (median_smooth(x, 11), loss_median),
        ):
            depth = np.median(smoothed[20:150]) - smoothed[centres]
            losses.extend(4.0 - depth)
    assert np.mean(loss_adaptive) < 0.5
    assert np.mean(loss_median) > 0.8
    assert np.mean(loss_adaptive) < 0.5 * np.mean(loss_median)


def test_adaptive_reduces_noise_on_the_baseline() -> None:
    x, truth = _night_with_dips(seed=7)
    flat = np.r_[20:150, 260:400, 510:650, 760:880]
    raw_error = np.std(x[flat] - truth[flat])
    smoothed_error = np.std(adaptive_smooth(x)[flat] - truth[flat])
    assert smoothed_error < 0.4 * raw_error  # ~1/sqrt(15) for a 15-s mean, ~0.26


def test_adaptive_mean_matches_a_per_sample_loop() -> None:
    x, _ = _night_with_dips(seed=3, n=300, centres=(150,))
    w = adaptive_window_lengths(x)
    padded = np.pad(x, 7, mode="edge")
    expected = [padded[i + 7 - k // 2 : i + 7 + k // 2 + 1].mean() for i, k in enumerate(w)]
    np.testing.assert_allclose(adaptive_smooth(x), expected, rtol=1e-12)


def test_median_smooth_matches_scipy_inside_and_holds_edges() -> None:
    x, _ = _night_with_dips(seed=1)
    y = median_smooth(x, 11)
    np.testing.assert_allclose(y[5:-5], signal.medfilt(x, 11)[5:-5])
    assert y[0] > 90 and y[-1] > 90  # medfilt's zero padding would give ~0-48 % here
    with pytest.raises(ValueError, match="odd"):
        median_smooth(x, 10)


def test_butterworth_is_a_zero_phase_low_pass() -> None:
    t = np.arange(3600.0)
    slow = np.sin(2 * np.pi * t / 300)
    fast = np.sin(2 * np.pi * 0.3 * t)
    y = butterworth_smooth(95 + slow + fast, fs_hz=1.0, cutoff_hz=0.1, order=4)
    np.testing.assert_allclose(y[200:-200], 95 + slow[200:-200], atol=0.01)  # no lag, no ripple
    with pytest.raises(ValueError, match="cutoff"):
        butterworth_smooth(t, fs_hz=1.0, cutoff_hz=0.5)


def test_minmax_scale() -> None:
    y = minmax_scale(np.array([90.0, 95, 100]))
    np.testing.assert_allclose(y, [0, 0.5, 1])
    np.testing.assert_array_equal(minmax_scale(np.full(5, 97.0)), 0)


@pytest.mark.parametrize("name", sorted(SMOOTHERS))
def test_registered_smoothers_keep_length(name: str) -> None:
    x, _ = _night_with_dips(seed=2)
    y = SMOOTHERS[name](x, 1.0)
    assert y.shape == x.shape and np.isfinite(y).all()
    assert set(SMOOTHERS) == {"adaptive", "median", "butterworth", "none"}


# --- pipeline ---------------------------------------------------------------------------------


def test_preprocess_full_length_record() -> None:
    rng = np.random.default_rng(0)
    x = 95 + rng.normal(0, 0.5, 30_000)
    x[1000:1010] = 0  # probe off
    y = preprocess_spo2(x, 1.0)
    assert y.dtype == np.float32 and y.shape == (28_800,)
    assert y.min() == 0 and y.max() == 1


def test_preprocess_short_record_pads_after_scaling() -> None:
    x, _ = _night_with_dips(seed=4, n=3600, centres=(600, 1800, 3000))
    y = preprocess_spo2(x, 1.0, smoothing="median", smoothing_params={"kernel": 11})
    # the measured part is processed as if the padding did not exist
    np.testing.assert_allclose(y[:3600], minmax_scale(median_smooth(x, 11)), atol=1e-6)
    np.testing.assert_array_equal(y[3600:], 0)
    assert y[:3600].min() == 0 and y[:3600].max() == 1


def test_preprocess_4hz_input_matches_1hz_input() -> None:
    t4 = np.arange(0, 7200, 0.25)
    x4 = 95 - 3 * np.clip(np.sin(2 * np.pi * t4 / 240), 0, None)  # slow periodic dips
    y4 = preprocess_spo2(x4, 4.0, smoothing="none")
    y1 = preprocess_spo2(x4[::4], 1.0, smoothing="none")
    np.testing.assert_allclose(y4[:7200], y1[:7200], atol=0.02)


def test_preprocess_errors() -> None:
    with pytest.raises(ValueError, match="unknown smoothing"):
        preprocess_spo2(np.full(100, 95.0), 1.0, smoothing="wavelet")
    with pytest.raises(ValueError, match="no valid SpO2"):
        preprocess_spo2(np.zeros(100), 1.0)
