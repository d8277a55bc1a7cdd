"""EDF reader on bad input: truncated or inconsistent files, missing or ambiguous channels,
flat channels, broken calibration, header values out of bounds."""

from __future__ import annotations

import edfio
import numpy as np
import pytest

from sleepbench.errors import RecordingError
from sleepbench.io.edf import read_edf, read_edf_annotations, read_edf_header
from tests.io.edf_files import DURATION_S, make_signals, write_edf_file


def test_truncated_file_is_rejected(mixed_edf):
    path, _, _ = mixed_edf
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(RecordingError, match="truncated") as err:
        read_edf(path)
    assert str(path) in str(err.value)
    with pytest.raises(RecordingError, match="truncated"):
        read_edf_header(path)


def test_truncated_header_is_rejected(mixed_edf):
    path, _, _ = mixed_edf
    path.write_bytes(path.read_bytes()[:600])
    with pytest.raises(RecordingError, match="truncated header"):
        read_edf_header(path)


def test_unknown_record_count_is_inferred_from_the_file_size(mixed_edf):
    path, _, _ = mixed_edf
    raw = bytearray(path.read_bytes())
    raw[236:244] = b"-1".ljust(8)
    path.write_bytes(bytes(raw))
    assert read_edf_header(path)["n_records"] == DURATION_S
    assert read_edf(path, ["SaO2"]).signals["SaO2"].data.size == DURATION_S
    path.write_bytes(bytes(raw[:-3]))
    with pytest.raises(RecordingError, match="incomplete last data record"):
        read_edf(path)


def test_missing_channel_lists_what_exists(mixed_edf):
    path, _, _ = mixed_edf
    with pytest.raises(RecordingError, match="not found") as err:
        read_edf(path, {"ecg": ["ECG", "EKG"]})
    assert "'SaO2'" in err.value.reason and "'EEG Fpz-Cz'" in err.value.reason


def test_flat_channel_is_rejected_unless_allowed(tmp_path, rng):
    path = tmp_path / "flat.edf"
    signals = make_signals(rng)
    signals["SaO2"] = (np.full(DURATION_S, 97.0), 1, "%")
    signals["Zeros"] = (np.zeros(DURATION_S), 1, "")
    write_edf_file(path, signals)
    for label in ("SaO2", "Zeros"):
        with pytest.raises(RecordingError, match=f"'{label}' is flat"):
            read_edf(path, [label])
    assert read_edf(path, ["EEG Fpz-Cz"]).signals["EEG Fpz-Cz"].data.std() > 0
    flat = read_edf(path, ["SaO2"], allow_flat=True).signals["SaO2"].data
    np.testing.assert_allclose(flat, 97.0, atol=1e-3)


def test_expected_rate(mixed_edf):
    path, _, _ = mixed_edf
    assert read_edf(path, {"spo2": ["SaO2"]}, expected_fs_hz={"spo2": 1}).signals
    with pytest.raises(RecordingError, match="sampled at 100 Hz, expected 128"):
        read_edf(path, ["EEG Fpz-Cz"], expected_fs_hz=128)
    with pytest.raises(RecordingError, match="'spo2' is sampled at 1 Hz, expected 4"):
        read_edf(path, {"spo2": ["SaO2"]}, expected_fs_hz={"spo2": 4})


def test_nan_calibration_is_rejected(mixed_edf):
    path, _, _ = mixed_edf
    raw = bytearray(path.read_bytes())
    n_signals = int(raw[252:256])
    # physical_min of the first signal follows the label, transducer and unit fields of all.
    start = 256 + n_signals * (16 + 80 + 8)
    raw[start : start + 8] = b"nan".ljust(8)
    path.write_bytes(bytes(raw))
    with pytest.raises(RecordingError, match="physical_min"):
        read_edf(path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "only 0 bytes"),
        (b"hello" * 100, "version field"),
        (b"\xffBIOSEMI" + b" " * 300, "BDF"),
    ],
)
def test_not_an_edf(tmp_path, content, reason):
    path = tmp_path / "x.edf"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=reason):
        read_edf(path)


def test_missing_file(tmp_path):
    with pytest.raises(RecordingError, match="file not found"):
        read_edf(tmp_path / "nope.edf")
    with pytest.raises(RecordingError, match="file not found"):
        read_edf_annotations(tmp_path / "nope.edf")


