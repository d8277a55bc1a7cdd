"""SpO2 pre-processing of the MSC-Mamba-LSTM severity task (SPECS §3.1-3.2).

Pipeline (:func:`preprocess_spo2`): artefact interpolation -> resampling to 1 Hz -> truncation to
8 h -> smoothing (OSA-aware adaptive, or the paper's 11-point median / Butterworth baselines) ->
per-record min-max scaling -> padding to 8 h. Signals are 1-D arrays of SpO2 in percent.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any, Literal, Protocol

import numpy as np
from scipy import ndimage, signal

__all__ = [
    "SMOOTHERS",
    "Smoother",
    "adaptive_smooth",
    "adaptive_window_lengths",
    "butterworth_smooth",
    "fix_length",
    "interpolate_artefacts",
    "median_smooth",
    "minmax_scale",
    "preprocess_spo2",
    "resample_to",
]

#: 8 h at 1 Hz: the fixed network input length of the paper
EIGHT_HOURS_AT_1HZ = 28_800


def _as_1d_float(x: np.ndarray) -> np.ndarray:
    """``x`` as a 1-D float64 array (a copy is never modified in place by the callers)."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D signal, got shape {arr.shape}")
    return arr


def _round_to_odd(samples: np.ndarray) -> np.ndarray:
    """Nearest odd integer (halves round up), at least 1."""
    return np.maximum(1, 2 * np.floor((np.asarray(samples) - 1) / 2 + 0.5).astype(np.int64) + 1)


def interpolate_artefacts(
    x: np.ndarray, low: float = 50.0, high: float = 100.0
) -> tuple[np.ndarray, np.ndarray]:
    """Replace physiologically impossible SpO2 samples by linear interpolation.

    Samples below ``low`` % or above ``high`` % (and NaN/inf) are invalid (sensor off, probe
    displacement). Each one is linearly interpolated between its valid neighbours; leading and
    trailing runs take the nearest valid value.

    Returns
    -------
    ``(x_clean, invalid_mask)``: float64 signal of the same length, boolean mask of replaced
    samples.

    Raises
    ------
    ValueError
        When no sample is valid (e.g. a disconnected oximeter, or SpO2 stored as a fraction).
    """
    arr = _as_1d_float(x)
    if arr.size == 0:
        raise ValueError("empty SpO2 signal")
    with np.errstate(invalid="ignore"):
        invalid = ~np.isfinite(arr) | (arr < low) | (arr > high)
    if invalid.all():
        finite = arr[np.isfinite(arr)]
        found = (
            f"finite values span {finite.min():g} to {finite.max():g}"
            if finite.size
            else "all are NaN or infinite"
        )
        raise ValueError(
            f"no valid SpO2 sample: all {arr.size} values lie outside [{low:g}, {high:g}] % "
            f"({found}; is the channel stored as a fraction?)"
        )
    clean = arr.copy()
    if invalid.any():
        idx = np.arange(arr.size)
        clean[invalid] = np.interp(idx[invalid], idx[~invalid], arr[~invalid])
    return clean, invalid


def resample_to(x: np.ndarray, fs_hz: float, target_fs_hz: float = 1.0) -> np.ndarray:
    """Resample ``x`` from ``fs_hz`` to ``target_fs_hz`` with a polyphase anti-aliasing filter.

    The rate ratio is approximated by a fraction with denominator <= 1000; the signal is extended
    with its edge values (not zeros) so that the filter does not pull the first and last samples
    toward 0 %. Returns float64; a copy when the rates are equal.
    """
    arr = _as_1d_float(x)
    if fs_hz <= 0 or target_fs_hz <= 0:
        raise ValueError(f"sampling rates must be positive, got {fs_hz} and {target_fs_hz} Hz")
    ratio = Fraction(target_fs_hz / fs_hz).limit_denominator(1000)
    if ratio == 1:
        return arr.copy()
    return signal.resample_poly(arr, ratio.numerator, ratio.denominator, padtype="edge")


def fix_length(
    x: np.ndarray, n_samples: int = EIGHT_HOURS_AT_1HZ, pad_value: float = 0.0
) -> np.ndarray:
    """Keep the first ``n_samples`` samples of ``x``, or pad its end with ``pad_value``.

    Returns an array of exactly ``n_samples`` samples with ``x``'s dtype.
    """
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D signal, got shape {arr.shape}")
    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    if arr.size >= n_samples:
        return arr[:n_samples].copy()
    return np.pad(arr, (0, n_samples - arr.size), mode="constant", constant_values=pad_value)


