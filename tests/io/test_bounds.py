"""Plausible-value bounds and the shared channel check, on their own."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sleepbench.errors import RecordingError
from sleepbench.io.bounds import (
    MAX_EDF_RECORD_S,
    MAX_EPOCH_S,
    MAX_FS_HZ,
    MAX_RECORDING_S,
    MIN_EPOCH_S,
    check_edf_record_duration,
    check_epoch_length,
    check_range,
    check_recording_length,
    check_sampling_rate,
    check_time,
)
from sleepbench.io.channel_checks import check_samples


def test_check_range_returns_the_value_as_float():
    assert check_range("f", "x", 3, 0, 10, "s") == 3.0
    assert isinstance(check_range("f", "x", np.int64(3), 0, 10, "s"), float)
    assert check_range("f", "x", 0, 0, 10, "s") == 0.0  # both ends are inclusive by default
    assert check_range("f", "x", 10, 0, 10, "s") == 10.0


@pytest.mark.parametrize("value", [-1, 10.5, math.nan, math.inf, -math.inf, "abc", None])
def test_check_range_refuses_values_outside_or_not_numbers(value):
    with pytest.raises(RecordingError) as err:
        check_range("night.edf", "onset of 'W'", value, 0, 10, "s")
    assert err.value.path == "night.edf"
    assert err.value.reason == f"onset of 'W' is {value!r} s, outside the allowed [0, 10] s"


def test_low_open_excludes_the_lower_end():
    with pytest.raises(RecordingError, match=r"is 0 Hz, outside the allowed \(0, 10\] Hz"):
        check_range("f", "rate", 0, 0, 10, "Hz", low_open=True)


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (lambda v: check_sampling_rate("f", "fs", v), [1e-3, 1.0, 48_000.0, MAX_FS_HZ], [0, -250, MAX_FS_HZ * 1.01]),
        (lambda v: check_recording_length("f", "n", v), [0, 8 * 3600, MAX_RECORDING_S], [-1, MAX_RECORDING_S + 1]),
        (lambda v: check_time("f", "t", v), [0, 30.0, MAX_RECORDING_S], [-0.5, MAX_RECORDING_S + 1, 1e300]),
        (lambda v: check_time("f", "t", v, signed=True), [-MAX_RECORDING_S, -0.5, 0], [-MAX_RECORDING_S - 1]),
        (lambda v: check_epoch_length("f", "e", v), [MIN_EPOCH_S, 30, 60, MAX_EPOCH_S], [1e-12, 0, 0.5, 301]),
        (
            lambda v: check_edf_record_duration("f", v, has_signals=True),
            [0.1, 1, 30, MAX_EDF_RECORD_S],
            [0, -1, 1e6, MAX_EDF_RECORD_S + 1],
        ),
    ],
)  # fmt: skip
def test_named_checks(check, good, bad):
    for value in good:
        assert check(value) == float(value)
    for value in bad:
        with pytest.raises(RecordingError, match="outside the allowed"):
            check(value)


def test_annotation_only_edf_may_have_zero_length_records():
    assert check_edf_record_duration("h.edf", 0, has_signals=False) == 0.0
    with pytest.raises(
        RecordingError, match=r"data record duration is 0 s, outside the allowed \("
    ):
        check_edf_record_duration("h.edf", 0, has_signals=True)


def test_bounds_leave_room_for_the_datasets_read():
    assert MAX_FS_HZ >= 2 * 48_000  # PSG-Audio's tracheal microphone
    assert MAX_RECORDING_S >= 24 * 3600  # Sleep-EDF cassette files span about a day
    assert MIN_EPOCH_S <= 30 <= 60 <= MAX_EPOCH_S  # sleep stages, Apnea-ECG minutes


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (np.array([], dtype=np.float32), "channel 'ECG' is empty"),
        (np.array([1.0, np.nan, 2.0]), "channel 'ECG' contains NaN or infinite values"),
        (np.array([1.0, np.inf]), "channel 'ECG' contains NaN or infinite values"),
        (np.full(10, 0.5), r"channel 'ECG' is flat \(every sample is 0.5\)"),
    ],
)
def test_check_samples_refuses_unusable_channels(data, reason):
    with pytest.raises(RecordingError, match=reason) as err:
        check_samples("rec.dat", "ECG", data)
    assert err.value.path == "rec.dat"


def test_check_samples_allows_flat_only_on_request():
    check_samples("f", "SaO2", np.array([0.0, 1.0]))
    check_samples("f", "SaO2", np.full(5, 97.0), allow_flat=True)
    with pytest.raises(RecordingError, match="NaN"):
        check_samples("f", "SaO2", np.array([np.nan, np.nan]), allow_flat=True)