def test_duplicate_label_is_ambiguous(tmp_path, rng):
    path = tmp_path / "dup.edf"
    eeg = make_signals(rng)["EEG Fpz-Cz"]
    edfio.Edf(
        [edfio.EdfSignal(eeg[0], 100, label="EEG"), edfio.EdfSignal(-eeg[0], 100, label="EEG")]
    ).write(path)
    with pytest.raises(RecordingError, match="occurs 2 times"):
        read_edf(path, ["EEG"])


# --- hardening: sizes, calibration, labels, bounds ------------------------------------------


def _signal_field(raw: bytes | bytearray, field: str, signal: int) -> slice:
    """Byte range of one per-signal header field (fields are stored field by field)."""
    widths = {"label": 16, "transducer": 80, "unit": 8, "physical_min": 8, "physical_max": 8}
    n_signals = int(raw[252:256])
    start = 256
    for name, width in widths.items():
        if name == field:
            return slice(start + signal * width, start + (signal + 1) * width)
        start += n_signals * width
    raise KeyError(field)


def test_extra_whole_records_are_refused(mixed_edf):
    """A stale record count (half the night declared) must not silently drop the other half."""
    path, _, _ = mixed_edf
    raw = bytearray(path.read_bytes())
    raw[236:244] = str(DURATION_S // 2).encode().ljust(8)
    path.write_bytes(bytes(raw))
    for read in (read_edf, read_edf_header):
        with pytest.raises(RecordingError, match=f"holds {DURATION_S // 2} more data records"):
            read(path)


def test_trailing_partial_record_is_refused(mixed_edf):
    path, _, _ = mixed_edf
    record_bytes = read_edf_header(path)["record_bytes"]
    path.write_bytes(path.read_bytes() + b"\x00" * (record_bytes - 1))
    with pytest.raises(RecordingError, match=f"{record_bytes - 1} bytes after the last declared"):
        read_edf(path)


def test_empty_physical_range_is_refused(mixed_edf):
    path, _, _ = mixed_edf
    raw = bytearray(path.read_bytes())
    sao2 = read_edf_header(path)["channels"].index("SaO2")
    raw[_signal_field(raw, "physical_max", sao2)] = raw[_signal_field(raw, "physical_min", sao2)]
    path.write_bytes(bytes(raw))
    with pytest.raises(RecordingError, match="'SaO2': physical minimum equals physical maximum"):
        read_edf(path, ["SaO2"])
    assert read_edf(path, ["EEG Fpz-Cz"]).signals  # the other channels stay readable


@pytest.mark.parametrize("label", [b"EEG\x07Fpz-Cz", b"EEG \xb5V", b"\xff\xfe"])
def test_label_that_is_not_text_is_refused(mixed_edf, label):
    path, _, _ = mixed_edf
    raw = bytearray(path.read_bytes())
    raw[_signal_field(raw, "label", 1)] = label.ljust(16)
    path.write_bytes(bytes(raw))
    with pytest.raises(RecordingError, match="label of signal 2 is not printable text"):
        read_edf_header(path)


@pytest.mark.parametrize(
    ("duration", "reason"),
    [
        (b"1000000", r"data record duration is 1000000.0 s, outside the allowed \(0, 86400\] s"),
        (b"0", r"data record duration is 0.0 s, outside the allowed \(0, "),
        (b"-1", "data record duration is -1.0 s"),
    ],
)
def test_record_duration_out_of_bounds_is_refused(mixed_edf, duration, reason):
    """A 10^6-s record once made edfio allocate 196 GiB; now the header check stops it."""
    path, _, _ = mixed_edf
    raw = bytearray(path.read_bytes())
    raw[244:252] = duration.ljust(8)
    path.write_bytes(bytes(raw))
    for read in (read_edf_header, read_edf):
        with pytest.raises(RecordingError, match=reason):
            read(path)


def test_recording_longer_than_the_bound_is_refused(mixed_edf):
    path, _, _ = mixed_edf
    raw = bytearray(path.read_bytes())
    raw[244:252] = b"5000".ljust(8)  # 60 records of 5000 s: 83 h
    path.write_bytes(bytes(raw))
    with pytest.raises(RecordingError, match=r"recording length is 300000.0 s, outside"):
        read_edf_header(path)
