"""Amplitude scaling and outlier handling shared by the tasks."""

from __future__ import annotations

import numpy as np


def iqr_bounds(x: np.ndarray, k: float) -> tuple[float, float]:
    """``(Q1 - k·IQR, Q3 + k·IQR)`` of the finite values of ``x``."""
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        raise ValueError("no finite values")
    q1, q3 = np.percentile(finite, [25, 75])
    iqr = q3 - q1
    return float(q1 - k * iqr), float(q3 + k * iqr)


def robust_mean_std(samples: np.ndarray, k: float = 3.0) -> tuple[float, float]:
    """Mean and std of ``samples`` after discarding values outside ``[Q1 - k·IQR, Q3 + k·IQR]``.

    This is the Apnea-ECG upstream normalisation (k = 3 over 500 random training segments);
    artefact spikes do not inflate the scale.
    """
    lo, hi = iqr_bounds(samples, k)
    kept = samples[(samples >= lo) & (samples <= hi)]
    std = float(kept.std())
    return float(kept.mean()), std if std > 0 else 1.0


def clip_iqr(x: np.ndarray, k: float = 20.0, axis: int = -1) -> np.ndarray:
    """Clip each channel of ``x`` to ``median ± k·IQR`` along ``axis`` (U-Time's quality control)."""
    med = np.median(x, axis=axis, keepdims=True)
    q1, q3 = np.percentile(x, [25, 75], axis=axis, keepdims=True)
    iqr = q3 - q1
    return np.clip(x, med - k * iqr, med + k * iqr)


def robust_scale(x: np.ndarray, axis: int = -1, eps: float = 1e-8) -> np.ndarray:
    """sklearn ``RobustScaler`` per channel: ``(x - median) / IQR`` along ``axis``."""
    med = np.median(x, axis=axis, keepdims=True)
    q1, q3 = np.percentile(x, [25, 75], axis=axis, keepdims=True)
    iqr = q3 - q1
    return ((x - med) / np.where(iqr > eps, iqr, 1.0)).astype(np.float32)


def minmax_scale(x: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Scale ``x`` to ``[0, 1]`` (a constant input becomes zeros)."""
    lo, hi = float(np.min(x)), float(np.max(x))
    if hi - lo < eps:
        return np.zeros_like(x, dtype=np.float32)
    return ((x - lo) / (hi - lo)).astype(np.float32)
