"""The one sanity check every reader applies to a channel's samples before returning them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sleepbench.errors import RecordingError

__all__ = ["check_samples"]


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
