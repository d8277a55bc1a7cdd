"""Rational-ratio resampling of sampled signals (polyphase FIR, scipy ``resample_poly``)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly

__all__ = ["resample_ratio", "resample_to"]


def resample_ratio(
    fs_in_hz: float, fs_out_hz: float, max_denominator: int = 1000
) -> tuple[int, int]:
    """``(up, down)`` with ``fs_in_hz * up / down == fs_out_hz``, in lowest terms.

    Args:
        fs_in_hz: input sampling rate in Hz.
        fs_out_hz: output sampling rate in Hz.
        max_denominator: largest ``down`` allowed (the polyphase filter grows with ``up`` and
            ``down``; 100 -> 128 Hz is 32/25).

    Raises:
        ValueError: a rate is not positive, or the ratio is not rational within
            ``max_denominator`` (to 1e-9 relative).
    """
    if fs_in_hz <= 0 or fs_out_hz <= 0:
        raise ValueError(f"sampling rates must be positive, got {fs_in_hz} -> {fs_out_hz} Hz")
    ratio = Fraction(fs_out_hz / fs_in_hz).limit_denominator(max_denominator)
    if abs(float(ratio) * fs_in_hz - fs_out_hz) > 1e-9 * fs_out_hz:
        raise ValueError(
            f"{fs_in_hz} -> {fs_out_hz} Hz is not a ratio p/q with q <= {max_denominator}"
        )
    return ratio.numerator, ratio.denominator


def resample_to(x: np.ndarray, fs_in_hz: float, fs_out_hz: float, axis: int = -1) -> np.ndarray:
    """Resample ``x`` from ``fs_in_hz`` to ``fs_out_hz`` along ``axis`` (anti-aliased).

    Uses :func:`scipy.signal.resample_poly` (zero-phase polyphase FIR with a Kaiser window), the
    resampler of the U-Time / U-Sleep pipelines. ``n`` input samples give
    ``ceil(n * up / down)`` output samples, so a whole number of 30-s epochs at 100 Hz (3000
    samples each) becomes exactly 3840 samples per epoch at 128 Hz.

    Args:
        x: signal(s), any shape; float input keeps its dtype, other dtypes become float32.
        fs_in_hz: input rate in Hz.
        fs_out_hz: output rate in Hz.
        axis: time axis.

    Returns:
        The resampled array (a copy even when the rates are equal).
    """
    x = np.asarray(x)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float32)
    up, down = resample_ratio(fs_in_hz, fs_out_hz)
    if up == down:
        return x.astype(dtype, copy=True)
    return resample_poly(x, up, down, axis=axis).astype(dtype, copy=False)
