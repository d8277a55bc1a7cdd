"""Rational resampling against scipy and against an analytic sine."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import resample_poly

from sleepbench.signal.resample import resample_ratio, resample_to


@pytest.mark.parametrize(
    ("fs_in", "fs_out", "ratio"),
    [
        (100.0, 128.0, (32, 25)),
        (256.0, 128.0, (1, 2)),
        (200.0, 100.0, (1, 2)),
        (125.0, 128.0, (128, 125)),
    ],
)
def test_ratio_in_lowest_terms(fs_in: float, fs_out: float, ratio: tuple[int, int]) -> None:
    assert resample_ratio(fs_in, fs_out) == ratio


def test_irrational_or_bad_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="not a ratio"):
        resample_ratio(100.0, 100.0 * np.pi)
    with pytest.raises(ValueError, match="positive"):
        resample_ratio(0.0, 128.0)


def test_epochs_map_to_whole_epochs_and_match_scipy() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 2 * 3000)).astype(np.float32)  # two 30-s epochs at 100 Hz
    y = resample_to(x, 100.0, 128.0)
    assert y.shape == (3, 2 * 3840) and y.dtype == np.float32
    np.testing.assert_allclose(y, resample_poly(x, 32, 25, axis=-1), rtol=1e-5, atol=1e-6)


def test_sine_is_preserved() -> None:
    t_in = np.arange(3000) / 100.0
    x = np.sin(2 * np.pi * 7.0 * t_in)
    y = resample_to(x, 100.0, 128.0)
    t_out = np.arange(y.size) / 128.0
    core = slice(256, -256)  # away from the FIR edge transients
    np.testing.assert_allclose(y[core], np.sin(2 * np.pi * 7.0 * t_out)[core], atol=2e-3)


def test_equal_rates_copy_and_integers_become_float() -> None:
    x = np.arange(10, dtype=np.int16)
    y = resample_to(x, 50.0, 50.0)
    assert y.dtype == np.float32 and np.array_equal(y, x)
    z = np.ones(4)
    assert resample_to(z, 1.0, 1.0) is not z
