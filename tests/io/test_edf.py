"""EDF reader: native rates, physical values, validation, PHI, EDF+ annotations."""

from __future__ import annotations

import datetime
from pathlib import Path

import edfio
import mne
import numpy as np
import pytest

from sleepbench.errors import RecordingError
from sleepbench.io.edf import read_edf, read_edf_annotations, read_edf_header

DURATION_S = 60
PATIENT_NAME = "Haagse_Harry"
PATIENT_CODE = "MCH-0234567"
BIRTHDATE = datetime.date(1951, 5, 2)


def _quantum(signal: edfio.EdfSignal) -> float:
    """Physical value of one digital step: the EDF quantisation of a channel."""
    pmin, pmax = signal.physical_range
    dmin, dmax = signal.digital_range
    return (pmax - pmin) / (dmax - dmin)


def _signals(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, float, str]]:
    t = np.arange(DURATION_S * 100) / 100
    return {
        "EEG Fpz-Cz": (40 * np.sin(2 * np.pi * 1.7 * t) + rng.normal(0, 5, t.size), 100, "uV"),
        "EOG horizontal": (rng.normal(0, 30, t.size), 100, "uV"),
        "SaO2": (np.linspace(88, 98, DURATION_S) + rng.normal(0, 0.3, DURATION_S), 1, "%"),
        "Resp oro-nasal": (rng.normal(0, 1, DURATION_S * 10), 10, "mV"),
    }


def _write(path: Path, signals, *, annotations=(), record_s: float = 1.0, **kwargs) -> edfio.Edf:
    edf = edfio.Edf(
        [
            edfio.EdfSignal(data, fs, label=label, physical_dimension=unit)
            for label, (data, fs, unit) in signals.items()
        ],
        data_record_duration=record_s,
        # edfio writes EDF+C whenever it is given annotations, even none: pass them only if any.
        **({"annotations": annotations} if annotations else {}),
        **kwargs,
    )
    edf.write(path)
    return edf


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def mixed_edf(tmp_path, rng):
    """A plain EDF with EEG/EOG at 100 Hz, respiration at 10 Hz and SaO2 at 1 Hz."""
    path = tmp_path / "mixed.edf"
    signals = _signals(rng)
    edf = _write(
        path,
        signals,
        patient=edfio.Patient(code=PATIENT_CODE, sex="F", birthdate=BIRTHDATE, name=PATIENT_NAME),
        recording=edfio.Recording(startdate=datetime.date(2003, 7, 14)),
        starttime=datetime.time(22, 15, 30),
    )
    return path, signals, edf


def test_each_channel_comes_back_at_its_native_rate_and_physical_values(mixed_edf):
    path, signals, edf = mixed_edf
    rec = read_edf(path)
    assert list(rec.signals) == list(signals)
    for written, (label, (data, fs, unit)) in zip(edf.signals, signals.items()):
        sig = rec.signals[label]
        assert sig.name == label
        assert sig.fs_hz == fs
        assert sig.unit == unit
        assert sig.data.dtype == np.float32
        assert sig.data.shape == (DURATION_S * fs,)
        # Within half a digital step (the EDF quantisation) plus float32 rounding.
        tol = _quantum(written) / 2 + np.abs(data).max() * 1e-6
        np.testing.assert_allclose(sig.data, data, rtol=0, atol=tol)
    assert rec.events == []
    assert rec.epoch_labels is None
    assert rec.record_id == "mixed" and rec.subject_id == "mixed"


def test_values_match_mne_read_one_channel_at_a_time(mixed_edf):
    """mne resamples mixed rates when channels are read together; alone each is native."""
    path, signals, _ = mixed_edf
    rec = read_edf(path)
    for label, (_, fs, unit) in signals.items():
        raw = mne.io.read_raw_edf(path, include=[label], preload=False, verbose="error")
        assert raw.info["sfreq"] == fs
        ref = raw.get_data()[0]
        scale = 1e6 if unit == "uV" else 1e3 if unit == "mV" else 1.0  # mne returns SI volts
        np.testing.assert_allclose(rec.signals[label].data, ref * scale, rtol=1e-5, atol=1e-4)