def adaptive_window_lengths(
    x: np.ndarray,
    fs_hz: float = 1.0,
    w_min_s: float = 3.0,
    w_max_s: float = 15.0,
    sigma_window_s: float = 31.0,
) -> np.ndarray:
    """Per-sample smoothing window of the OSA-aware adaptive smoother, in samples (odd ints).

    SPECS §3.2 [ASSUMPTION]: ``sigma_t`` = standard deviation over a centred ``sigma_window_s``
    window; ``s_t = clip((sigma_t - P5) / (P95 - P5), 0, 1)`` with the record's 5th/95th
    percentiles of ``sigma``; window ``w_t = round_to_odd(w_max - s_t * (w_max - w_min))``. Busy
    stretches (desaturations, recoveries) get ``w_min``, a quiet baseline gets ``w_max``.
    """
    arr = _as_1d_float(x)
    if not 0 < w_min_s <= w_max_s:
        raise ValueError(f"need 0 < w_min_s <= w_max_s, got {w_min_s} and {w_max_s}")
    n_sigma = int(_round_to_odd(sigma_window_s * fs_hz))
    # centre the signal so that E[x^2] - E[x]^2 does not cancel ~96^2-sized numbers
    centred = arr - arr.mean()
    mean = ndimage.uniform_filter1d(centred, n_sigma, mode="reflect")
    mean_sq = ndimage.uniform_filter1d(centred**2, n_sigma, mode="reflect")
    sigma = np.sqrt(np.clip(mean_sq - mean**2, 0.0, None))
    p5, p95 = np.percentile(sigma, [5, 95])
    spread = p95 - p5
    # a record without any variability contrast is all baseline: longest window everywhere
    s = np.clip((sigma - p5) / spread, 0.0, 1.0) if spread > 0 else np.zeros_like(sigma)
    w_min, w_max = w_min_s * fs_hz, w_max_s * fs_hz
    return _round_to_odd(w_max - s * (w_max - w_min))


def adaptive_smooth(
    x: np.ndarray,
    fs_hz: float = 1.0,
    w_min_s: float = 3.0,
    w_max_s: float = 15.0,
    sigma_window_s: float = 31.0,
    statistic: Literal["mean", "median"] = "mean",
) -> np.ndarray:
    """OSA-aware adaptive smoothing: a centred moving mean/median whose length follows the local
    variability (see :func:`adaptive_window_lengths`).

    Vectorised: there are only ``(w_max - w_min) / 2 + 1`` distinct odd window lengths, so each is
    applied to the whole record once (edges extended with the edge value) and every output sample
    is taken from the filter of its own length. Returns float64 of the same length as ``x``.
    """
    if statistic not in ("mean", "median"):
        raise ValueError(f"statistic must be 'mean' or 'median', got {statistic!r}")
    arr = _as_1d_float(x)
    windows = adaptive_window_lengths(arr, fs_hz, w_min_s, w_max_s, sigma_window_s)
    out = np.empty_like(arr)
    for w in np.unique(windows):
        where = windows == w
        if statistic == "mean":
            filtered = ndimage.uniform_filter1d(arr, int(w), mode="nearest")
        else:
            filtered = ndimage.median_filter(arr, size=int(w), mode="nearest")
        out[where] = filtered[where]
    return out


def median_smooth(x: np.ndarray, kernel: int = 11) -> np.ndarray:
    """Centred running median over ``kernel`` samples (the paper's 11-point baseline).

    Edges are extended with the edge value (``scipy.signal.medfilt`` would pad zeros and drag the
    first and last samples toward 0 %). Returns float64.
    """
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be a positive odd number of samples, got {kernel}")
    return ndimage.median_filter(_as_1d_float(x), size=kernel, mode="nearest")


