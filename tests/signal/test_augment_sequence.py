"""Sequence augmentations: shapes, regions, input untouched, exact behaviour where checkable."""

from __future__ import annotations

import numpy as np
import pytest

from sleepbench.signal.augment_sequence import (
    channel_dropout,
    elastic_deformation,
    region_length,
    regional_erase,
    regional_gaussian_noise,
)


def _x(n: int = 5000, c: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(c, n)).astype(np.float32)


@pytest.mark.parametrize("log_sample", [True, False])
def test_region_length_stays_in_range(log_sample: bool) -> None:
    rng = np.random.default_rng(1)
    lengths = [region_length(10_000, rng, 0.001, 0.3, log_sample) for _ in range(2000)]
    assert min(lengths) >= 10 and max(lengths) <= 3000
    # log-uniform draws put about half of the mass below the geometric midpoint (~173 samples)
    below = np.mean(np.array(lengths) < np.sqrt(10 * 3000))
    assert (0.4 < below < 0.6) if log_sample else below < 0.1


def test_region_length_rejects_bad_fractions() -> None:
    with pytest.raises(ValueError):
        region_length(100, np.random.default_rng(0), 0.0, 0.5)
    with pytest.raises(ValueError):
        region_length(100, np.random.default_rng(0), 0.5, 1.5)


def test_regional_noise_touches_one_contiguous_region() -> None:
    x = _x()
    y = regional_gaussian_noise(
        x, np.random.default_rng(3), sigma=1.0, min_fraction=0.1, max_fraction=0.2
    )
    assert y.shape == x.shape and y.dtype == x.dtype
    changed = np.flatnonzero((y != x).any(axis=0))
    assert 0.1 * x.shape[1] - 1 <= changed.size <= 0.2 * x.shape[1]
    # contiguous modulo the sequence length (the region may wrap round the end)
    gaps = np.diff(changed)
    assert (gaps == 1).sum() >= changed.size - 2
    assert np.array_equal(x, _x())  # input untouched


def test_regional_erase_fills_with_low_noise_at_the_channel_mean() -> None:
    x = _x() + np.array([[5.0], [-3.0]], dtype=np.float32)
    y = regional_erase(x, np.random.default_rng(4), min_fraction=0.2, max_fraction=0.3)
    changed = (y != x).all(axis=0)
    assert 0.2 * x.shape[1] - 1 <= changed.sum() <= 0.3 * x.shape[1]
    for c, mean in enumerate(x.mean(axis=1)):
        seg = y[c, changed]
        assert abs(seg.mean() - mean) < 0.01 and seg.std() < 0.02


def test_elastic_with_zero_alpha_is_identity_and_warp_is_smooth() -> None:
    x = _x()
    assert np.allclose(elastic_deformation(x, np.random.default_rng(0), alpha=0.0, sigma=10.0), x)
    ramp = np.tile(np.arange(5000, dtype=np.float32), (2, 1))
    warped = elastic_deformation(ramp, np.random.default_rng(0), alpha=35.0, sigma=30.0)
    # on a ramp the output is the sampling position: displacements are small and smooth
    inner = slice(100, -100)
    shift = warped[0, inner] - ramp[0, inner]
    assert np.abs(shift).max() < 35.0 and np.abs(shift).max() > 0.01
    assert np.abs(np.diff(shift)).max() < 1.0
    assert np.array_equal(warped[0], warped[1])  # one warp for every channel


def test_channel_dropout_keeps_one_channel() -> None:
    x = _x(c=2) + 1.0
    y = channel_dropout(x, np.random.default_rng(5), drop_fraction=0.1)
    dropped = [c for c in range(2) if not np.array_equal(y[c], x[c])]
    assert len(dropped) == 1
    c = dropped[0]
    assert abs(y[c].mean() - x[c].mean()) < 0.01 and y[c].std() < 0.02
    with pytest.raises(ValueError, match="would leave none"):
        channel_dropout(_x(c=1), np.random.default_rng(0))


def test_rejects_non_2d_input() -> None:
    with pytest.raises(ValueError, match="channels, samples"):
        regional_erase(np.zeros(10), np.random.default_rng(0))