def test_mne_would_upsample_the_slow_channel(mixed_edf):
    """Guards the reason this reader uses edfio: mne brings SaO2 up to 100 Hz."""
    path, _, _ = mixed_edf
    raw = mne.io.read_raw_edf(path, include=["EEG Fpz-Cz", "SaO2"], verbose="error")
    assert raw.info["sfreq"] == 100
    assert read_edf(path, ["SaO2"]).signals["SaO2"].data.size == DURATION_S


def test_canonical_names_with_aliases_and_only_requested_channels(mixed_edf):
    path, _, _ = mixed_edf
    rec = read_edf(
        path,
        {"spo2": ["SpO2", "sao2"], "eeg": "EEG Fpz-Cz", "eog": ["EOG(L)", "EOG horizontal"]},
        record_id="night1",
        subject_id="subj7",
    )
    assert list(rec.signals) == ["spo2", "eeg", "eog"]
    assert rec.signals["spo2"].name == "SaO2"  # the file's label, matched case-insensitively
    assert rec.signals["eog"].name == "EOG horizontal"
    assert (rec.record_id, rec.subject_id) == ("night1", "subj7")
    assert rec.signal("SPO2") is rec.signals["spo2"]


def test_header_fields(mixed_edf):
    path, signals, _ = mixed_edf
    header = read_edf_header(path)
    assert header["channels"] == list(signals)
    assert header["fs_hz"] == [100.0, 100.0, 1.0, 10.0]
    assert header["units"] == ["uV", "uV", "%", "mV"]
    assert header["samples_per_record"] == [100, 100, 1, 10]
    assert header["n_records"] == DURATION_S
    assert header["record_duration_s"] == 1.0
    assert header["duration_s"] == DURATION_S
    assert header["start_datetime"] == datetime.datetime(2003, 7, 14, 22, 15, 30)
    assert header["edf_plus"] is None
    assert header["header_bytes"] == 256 * (1 + 4)
    assert header["record_bytes"] == 2 * (100 + 100 + 1 + 10)
    assert path.stat().st_size == header["header_bytes"] + DURATION_S * header["record_bytes"]


def test_no_patient_identifiers_leave_the_reader(mixed_edf):
    path, _, _ = mixed_edf
    assert PATIENT_NAME.encode() in path.read_bytes()[:256]  # the file does carry them
    header = read_edf_header(path)
    rec = read_edf(path, meta_fields=("sex", "age"))
    for text in (repr(header), str(header), repr(rec), str(rec.meta)):
        for secret in ("Haagse", "Harry", PATIENT_CODE, "1951", "02-MAY", "MAY"):
            assert secret not in text
    # Age is derived from the birth date and the start date, then the date is dropped.
    assert rec.meta == {"sex": "F", "age": 52}
    assert read_edf(path).meta == {}


def test_free_text_patient_field_gives_unknown_meta(tmp_path, rng):
    path = tmp_path / "plain.edf"
    _write(path, {"EEG": _signals(rng)["EEG Fpz-Cz"]})
    raw = bytearray(path.read_bytes())
    raw[8:88] = b"John Smith born 3 March 1960".ljust(80)
    path.write_bytes(bytes(raw))
    rec = read_edf(path, meta_fields=("sex", "age"))
    assert rec.meta == {"sex": None, "age": None}
    assert "Smith" not in repr(rec) and "1960" not in repr(read_edf_header(path))


