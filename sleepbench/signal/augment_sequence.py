"""Augmentations for long multi-channel sequences (U-Time / U-Sleep style), numpy, per item.

Every function takes ``x`` of shape ``[channels, samples]`` and the item's
:class:`numpy.random.Generator` and returns a new float array of the same shape; the input is
never modified. Labels are left alone: these augmentations keep a sequence aligned with its
per-epoch labels (the elastic warp moves samples by at most a few hundred milliseconds).

Semantics follow U-Time's augmenters (``utime/augmentation/augmenters.py``, Perslev et al.,
NeurIPS 2019), re-implemented here:

- :func:`regional_gaussian_noise`: Gaussian noise on one region covering a fraction of the
  sequence drawn log-uniformly (wrapping round the end, as upstream);
- :func:`regional_erase`: one such region replaced by low-variance noise around each channel's
  mean (U-Time uses one mean over all channels; per channel keeps the channels' offsets apart);
- :func:`elastic_deformation`: a smooth random time warp (Simard et al., 2003), linear
  interpolation, samples pulled from outside the sequence set to ``fill_value``;
- :func:`channel_dropout`: whole channels replaced by low-variance noise around their mean.

Global Gaussian noise is :func:`sleepbench.signal.augment.gaussian_noise`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d

__all__ = [
    "channel_dropout",
    "elastic_deformation",
    "region_length",
    "regional_erase",
    "regional_gaussian_noise",
]

Range = float | Sequence[float]


def _draw(value: Range, rng: np.random.Generator) -> float:
    """A number, or a uniform draw from a ``(low, high)`` pair."""
    if isinstance(value, (int, float)):
        return float(value)
    low, high = value
    return float(rng.uniform(low, high))


def _check_2d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"expected [channels, samples], got shape {x.shape}")
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float32)


def region_length(
    n_samples: int,
    rng: np.random.Generator,
    min_fraction: float,
    max_fraction: float,
    log_sample: bool = True,
) -> int:
    """Number of samples of a random region: a fraction of ``n_samples`` in ``[min, max]``.

    Args:
        n_samples: sequence length in samples.
        rng: random generator.
        min_fraction: smallest fraction (> 0).
        max_fraction: largest fraction (<= 1).
        log_sample: draw the fraction log-uniformly (short regions as likely per decade as long
            ones, U-Time's default) instead of uniformly.
    """
    if not 0 < min_fraction <= max_fraction <= 1:
        raise ValueError(
            f"need 0 < min_fraction <= max_fraction <= 1, got {min_fraction}, {max_fraction}"
        )
    if log_sample:
        frac = 10 ** rng.uniform(np.log10(min_fraction), np.log10(max_fraction))
    else:
        frac = rng.uniform(min_fraction, max_fraction)
    return max(1, int(frac * n_samples))


def _region(n_samples: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """Sample positions of a region of ``length`` starting anywhere, wrapping round the end."""
    start = int(rng.integers(0, n_samples))
    return (start + np.arange(min(length, n_samples))) % n_samples


def regional_gaussian_noise(
    x: np.ndarray,
    rng: np.random.Generator,
    sigma: float = 0.2,
    min_fraction: float = 0.001,
    max_fraction: float = 0.5,
    log_sample: bool = True,
) -> np.ndarray:
    """Add white Gaussian noise of std ``sigma`` to one random region of every channel.

    Args:
        x: ``[channels, samples]``.
        rng: random generator.
        sigma: noise std, in the signal's unit (robust-scaled units in sleep staging).
        min_fraction, max_fraction, log_sample: region size, see :func:`region_length`.
    """
    x = _check_2d(x).copy()
    idx = _region(
        x.shape[1], region_length(x.shape[1], rng, min_fraction, max_fraction, log_sample), rng
    )
    x[:, idx] += rng.normal(0.0, sigma, size=(x.shape[0], idx.size)).astype(x.dtype)
    return x


def regional_erase(
    x: np.ndarray,
    rng: np.random.Generator,
    min_fraction: float = 0.001,
    max_fraction: float = 0.3,
    log_sample: bool = True,
    noise_sigma: float = 0.01,
) -> np.ndarray:
    """Replace one random region of every channel by noise (std ``noise_sigma``) around its mean.

    Args:
        x: ``[channels, samples]``.
        rng: random generator.
        min_fraction, max_fraction, log_sample: region size, see :func:`region_length`.
        noise_sigma: std of the filler noise, in the signal's unit.
    """
    x = _check_2d(x).copy()
    idx = _region(
        x.shape[1], region_length(x.shape[1], rng, min_fraction, max_fraction, log_sample), rng
    )
    mean = x.mean(axis=1, keepdims=True)
    x[:, idx] = (mean + rng.normal(0.0, noise_sigma, size=(x.shape[0], idx.size))).astype(x.dtype)
    return x


def elastic_deformation(
    x: np.ndarray,
    rng: np.random.Generator,
    alpha: Range = (0.0, 35.0),
    sigma: Range = (3.0, 30.0),
    fill_value: float = 0.0,
) -> np.ndarray:
    """Warp time smoothly: sample ``t`` is read from ``t + alpha * (g_sigma * u)(t)``.

    ``u`` is white noise, uniform on [-1, 1], and ``g_sigma`` a Gaussian kernel of std ``sigma``
    samples; the same warp applies to every channel. Larger ``sigma`` gives smoother, smaller
    displacements for the same ``alpha``.

    Args:
        x: ``[channels, samples]``.
        rng: random generator.
        alpha: displacement scale in samples, or a ``(low, high)`` range drawn uniformly.
        sigma: smoothing std in samples (> 0), or a ``(low, high)`` range drawn uniformly.
        fill_value: value of positions that read from outside the sequence.
    """
    x = _check_2d(x)
    a, s = _draw(alpha, rng), _draw(sigma, rng)
    if s <= 0:
        raise ValueError(f"sigma must be positive, got {s}")
    n = x.shape[1]
    grid = np.arange(n, dtype=np.float64)
    dx = gaussian_filter1d(rng.uniform(-1.0, 1.0, n), s, mode="constant", cval=0.0) * a
    where = grid + dx
    return np.stack(
        [np.interp(where, grid, ch, left=fill_value, right=fill_value) for ch in x]
    ).astype(x.dtype)


def channel_dropout(
    x: np.ndarray,
    rng: np.random.Generator,
    drop_fraction: float = 0.1,
    noise_sigma: float = 0.01,
) -> np.ndarray:
    """Replace ``max(1, int(drop_fraction * channels))`` random channels by noise at their mean.

    At least one channel always survives: with two channels (EEG + EOG) exactly one is dropped.

    Args:
        x: ``[channels, samples]`` with at least two channels.
        rng: random generator.
        drop_fraction: fraction of channels to drop.
        noise_sigma: std of the filler noise, in the signal's unit.

    Raises:
        ValueError: the fraction would drop every channel.
    """
    x = _check_2d(x).copy()
    n_chans = x.shape[0]
    n_drop = max(int(n_chans * drop_fraction), 1)
    if n_drop >= n_chans:
        raise ValueError(f"dropping {n_drop} of {n_chans} channels would leave none")
    for c in rng.choice(n_chans, n_drop, replace=False):
        x[c] = (x[c].mean() + rng.normal(0.0, noise_sigma, x.shape[1])).astype(x.dtype)
    return x
