"""WFDB reader: real records against wfdb itself, and every malformed-input error."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import wfdb

from sleepbench.errors import RecordingError
from sleepbench.io.channel_checks import interpolate_nan_runs
from sleepbench.io.wfdb import (
    read_annotation_samples,
    read_wfdb_header,
    read_wfdb_record,
    record_stem,
)

FS = 100


def _write(tmp_path: Path, name: str, signal: np.ndarray, fmt: str = "16") -> Path:
    """Write a 2-D physical signal (samples x channels) as a WFDB record; return its stem."""
    n_ch = signal.shape[1]
    wfdb.wrsamp(
        name,
        fs=FS,
        units=["mV"] * n_ch,
        sig_name=["ECG", "Resp"][:n_ch],
        p_signal=signal,
        fmt=[fmt] * n_ch,
        write_dir=str(tmp_path),
    )
    return tmp_path / name


@pytest.fixture
def synthetic(tmp_path: Path) -> tuple[Path, np.ndarray]:
    t = np.arange(3000) / FS
    signal = np.stack([np.sin(2 * np.pi * 1.2 * t), 0.5 * np.cos(2 * np.pi * 0.25 * t)], axis=1)
    return _write(tmp_path, "rec", signal), signal


# --- real records --------------------------------------------------------------------------------


@pytest.mark.samples
def test_mitdb_100_matches_wfdb(samples_dir: Path) -> None:
    stem = samples_dir / "wfdb_sample" / "100"
    recording = read_wfdb_record(stem)
    reference = wfdb.rdrecord(str(stem))
    assert list(recording.signals) == ["MLII", "V5"]
    assert recording.record_id == recording.subject_id == "100"
    for i, name in enumerate(reference.sig_name):
        signal = recording.signals[name]
        assert signal.fs_hz == 360.0
        assert signal.data.dtype == np.float32
        assert signal.data.shape == (650_000,)
        assert signal.unit == "mV"
        np.testing.assert_allclose(signal.data, reference.p_signal[:, i], rtol=1e-6, atol=1e-6)
    assert recording.meta["nan_filled_samples"] == {"MLII": 0, "V5": 0}
    assert recording.signals["MLII"].duration_s == pytest.approx(650_000 / 360)


@pytest.mark.samples
def test_channel_selection_is_case_insensitive_and_absent_channel_raises(
    samples_dir: Path,
) -> None:
    stem = samples_dir / "wfdb_sample" / "100"
    recording = read_wfdb_record(stem, channels=["v5"], record_id="r100", subject_id="p1")
    assert list(recording.signals) == ["V5"]
    assert (recording.record_id, recording.subject_id) == ("r100", "p1")
    with pytest.raises(RecordingError, match=r"100\.hea.*'EEG' absent"):
        read_wfdb_record(stem, channels=["EEG"])


@pytest.mark.samples
def test_mimic_multirate_record_keeps_each_channel_rate(samples_dir: Path) -> None:
    stem = samples_dir / "wfdb_sample" / "03700181"
    recording = read_wfdb_record(str(stem) + ".hea")
    reference = wfdb.rdrecord(str(stem), smooth_frames=False)
    expected = {"MCL1": (500.0, "mV"), "ABP": (125.0, "mmHg"), "RESP": (125.0, "mV")}
    assert {k: (s.fs_hz, s.unit) for k, s in recording.signals.items()} == expected
    for i, name in enumerate(reference.sig_name):
        signal = recording.signals[name]
        assert signal.duration_s == pytest.approx(600.0)  # 75,000 frames at 125 Hz
        finite = np.isfinite(reference.e_p_signal[i])
        np.testing.assert_allclose(signal.data[finite], reference.e_p_signal[i][finite], rtol=1e-6)
    # RESP is skewed by 4 samples: its last 4 are absent (NaN) and hold the last real value.
    assert recording.meta["nan_filled_samples"] == {"MCL1": 0, "ABP": 0, "RESP": 4}
    resp = recording.signals["RESP"].data
    assert np.all(resp[-4:] == resp[-5])


@pytest.mark.samples
def test_read_annotation_samples_matches_rdann(samples_dir: Path) -> None:
    stem = samples_dir / "wfdb_sample" / "100"
    samples, symbols, fs_hz = read_annotation_samples(stem, "atr")
    reference = wfdb.rdann(str(stem), "atr")
    assert samples.dtype == np.int64
    np.testing.assert_array_equal(samples, reference.sample)
    assert symbols == reference.symbol
    assert fs_hz == 360.0
    with pytest.raises(RecordingError, match=r"100\.apn: missing annotation file"):
        read_annotation_samples(stem, "apn")


# --- synthetic records: round trip and malformed input -------------------------------------------


def test_round_trip_of_written_record(synthetic: tuple[Path, np.ndarray]) -> None:
    stem, signal = synthetic
    recording = read_wfdb_record(stem)
    assert recording.record_id == "rec"
    assert recording.meta == {
        "header_fs_hz": 100.0,
        "n_frames": 3000,
        "nan_filled_samples": {"ECG": 0, "Resp": 0},
    }
    for i, name in enumerate(["ECG", "Resp"]):
        np.testing.assert_allclose(recording.signals[name].data, signal[:, i], atol=1e-3)


def test_missing_header(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match=r"nope\.hea: missing WFDB header"):
        read_wfdb_record(tmp_path / "nope")


def test_unparsable_header(tmp_path: Path) -> None:
    (tmp_path / "bad.hea").write_text("bad 1 100\n!!! not a signal line\n")
    with pytest.raises(RecordingError, match=r"bad\.hea: unparsable WFDB header"):
        read_wfdb_header(tmp_path / "bad")


def test_missing_dat(synthetic: tuple[Path, np.ndarray]) -> None:
    stem, _ = synthetic
    (stem.parent / "rec.dat").unlink()
    with pytest.raises(RecordingError, match=r"rec\.dat: missing signal file named in rec\.hea"):
        read_wfdb_record(stem)


def test_truncated_dat_names_both_sizes(synthetic: tuple[Path, np.ndarray]) -> None:
    stem, _ = synthetic
    dat = stem.parent / "rec.dat"
    assert dat.stat().st_size == 3000 * 2 * 2  # 2 channels of 16-bit samples
    with dat.open("r+b") as handle:
        handle.truncate(5000)
    with pytest.raises(RecordingError, match=r"rec\.dat: truncated \.dat: 5000 bytes .* 12000"):
        read_wfdb_record(stem)


def test_dat_larger_than_header_says(synthetic: tuple[Path, np.ndarray]) -> None:
    stem, _ = synthetic
    with (stem.parent / "rec.dat").open("ab") as handle:
        handle.write(bytes(400))
    with pytest.raises(RecordingError, match=r"rec\.dat: header/size mismatch: 12400 .* 12000"):
        read_wfdb_record(stem)


def test_header_claims_more_samples_than_dat_holds(synthetic: tuple[Path, np.ndarray]) -> None:
    stem, _ = synthetic
    hea = stem.parent / "rec.hea"
    hea.write_text(hea.read_text().replace("rec 2 100 3000", "rec 2 100 3500"))
    with pytest.raises(RecordingError, match=r"truncated \.dat: 12000 bytes .* 14000"):
        read_wfdb_record(stem)


def test_format_212_size_check_counts_half_bytes(tmp_path: Path) -> None:
    signal = np.sin(np.arange(301) / 7.0)[:, None]  # odd count: 212 pads the last byte
    stem = _write(tmp_path, "p", signal, fmt="212")
    assert (tmp_path / "p.dat").stat().st_size == math.ceil(301 * 1.5)
    assert read_wfdb_record(stem).signals["ECG"].data.shape == (301,)


def test_short_nan_run_is_interpolated(tmp_path: Path) -> None:
    signal = (0.01 * np.arange(3000))[:, None] + np.zeros((1, 2))  # a ramp: linear fill is exact
    signal[1000:1050, 0] = np.nan  # 0.5 s gap
    stem = _write(tmp_path, "gap", signal)
    recording = read_wfdb_record(stem)
    ecg = recording.signals["ECG"].data
    assert np.isfinite(ecg).all()
    np.testing.assert_allclose(ecg[1000:1050], 0.01 * np.arange(1000, 1050), atol=2e-3)
    assert recording.meta["nan_filled_samples"] == {"ECG": 50, "Resp": 0}


def test_long_nan_run_raises(tmp_path: Path) -> None:
    signal = np.sin(np.arange(3000) / 9.0)[:, None]
    signal[500:2000, 0] = np.nan  # 15 s gap
    stem = _write(tmp_path, "hole", signal)
    with pytest.raises(
        RecordingError, match=r"hole\.dat: channel 'ECG' has a NaN run of 15\.000 s"
    ):
        read_wfdb_record(stem)
    # a larger limit accepts it
    assert read_wfdb_record(stem, max_nan_run_s=20).meta["nan_filled_samples"]["ECG"] == 1500


def test_all_nan_channel_raises(tmp_path: Path) -> None:
    digital = np.full((300, 1), -32768, dtype=np.int32)  # WFDB's invalid value for format 16
    wfdb.wrsamp(
        "dead",
        fs=FS,
        units=["mV"],
        sig_name=["ECG"],
        d_signal=digital,
        fmt=["16"],
        adc_gain=[200.0],
        baseline=[0],
        write_dir=str(tmp_path),
    )
    with pytest.raises(RecordingError, match=r"dead\.dat: channel 'ECG' is entirely NaN"):
        read_wfdb_record(tmp_path / "dead")


def test_duplicate_channel_names_are_kept_apart(tmp_path: Path) -> None:
    # wrsamp refuses duplicate names, but real headers have them (two "ECG" leads): patch one in.
    signal = np.stack([np.arange(200.0) / 100, -np.arange(200.0) / 100], axis=1)
    stem = _write(tmp_path, "dup", signal)
    hea = tmp_path / "dup.hea"
    hea.write_text(hea.read_text().replace(" Resp\n", " ECG\n"))
    recording = read_wfdb_record(stem)
    assert list(recording.signals) == ["ECG", "ECG_2"]
    assert recording.signals["ECG_2"].name == "ECG"
    assert recording.signals["ECG_2"].data[10] == pytest.approx(-0.1, abs=1e-3)


# --- NaN interpolation on arrays -----------------------------------------------------------------


def test_interpolate_nan_runs_linear_inside_and_held_at_edges() -> None:
    x = np.array([np.nan, np.nan, 1.0, np.nan, np.nan, 4.0, np.inf, np.nan])
    filled, n = interpolate_nan_runs(x, fs_hz=1.0, max_nan_run_s=2.0, path="f", channel="c")
    np.testing.assert_array_equal(filled, [1, 1, 1, 2, 3, 4, 4, 4])
    assert filled.dtype == np.float32
    assert n == 6
    assert np.isnan(x[0]) and np.isinf(x[6])  # the input is not modified


def test_interpolate_nan_runs_limit_is_inclusive() -> None:
    x = np.array([0.0, np.nan, np.nan, 3.0])
    filled, _ = interpolate_nan_runs(x, fs_hz=2.0, max_nan_run_s=1.0, path="f", channel="c")
    np.testing.assert_array_equal(filled, [0, 1, 2, 3])
    with pytest.raises(RecordingError, match=r"f: channel 'c' has a NaN run of 1\.000 s"):
        interpolate_nan_runs(x, fs_hz=2.0, max_nan_run_s=0.5, path="f", channel="c")


def test_interpolate_nan_runs_rejects_empty_channel() -> None:
    with pytest.raises(RecordingError, match="has no samples"):
        interpolate_nan_runs(np.array([]), fs_hz=1.0, max_nan_run_s=1.0, path="f", channel="c")


# --- hardening: the record line, signal lines, flat channels, record stems -----------------------


def _patch_header(stem: Path, old: str, new: str) -> None:
    """Replace the first ``old`` in the record's header (the record line or first signal line)."""
    hea = stem.with_name(stem.name + ".hea")
    text = hea.read_text()
    assert old in text
    hea.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("record_line", "reason"),
    [
        ("rec 2", r"no sampling frequency \(wfdb would assume 250 Hz\)"),
        ("rec 2 abc 3000", "sampling frequency 'abc' is not a number"),
        ("rec 2 -100 3000", r"sampling frequency is -100.0 Hz, outside the allowed \(0, 100000\]"),
        ("rec 2 0 3000", "sampling frequency is 0.0 Hz, outside"),
        ("rec 2 1e6 3000", "sampling frequency is 1000000.0 Hz, outside"),
        ("rec 2 100x 3000", "sampling frequency '100x' is not a number"),
        ("rec 2 100 30x0", "signal length '30x0'"),
        ("rec 2 0.001 3000", r"record length \(3000 frames\) is 3000000.0 s, outside"),
        ("rec/2 2 100 3000", "multi-segment records are not supported"),
        ("rec 3 100 3000", "record line says 3 signals but 2 signal lines follow"),
        ("rec 0 100 3000", "header lists no signals"),
        ("other 2 100 3000", "record line names record 'other', not 'rec'"),
    ],
)
def test_bad_record_line_is_refused(
    synthetic: tuple[Path, np.ndarray], record_line: str, reason: str
) -> None:
    """wfdb silently reads a missing, unreadable or negative rate as 250 Hz; we refuse it."""
    stem, _ = synthetic
    _patch_header(stem, "rec 2 100 3000", record_line)
    with pytest.raises(RecordingError, match=reason) as err:
        read_wfdb_record(stem)
    assert err.value.path == str(stem.with_name("rec.hea"))


