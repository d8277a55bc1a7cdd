"""Robust scaling against numpy / scikit-learn, and augmentations' shape, dtype and determinism."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.preprocessing import RobustScaler
from sklearn.preprocessing import minmax_scale as sk_minmax_scale

from sleepbench.signal.augment import amplitude_scale, baseline_wander, gaussian_noise
from sleepbench.signal.scaling import (
    clip_iqr,
    iqr_bounds,
    minmax_scale,
    robust_mean_std,
    robust_scale,
)


def test_iqr_bounds_match_numpy_percentiles_and_skip_nan() -> None:
    x = np.random.default_rng(0).normal(size=1001)
    q1, q3 = np.percentile(x, [25, 75])
    with_nan = np.concatenate([x, [np.nan, np.inf]])
    lo, hi = iqr_bounds(with_nan, 1.5)
    assert lo == pytest.approx(q1 - 1.5 * (q3 - q1))
    assert hi == pytest.approx(q3 + 1.5 * (q3 - q1))
    with pytest.raises(ValueError, match="finite"):
        iqr_bounds(np.array([np.nan]), 1.0)


def test_robust_mean_std_ignores_outliers() -> None:
    rng = np.random.default_rng(1)
    clean = rng.uniform(-1, 1, 5000)  # IQR ~ 1, so k = 3 keeps everything in [-3.5, 3.5]
    spikes = np.array([500.0, -800.0, 1e4, 60.0, np.nan])
    mixed = rng.permutation(np.concatenate([clean, spikes]))
    mean, std = robust_mean_std(mixed, k=3.0)
    assert mean == pytest.approx(clean.mean(), abs=1e-12)
    assert std == pytest.approx(clean.std(), rel=1e-12)
    # without the robust step the spikes would dominate
    finite = mixed[np.isfinite(mixed)]
    assert finite.std() > 50 * std


def test_robust_mean_std_of_a_constant_gives_unit_std() -> None:
    assert robust_mean_std(np.full(100, 3.0)) == (3.0, 1.0)


def test_clip_iqr_clips_each_channel_to_median_plus_minus_k_iqr() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 2000)) * np.array([[1.0], [5.0], [0.1]])
    x[0, 10], x[1, 20], x[2, 30] = 1e3, -1e3, 50.0
    out = clip_iqr(x, k=4.0)
    assert out.shape == x.shape
    for c in range(3):
        med = np.median(x[c])
        q1, q3 = np.percentile(x[c], [25, 75])
        np.testing.assert_allclose(out[c], np.clip(x[c], med - 4 * (q3 - q1), med + 4 * (q3 - q1)))
    inside = np.abs(x - np.median(x, axis=1, keepdims=True)) < 2
    inside[1] = np.abs(x[1] - np.median(x[1])) < 10
    np.testing.assert_array_equal(out[inside], x[inside])  # ordinary values untouched
    assert out[0, 10] < 10 and out[1, 20] > -50 and out[2, 30] < 2


def test_clip_iqr_along_the_first_axis() -> None:
    x = np.random.default_rng(3).normal(size=(500, 2))
    x[7, 1] = 100.0
    np.testing.assert_allclose(clip_iqr(x, k=3.0, axis=0), clip_iqr(x.T, k=3.0).T)


def test_robust_scale_matches_sklearn_per_channel() -> None:
    rng = np.random.default_rng(4)
    x = np.vstack(
        [
            rng.normal(3.0, 2.0, 1000),
            rng.exponential(1.0, 1000),
            np.full(1000, 7.0),  # zero IQR: centred, not divided
        ]
    ).astype(np.float32)
    x[0, :5] = 1e4  # outliers barely move median and IQR
    out = robust_scale(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    want = RobustScaler().fit_transform(x.T.astype(np.float64)).T
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(robust_scale(x.T, axis=0), want.T, rtol=1e-5, atol=1e-5)


def test_minmax_scale_matches_sklearn() -> None:
    x = np.random.default_rng(5).normal(size=(2, 300)) * 40 + 7
    out = minmax_scale(x)
    assert out.dtype == np.float32
    want = sk_minmax_scale(x.ravel()).reshape(x.shape)
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)
    assert out.min() == 0.0 and out.max() == 1.0
    const = minmax_scale(np.full((2, 5), 3.0))
    assert const.dtype == np.float32 and not const.any()


AUGMENTATIONS = {
    "amplitude": lambda x, rng: amplitude_scale(x, rng, 0.5, 1.5),
    "noise": lambda x, rng: gaussian_noise(x, rng, sigma=0.1),
    "wander": lambda x, rng: baseline_wander(x, rng, amplitude=0.3),
}


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_augmentations_keep_shape_dtype_and_are_deterministic(name: str) -> None:
    aug = AUGMENTATIONS[name]
    x = np.random.default_rng(6).normal(size=(2, 600)).astype(np.float32)
    original = x.copy()
    a = aug(x, np.random.default_rng(7))
    b = aug(x, np.random.default_rng(7))
    c = aug(x, np.random.default_rng(8))
    assert a.shape == x.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, x)
    np.testing.assert_array_equal(x, original)  # the input is not modified in place


def test_amplitude_scale_is_one_gain_in_range() -> None:
    x = np.random.default_rng(9).normal(size=(3, 100)).astype(np.float32) + 5
    gains = []
    for seed in range(50):
        gain = amplitude_scale(x, np.random.default_rng(seed), 0.8, 1.2) / x
        assert np.ptp(gain) < 1e-5  # one gain for every channel and sample
        gains.append(float(gain.mean()))
    assert 0.8 <= min(gains) and max(gains) <= 1.2 and np.ptp(gains) > 0.2


def test_gaussian_noise_has_the_requested_std() -> None:
    x = np.zeros((4, 20000), np.float32)
    noise = gaussian_noise(x, np.random.default_rng(10), sigma=0.05)
    assert noise.std() == pytest.approx(0.05, rel=0.02)
    assert abs(noise.mean()) < 0.002


def test_baseline_wander_is_a_sinusoid_of_the_requested_periods() -> None:
    x = np.zeros((2, 1000), np.float32)
    wander = baseline_wander(x, np.random.default_rng(11), amplitude=0.2, periods=2.0)
    np.testing.assert_array_equal(wander[0], wander[1])  # same wander on every channel
    assert np.abs(wander).max() == pytest.approx(0.2, rel=1e-3)
    spectrum = np.abs(np.fft.rfft(wander[0]))
    assert int(np.argmax(spectrum)) == 2  # two periods over the window