def test_mne_export_round_trip_keeps_physical_units(tmp_path, rng):
    """A file written by mne.export (EEG in volts -> 'uV' on disk) reads back in microvolts."""
    data_v = rng.normal(0, 40e-6, (2, 30 * 128))
    info = mne.create_info(["EEG C3-A2", "EOG L"], 128.0, ["eeg", "eog"])
    raw = mne.io.RawArray(data_v, info, verbose="error")
    path = tmp_path / "mne.edf"
    mne.export.export_raw(path, raw, fmt="edf", verbose="error")
    rec = read_edf(path)
    assert rec.signals["EEG C3-A2"].unit == "uV"
    assert rec.signals["EEG C3-A2"].fs_hz == 128.0
    ref = mne.io.read_raw_edf(path, verbose="error").get_data()
    np.testing.assert_allclose(rec.signals["EEG C3-A2"].data, ref[0] * 1e6, atol=1e-3)
    np.testing.assert_allclose(rec.signals["EOG L"].data, data_v[1] * 1e6, atol=0.05)


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
    signals = _signals(rng)
    signals["SaO2"] = (np.full(DURATION_S, 97.0), 1, "%")
    signals["Zeros"] = (np.zeros(DURATION_S), 1, "")
    _write(path, signals)
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
    eeg = _signals(rng)["EEG Fpz-Cz"]
    edfio.Edf(
        [edfio.EdfSignal(eeg[0], 100, label="EEG"), edfio.EdfSignal(-eeg[0], 100, label="EEG")]
    ).write(path)
    with pytest.raises(RecordingError, match="occurs 2 times"):
        read_edf(path, ["EEG"])


def test_edf_plus_annotations_match_mne(tmp_path, rng):
    path = tmp_path / "annot.edf"
    written = [
        edfio.EdfAnnotation(0.0, 30.0, "Sleep stage W"),
        edfio.EdfAnnotation(30.0, 60.0, "Sleep stage 2"),
        edfio.EdfAnnotation(41.5, None, "Arousal"),
    ]
    _write(path, {"SaO2": _signals(rng)["SaO2"]}, annotations=written)
    events = read_edf_annotations(path)
    assert [(e.onset_s, e.duration_s, e.label) for e in events] == [
        (0.0, 30.0, "Sleep stage W"),
        (30.0, 60.0, "Sleep stage 2"),
        (41.5, 0.0, "Arousal"),
    ]
    ref = mne.read_annotations(path)
    np.testing.assert_allclose([e.onset_s for e in events], ref.onset)
    assert [e.label for e in events] == list(ref.description)
    assert read_edf_header(path)["edf_plus"] == "EDF+C"
    rec = read_edf(path)
    assert list(rec.signals) == ["SaO2"]  # the annotation signal is not a channel
    assert rec.events == events


def test_plain_edf_has_no_annotations(tmp_path, rng):
    path = tmp_path / "plain.edf"
    _write(path, {"SaO2": _signals(rng)["SaO2"]})
    assert read_edf_header(path)["edf_plus"] is None
    with pytest.raises(RecordingError, match="plain EDF"):
        read_edf_annotations(path)


def test_discontinuous_edf_plus_is_rejected(tmp_path, rng):
    path = tmp_path / "d.edf"
    _write(path, {"SaO2": _signals(rng)["SaO2"]}, annotations=[edfio.EdfAnnotation(1, 1, "x")])
    raw = bytearray(path.read_bytes())
    raw[192:197] = b"EDF+D"
    path.write_bytes(bytes(raw))
    with pytest.raises(RecordingError, match="EDF\\+D"):
        read_edf(path)