def test_rate_from_a_header_without_one_is_refused_for_annotations(tmp_path: Path) -> None:
    wfdb.wrann("a05", "apn", np.array([0, 6000]), symbol=["N", "A"], write_dir=str(tmp_path))
    (tmp_path / "a05.hea").write_text("a05 1\na05.dat 16 200 12 0 0 0 0 ECG\n")
    with pytest.raises(RecordingError, match="no sampling frequency"):
        read_annotation_samples(tmp_path / "a05", "apn")


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("rec.dat 16 ", "rec.dat 99 ", "signal 1: unsupported format '99'"),
        ("rec.dat 16 ", "rec.dat 16x0 ", "signal 1: 0 samples per frame"),
        ("rec.dat 16 ", "rec.dat 16x2000 ", r"sampling rate of 'ECG' is 200000.0 Hz, outside"),
        (" 0 ECG\n", " 0\n", "signal 1 has no name"),
    ],
)
def test_bad_signal_line_is_refused(
    synthetic: tuple[Path, np.ndarray], old: str, new: str, reason: str
) -> None:
    stem, _ = synthetic
    _patch_header(stem, old, new)
    with pytest.raises(RecordingError, match=reason):
        read_wfdb_record(stem)


def test_non_ascii_header_is_refused(synthetic: tuple[Path, np.ndarray]) -> None:
    """wfdb drops non-ASCII bytes ("1\xff00" would read as 100 Hz); we refuse the header."""
    stem, _ = synthetic
    hea = stem.with_name("rec.hea")
    hea.write_bytes(hea.read_bytes().replace(b"rec 2 100", b"rec 2 1\xff00"))
    with pytest.raises(RecordingError, match="header is not ASCII text"):
        read_wfdb_header(stem)


