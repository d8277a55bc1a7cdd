"""EDF / EDF+ writer: read back with edfio, mne and sleepbench's reader; atomic; no PHI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import edfio
import mne
import numpy as np
import pytest

from sleepbench.io import edf_write
from sleepbench.io.edf_write import physical_range_for, write_edf, write_edf_annotations
from sleepbench.recording import Event, Signal

START = dt.datetime(1989, 4, 24, 22, 10, 5)


def _signals(seconds: int = 60) -> list[Signal]:
    rng = np.random.default_rng(0)
    return [
        Signal("EEG Fpz-Cz", rng.normal(0, 30, 100 * seconds), 100.0, "uV"),
        Signal("SaO2", np.round(rng.uniform(90, 99, seconds)), 1.0, "%"),
        Signal("Temp rectal", np.full(seconds, 37.0), 1.0, "DegC"),
    ]


def test_roundtrip_edfio(tmp_path: Path) -> None:
    sigs = _signals()
    path = write_edf(tmp_path / "a" / "rec.edf", sigs, start=START, record_duration_s=30.0)
    edf = edfio.read_edf(path)
    assert edf.labels == ("EEG Fpz-Cz", "SaO2", "Temp rectal")
    assert edf.data_record_duration == 30.0 and edf.num_data_records == 2
    assert edf.reserved == ""  # plain EDF without annotations
    assert edf.startdatetime == START
    for sig, got in zip(sigs, edf.signals):
        assert got.sampling_frequency == sig.fs_hz
        assert got.physical_dimension == sig.unit
        assert got.data.shape == sig.data.shape
        lo, hi = got.physical_range
        assert lo <= sig.data.min() and sig.data.max() <= hi
        # int16 quantisation: error at most half a step of the physical range
        step = (hi - lo) / 65535
        np.testing.assert_allclose(got.data, sig.data, atol=step * 0.51 + 1e-6)


def test_patient_fields_anonymised(tmp_path: Path) -> None:
    path = write_edf(tmp_path / "rec.edf", _signals(), patient_code="S042")
    raw = path.read_bytes()[8:88].decode("ascii").strip()
    assert raw == "S042 X X X"  # code, sex, birth date, name
    edf = edfio.read_edf(path)
    assert edf.patient.name == "X" and edf.patient.sex == "X"
    with pytest.raises(ValueError):  # EDF+ subfields may not contain spaces
        write_edf(tmp_path / "bad.edf", _signals(), patient_code="John Doe")


def test_mne_reads_channels_and_annotations(tmp_path: Path) -> None:
    events = [Event(0.0, 30.0, "Sleep stage W"), Event(30.0, 0.0, "Lights on")]
    path = write_edf(tmp_path / "rec.edf", _signals(), start=START, annotations=events)
    raw = mne.io.read_raw_edf(path, verbose="error")
    assert raw.ch_names == ["EEG Fpz-Cz", "SaO2", "Temp rectal"]
    assert raw.n_times == 6000 and raw.info["sfreq"] == 100.0
    assert raw.info["meas_date"].replace(tzinfo=None) == START
    assert list(raw.annotations.description) == ["Sleep stage W", "Lights on"]
    np.testing.assert_allclose(raw.annotations.onset, [0.0, 30.0])
    np.testing.assert_allclose(raw.annotations.duration, [30.0, 0.0])
    assert edfio.read_edf(path).reserved == "EDF+C"


def test_sleepbench_reader_roundtrip(tmp_path: Path) -> None:
    edf = pytest.importorskip("sleepbench.io.edf")
    sigs = _signals()
    events = [Event(5.0, 10.0, "Obstructive apnea")]
    path = write_edf(tmp_path / "rec.edf", sigs, annotations=events, record_duration_s=1.0)
    rec = edf.read_edf(path, channels=["SaO2", "EEG Fpz-Cz"])
    assert rec.signals["SaO2"].fs_hz == 1.0 and rec.signals["EEG Fpz-Cz"].fs_hz == 100.0
    np.testing.assert_allclose(rec.signals["SaO2"].data, sigs[1].data, atol=0.01)
    assert [(e.onset_s, e.duration_s, e.label) for e in rec.events] == [
        (5.0, 10.0, "Obstructive apnea")
    ]


def test_fixed_physical_range(tmp_path: Path) -> None:
    sigs = _signals()
    path = write_edf(tmp_path / "rec.edf", sigs, physical_ranges={"SaO2": (0.0, 100.0)})
    assert edfio.read_edf(path).get_signal("SaO2").physical_range == (0.0, 100.0)
    with pytest.raises(ValueError, match="range"):
        write_edf(tmp_path / "bad.edf", sigs, physical_ranges={"SaO2": (0.0, 50.0)})


def test_physical_range_for() -> None:
    lo, hi = physical_range_for(np.array([-10.0, 90.0]))
    assert lo <= -10.0 - 4.9 and hi >= 90.0 + 4.9  # >= 5 % headroom on each side
    assert hi - lo < 100.0 * 1.2
    assert physical_range_for(np.zeros(5)) == (-1.0, 1.0)


@pytest.mark.parametrize(
    ("signals", "record_s", "match"),
    [
        ([Signal("a", np.zeros(100), 100.0), Signal("b", np.zeros(2), 1.0)], 1.0, "differ"),
        ([Signal("a", np.zeros(150), 100.0)], 1.0, "whole number"),
        ([Signal("a", np.zeros(10), 0.5)], 1.0, "non-integer"),
    ],
)
def test_bad_lengths_raise(tmp_path: Path, signals, record_s, match) -> None:
    with pytest.raises(ValueError, match=match):
        write_edf(tmp_path / "x.edf", signals, record_duration_s=record_s)
    assert not list(tmp_path.iterdir())


def test_non_finite_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NaN"):
        write_edf(tmp_path / "x.edf", [Signal("a", np.array([0.0, np.nan]), 1.0)])


def test_atomic_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "rec.edf"
    target.write_bytes(b"old")

    def boom(self, path):  # a crash half-way through writing
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(edf_write.edfio.Edf, "write", boom)
    with pytest.raises(OSError, match="disk full"):
        write_edf(target, _signals())
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["rec.edf"]  # no temporary left over


def test_annotation_only_file(tmp_path: Path) -> None:
    events = [
        Event(0.0, 600.0, "Sleep stage W"),
        Event(600.0, 60.0, "Sleep stage 1"),
        Event(660.0, 30.0, "Movement time"),
    ]
    path = write_edf_annotations(tmp_path / "SC4001EC-Hypnogram.edf", events, start=START)
    edf = edfio.read_edf(path)
    assert edf.num_signals == 0 and edf.num_data_records == 1
    assert edf.data_record_duration == 0.0 and edf.reserved == "EDF+C"
    ann = mne.read_annotations(path)
    assert list(ann.description) == [e.label for e in events]
    np.testing.assert_allclose(ann.onset, [0.0, 600.0, 660.0])
    np.testing.assert_allclose(ann.duration, [600.0, 60.0, 30.0])
    with pytest.raises(ValueError):
        write_edf_annotations(tmp_path / "empty.edf", [])


@pytest.mark.samples
def test_annotation_file_mirrors_real_hypnogram(tmp_path: Path, samples_dir: Path) -> None:
    real_path = samples_dir / "sleep_edf" / "SC4001EC-Hypnogram.edf"
    real = edfio.read_edf(real_path)
    events = [Event(a.onset, a.duration or 0.0, a.text) for a in real.annotations]
    ours = edfio.read_edf(write_edf_annotations(tmp_path / "h.edf", events, start=START))
    for attr in ("num_signals", "num_data_records", "data_record_duration", "reserved"):
        assert getattr(ours, attr) == getattr(real, attr), attr
    assert ours.annotations == real.annotations
    real_mne, ours_mne = mne.read_annotations(real_path), mne.read_annotations(tmp_path / "h.edf")
    assert list(ours_mne.description) == list(real_mne.description)
    np.testing.assert_array_equal(ours_mne.onset, real_mne.onset)
    np.testing.assert_array_equal(ours_mne.duration, real_mne.duration)