def butterworth_smooth(
    x: np.ndarray, fs_hz: float = 1.0, cutoff_hz: float = 0.1, order: int = 4
) -> np.ndarray:
    """Zero-phase Butterworth low-pass (``sosfiltfilt``; the paper's Table 5 baseline).

    ``order`` is that of the designed filter (the forward-backward pass doubles the attenuation).
    Returns float64.
    """
    if not 0 < cutoff_hz < fs_hz / 2:
        raise ValueError(f"cutoff_hz must be in (0, {fs_hz / 2}) Hz, got {cutoff_hz}")
    sos = signal.butter(order, cutoff_hz, btype="lowpass", fs=fs_hz, output="sos")
    return signal.sosfiltfilt(sos, _as_1d_float(x))


def minmax_scale(x: np.ndarray) -> np.ndarray:
    """Scale ``x`` to [0, 1] by its own minimum and maximum; a constant signal maps to zeros."""
    arr = _as_1d_float(x)
    lo, hi = arr.min(), arr.max()
    if hi == lo:
        return np.zeros_like(arr)
    return (arr - lo) / (hi - lo)


class Smoother(Protocol):
    """A registered smoother: ``(x, fs_hz, **params) -> smoothed x`` (float64, same length)."""

    def __call__(self, x: np.ndarray, fs_hz: float, **params: Any) -> np.ndarray: ...


def _adaptive(x: np.ndarray, fs_hz: float, **params: Any) -> np.ndarray:
    return adaptive_smooth(x, fs_hz=fs_hz, **params)


def _median(x: np.ndarray, fs_hz: float, **params: Any) -> np.ndarray:
    # the paper's kernel is a number of points (at 1 Hz), not seconds
    return median_smooth(x, **params)


def _butterworth(x: np.ndarray, fs_hz: float, **params: Any) -> np.ndarray:
    return butterworth_smooth(x, fs_hz=fs_hz, **params)


def _identity(x: np.ndarray, fs_hz: float, **params: Any) -> np.ndarray:
    if params:
        raise TypeError(f"smoothing 'none' takes no parameters, got {sorted(params)}")
    return _as_1d_float(x).copy()


#: smoothing options of the ablation (SPECS §3.2 and the paper's Table 5)
SMOOTHERS: dict[str, Smoother] = {
    "adaptive": _adaptive,
    "median": _median,
    "butterworth": _butterworth,
    "none": _identity,
}


def preprocess_spo2(
    x: np.ndarray,
    fs_hz: float,
    *,
    target_fs_hz: float = 1.0,
    n_samples: int = EIGHT_HOURS_AT_1HZ,
    artefact_low: float = 50.0,
    artefact_high: float = 100.0,
    smoothing: str = "adaptive",
    smoothing_params: Mapping[str, Any] | None = None,
    pad_value: float = 0.0,
) -> np.ndarray:
    """SpO2 record (percent, ``fs_hz``) -> the network input: ``n_samples`` float32 in [0, 1].

    Steps: :func:`interpolate_artefacts` -> :func:`resample_to` ``target_fs_hz`` (when the rate
    differs) -> keep the first ``n_samples`` -> ``SMOOTHERS[smoothing]`` -> :func:`minmax_scale`
    -> pad the end with ``pad_value`` up to ``n_samples``.

    SPECS §3.2 lists padding before smoothing; here a short record is padded *after* smoothing
    and scaling instead. Padding ~95 % SpO2 with zeros first would put a 95-point step into the
    record: the smoother would smear it into the last minutes of real data, the adaptive rule's
    variability percentiles would see a huge artificial event, and min-max scaling would map the
    real signal into a narrow band near 1. Padded this way the measured samples are processed
    exactly as a full-length record would be, and the tail is the constant ``pad_value`` (0, as
    the paper's zero padding) that the network can learn to ignore.

    Raises
    ------
    ValueError
        No valid sample (see :func:`interpolate_artefacts`), an unknown ``smoothing``, or a
        record too short for the chosen filter. Task code turns it into ``RecordingError``.
    """
    if smoothing not in SMOOTHERS:
        raise ValueError(f"unknown smoothing {smoothing!r}; choose one of {sorted(SMOOTHERS)}")
    clean, _ = interpolate_artefacts(x, artefact_low, artefact_high)
    clean = resample_to(clean, fs_hz, target_fs_hz)[:n_samples]
    smoothed = SMOOTHERS[smoothing](clean, target_fs_hz, **dict(smoothing_params or {}))
    scaled = minmax_scale(smoothed)
    return fix_length(scaled, n_samples, pad_value).astype(np.float32)
