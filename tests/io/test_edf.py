"""EDF reader on valid files: native rates, physical values, channel names, header, PHI.

Bad input is refused in ``test_edf_bad_input.py``; EDF+ annotations are in
``test_edf_annotations.py``; the shared files and fixtures in ``edf_files.py`` / ``conftest.py``.
"""

from __future__ import annotations

import datetime

import edfio
import mne
import numpy as np

from sleepbench.io.edf import read_edf, read_edf_header
from tests.io.edf_files import DURATION_S, PATIENT_CODE, PATIENT_NAME, make_signals, write_edf_file


def _quantum(signal: edfio.EdfSignal) -> float:
    """Physical value of one digital step: the EDF quantisation of a channel."""
    pmin, pmax = signal.physical_range
    dmin, dmax = signal.digital_range
    return (pmax - pmin) / (dmax - dmin)


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
    write_edf_file(path, {"EEG": make_signals(rng)["EEG Fpz-Cz"]})
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
