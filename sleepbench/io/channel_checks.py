"""Checks every reader applies to a channel's samples before returning them: the one
empty/NaN/flat rule, and the filling of short NaN runs (invalid samples) by interpolation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sleepbench.errors import RecordingError

__all__ = ["check_samples", "interpolate_nan_runs"]


def check_samples(
    path: str | Path, channel: str, data: np.ndarray, *, allow_flat: bool = False
) -> None:
    """Refuse a channel that holds no usable signal.

    Args:
        path: the file named in the error.
        channel: the channel's label, named in the error.
        data: the channel's samples in physical units (any float dtype).
        allow_flat: accept a channel whose samples are all equal. Off by default: a constant
            channel is a disconnected sensor (or a zeroed calibration) in every dataset
            sleepbench reads.

    Raises:
        RecordingError: the channel is empty, holds NaN or infinite values, or is flat.
    """
    if data.size == 0:
        raise RecordingError(path, f"channel {channel!r} is empty")
    if not np.isfinite(data).all():
        raise RecordingError(path, f"channel {channel!r} contains NaN or infinite values")
    if not allow_flat and data.min() == data.max():
        raise RecordingError(path, f"channel {channel!r} is flat (every sample is {data[0]:g})")


def interpolate_nan_runs(
    data: np.ndarray, fs_hz: float, max_nan_run_s: float, path: str | Path, channel: str
) -> tuple[np.ndarray, int]:
    """Fill short runs of non-finite samples by linear interpolation.

    Args:
        data: 1-D samples (any float dtype).
        fs_hz: sampling rate in Hz, to express runs in seconds.
        max_nan_run_s: longest run (seconds) that may be filled; ``math.inf`` fills any run.
        path: file named in the error.
        channel: channel named in the error.

    Returns:
        ``(filled, n_filled)``: a float32 copy with every non-finite sample replaced by the
        straight line between its finite neighbours (a run touching either end of the channel
        takes the nearest finite value), and the number of samples filled.

    Raises:
        RecordingError: the channel is empty, has no finite sample, or has a run longer than
            ``max_nan_run_s``.
    """
    x = np.array(data, dtype=np.float64)  # a copy: the caller's array is left as it was
    if x.size == 0:
        raise RecordingError(path, f"channel {channel!r} has no samples")
    bad = ~np.isfinite(x)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return x.astype(np.float32), 0
    if n_bad == x.size:
        raise RecordingError(path, f"channel {channel!r} is entirely NaN")
    # Run boundaries from the edges of the boolean mask.
    edges = np.diff(np.concatenate(([0], bad.view(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    longest = int(np.argmax(stops - starts))
    run = stops[longest] - starts[longest]
    if run > max_nan_run_s * fs_hz:
        raise RecordingError(
            path,
            f"channel {channel!r} has a NaN run of {run / fs_hz:.3f} s "
            f"({run} samples from {starts[longest] / fs_hz:.3f} s), longer than the "
            f"{max_nan_run_s} s allowed",
        )
    good = np.flatnonzero(~bad)
    x[bad] = np.interp(np.flatnonzero(bad), good, x[good])
    return x.astype(np.float32), n_bad