@pytest.mark.samples
def test_real_sleep_edf_hypnogram_matches_mne(samples_dir):
    path = samples_dir / "sleep_edf" / "SC4001EC-Hypnogram.edf"
    events = read_edf_annotations(path)
    assert len(events) == 154
    assert (events[0].onset_s, events[0].duration_s, events[0].label) == (
        0.0,
        30630.0,
        "Sleep stage W",
    )
    assert (events[-1].onset_s, events[-1].duration_s, events[-1].label) == (
        79500.0,
        6900.0,
        "Sleep stage ?",
    )
    ref = mne.read_annotations(path)
    np.testing.assert_array_equal([e.onset_s for e in events], ref.onset)
    np.testing.assert_array_equal([e.duration_s for e in events], ref.duration)
    assert [e.label for e in events] == list(ref.description)
    header = read_edf_header(path)
    assert header["channels"] == [] and header["edf_plus"] == "EDF+C"
    assert header["start_datetime"] == datetime.datetime(1989, 4, 24, 16, 13)


# --- hardening: sizes, calibration, labels, bounds, TALs -------------------------------------


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


@pytest.fixture
def annotated_edf(tmp_path, rng):
    """An EDF+C of 60 one-second records carrying three annotations."""
    path = tmp_path / "annot.edf"
    written = [
        edfio.EdfAnnotation(0.0, 30.0, "Sleep stage W"),
        edfio.EdfAnnotation(30.0, 30.0, "Sleep stage 2"),
        edfio.EdfAnnotation(41.25, None, "Arousal"),
    ]
    _write(path, {"SaO2": _signals(rng)["SaO2"]}, annotations=written)
    return path


def test_annotations_agree_with_edfio(annotated_edf):
    """Parsing the TALs ourselves gives edfio's annotations on a valid file."""
    ours = [(e.onset_s, e.duration_s, e.label) for e in read_edf_annotations(annotated_edf)]
    theirs = [
        (a.onset, a.duration or 0.0, a.text) for a in edfio.read_edf(annotated_edf).annotations
    ]
    assert ours == theirs and len(ours) == 3


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (b"+30\x1530", b"+3O\x1530", "malformed TAL"),  # onset that does not parse
        (b"+30\x1530", b"+30\x153O", "malformed TAL"),  # duration that does not parse
        (b"Sleep stage W", b"Sleep stage \xff", "not printable UTF-8"),
        (b"Sleep stage W", b"Sleep\tstage W", "not printable UTF-8"),
        (b"Arousal\x14\x00", b"Arousal\x14\x01", "malformed TAL"),  # no terminator
        (b"Arousal\x14\x00\x00\x00", b"Arousal\x14\x00\x00X", "bytes after the last TAL"),
    ],
)
def test_malformed_tal_is_refused(annotated_edf, old, new, reason):
    raw = annotated_edf.read_bytes()
    assert raw.count(old) == 1
    annotated_edf.write_bytes(raw.replace(old, new))
    for read in (read_edf_annotations, read_edf):
        with pytest.raises(RecordingError, match=reason):
            read(annotated_edf)


def test_onset_out_of_bounds_is_refused(annotated_edf):
    raw = annotated_edf.read_bytes()
    # The longer onset takes one byte of the record's zero padding, so the size is unchanged.
    old, new = b"+41.25\x14Arousal\x14\x00\x00", b"+999999\x14Arousal\x14\x00"
    annotated_edf.write_bytes(raw.replace(old, new))
    with pytest.raises(RecordingError, match=r"onset is 999999.0 s, outside the allowed"):
        read_edf_annotations(annotated_edf)


def test_records_must_carry_contiguous_timekeeping(annotated_edf):
    raw = annotated_edf.read_bytes()
    assert raw.count(b"+5\x14\x14\x00") == 1
    annotated_edf.write_bytes(raw.replace(b"+5\x14\x14\x00", b"+7\x14\x14\x00"))
    with pytest.raises(RecordingError, match="EDF\\+C data record 5 starts at 7 s, not 5 s"):
        read_edf_annotations(annotated_edf)
    annotated_edf.write_bytes(raw.replace(b"+5\x14\x14\x00\x00", b"+5\x14X\x14\x00"))
    with pytest.raises(RecordingError, match="data record 5 has no time-keeping annotation"):
        read_edf_annotations(annotated_edf)
