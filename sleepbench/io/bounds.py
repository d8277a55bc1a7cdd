"""Plausible ranges for the numbers a recording file declares, checked before anything is sized.

A header field is a number someone typed or a bit flip changed: an EDF data record of 10^6 s, a
WFDB rate of 0, an ``EpochLength`` of 1e-12 s or a stage onset of 1e300 s would make a reader
allocate absurd memory or divide by zero long after the file was opened. Every reader checks the
numbers it sizes arrays or loops with here, once, right after parsing them, so that a bad file
gives one :class:`~sleepbench.errors.RecordingError` naming the file, the field, its value and the
allowed range. The limits are generous: they refuse only values no real recording has.
"""

from __future__ import annotations

import math
from pathlib import Path

from sleepbench.errors import RecordingError

__all__ = [
    "MAX_EDF_RECORD_S",
    "MAX_EPOCH_S",
    "MAX_FS_HZ",
    "MAX_RECORDING_S",
    "MIN_EPOCH_S",
    "check_edf_record_duration",
    "check_epoch_length",
    "check_range",
    "check_recording_length",
    "check_sampling_rate",
    "check_time",
]

#: Highest sampling rate in Hz (PSG-Audio's tracheal microphone is 48 kHz; twice that as headroom).
MAX_FS_HZ = 100_000.0
#: Longest recording in seconds (72 h: a night, or a weekend of ambulatory monitoring).
MAX_RECORDING_S = 72 * 3600.0
#: Longest EDF data record in seconds (real files use 1-60 s; an annotation-only file may hold
#: a whole night in one record).
MAX_EDF_RECORD_S = 24 * 3600.0
#: Shortest and longest scoring epoch in seconds (sleep stages use 30 s, Apnea-ECG 60 s).
MIN_EPOCH_S = 1.0
MAX_EPOCH_S = 300.0


def check_range(
    path: str | Path,
    what: str,
    value: float,
    low: float,
    high: float,
    unit: str,
    *,
    low_open: bool = False,
) -> float:
    """Check that ``value`` is a finite number in ``[low, high]`` (``(low, high]`` if ``low_open``).

    Args:
        path: the file named in the error.
        what: the field, in words (``"sampling rate of 'ECG'"``).
        value: the number read from the file.
        low, high: the allowed range, in ``unit``.
        unit: the unit of ``value`` (``"Hz"``, ``"s"``).
        low_open: exclude ``low`` itself (a rate or a duration that must be positive).

    Returns:
        ``value`` as a float.

    Raises:
        RecordingError: ``value`` is not a number, not finite or outside the range; the message
            names ``what``, the value and the range.
    """
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    inside = number > low if low_open else number >= low
    if not (math.isfinite(number) and inside and number <= high):
        bracket = "(" if low_open else "["
        unit = f" {unit}" if unit else ""
        raise RecordingError(
            path,
            f"{what} is {value!r}{unit}, outside the allowed {bracket}{low:g}, {high:g}]{unit}",
        )
    return number


def check_sampling_rate(path: str | Path, what: str, fs_hz: float) -> float:
    """Check a sampling rate: ``0 < fs_hz <= MAX_FS_HZ`` (Hz). Returns it as a float."""
    return check_range(path, what, fs_hz, 0.0, MAX_FS_HZ, "Hz", low_open=True)


def check_recording_length(path: str | Path, what: str, seconds: float) -> float:
    """Check a recording's length: ``0 <= seconds <= MAX_RECORDING_S``. Returns it as a float."""
    return check_range(path, what, seconds, 0.0, MAX_RECORDING_S, "s")


def check_time(path: str | Path, what: str, seconds: float, *, signed: bool = False) -> float:
    """Check an onset or duration in seconds: within ``[0, MAX_RECORDING_S]``.

    Args:
        path: the file named in the error.
        what: the field, in words.
        seconds: the value.
        signed: allow ``[-MAX_RECORDING_S, MAX_RECORDING_S]`` (EDF+ onsets may precede the start).

    Returns:
        ``seconds`` as a float.
    """
    low = -MAX_RECORDING_S if signed else 0.0
    return check_range(path, what, seconds, low, MAX_RECORDING_S, "s")


def check_edf_record_duration(path: str | Path, seconds: float, *, has_signals: bool) -> float:
    """Check an EDF data record duration: ``(0, MAX_EDF_RECORD_S]`` s, or ``0`` without signals.

    An annotation-only EDF+ file (a Sleep-EDF hypnogram) may declare records of 0 s; a file with
    ordinary signals needs a positive duration to have a sampling rate.
    """
    what = "data record duration"
    return check_range(path, what, seconds, 0.0, MAX_EDF_RECORD_S, "s", low_open=has_signals)


def check_epoch_length(path: str | Path, what: str, epoch_s: float) -> float:
    """Check a scoring epoch length: ``MIN_EPOCH_S <= epoch_s <= MAX_EPOCH_S`` (s)."""
    return check_range(path, what, epoch_s, MIN_EPOCH_S, MAX_EPOCH_S, "s")