def test_flat_channel_is_refused_unless_allowed(tmp_path: Path) -> None:
    """The same rule as the EDF reader: a constant channel is a disconnected sensor."""
    t = np.arange(600) / FS
    stem = _write(tmp_path, "flat", np.stack([np.sin(t), np.full(t.size, 0.25)], axis=1))
    with pytest.raises(RecordingError, match=r"flat\.dat: channel 'Resp' is flat"):
        read_wfdb_record(stem)
    assert read_wfdb_record(stem, ["ECG"]).signals["ECG"].data.std() > 0
    flat = read_wfdb_record(stem, ["Resp"], allow_flat=True).signals["Resp"].data
    np.testing.assert_allclose(flat, 0.25, atol=1e-3)


@pytest.mark.parametrize("suffix", ["", ".hea", ".dat", ".apn", ".qrs", ".atr", ".xws"])
def test_record_stem_accepts_the_files_of_a_record(suffix: str) -> None:
    assert record_stem(f"data/apnea-ecg/a01{suffix}") == Path("data/apnea-ecg/a01")


@pytest.mark.parametrize("name", ["a01.xyz", "a01.edf", "a01.hea.bak"])
def test_record_stem_refuses_other_extensions(name: str) -> None:
    with pytest.raises(RecordingError, match="not a WFDB record: unknown extension"):
        record_stem(Path("data") / name)
