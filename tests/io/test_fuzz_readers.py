"""Byte-mutation fuzz of every reader: a corrupted file gives a RecordingError or a valid result.

Each test starts from a valid file (a real sample where one exists, else one written by the
project's own writers), applies a few byte mutations drawn by hypothesis (flip a bit, overwrite,
insert, delete, truncate, or swap a number in the text for an extreme one), and calls the reader.
Any exception other than :class:`~sleepbench.errors.RecordingError` fails the test, and so does a
returned result that breaks the reader's promises (non-finite times, flat channels, rates out of
bounds...). ``SLEEPBENCH_FUZZ_EXAMPLES`` sets the examples per test (default 150; the
readers were run clean with 1500).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sleepbench.errors import RecordingError
from sleepbench.io.apnea_ecg_labels import (
    read_additional_information,
    read_apn,
    read_apnea_ecg_record,
    read_event1_answers,
    read_event2_answers,
    read_qrs,
)
from sleepbench.io.bounds import MAX_EPOCH_S, MAX_FS_HZ, MAX_RECORDING_S, MIN_EPOCH_S
from sleepbench.io.edf import read_edf, read_edf_annotations, read_edf_header
from sleepbench.io.edf_write import write_edf
from sleepbench.io.nsrr_xml import ahi_from_events, read_nsrr_xml
from sleepbench.io.nsrr_xml_write import write_nsrr_xml
from sleepbench.io.sleep_edf_labels import AASM_LABELS, read_hypnogram
from sleepbench.io.wfdb import read_annotation_samples, read_wfdb_record
from sleepbench.recording import Event, Recording, Signal
from tests.io.fuzz import FUZZ, fuzz_once, lay_out

# --------------------------------------------------------------------------------------------
# what a valid result looks like


def _check_events(events: Iterable[Event]) -> None:
    for event in events:
        assert abs(event.onset_s) <= MAX_RECORDING_S
        assert 0 <= event.duration_s <= MAX_RECORDING_S
        assert isinstance(event.label, str) and event.label.isprintable()


def _check_signal(signal: Signal) -> None:
    assert 0 < signal.fs_hz <= MAX_FS_HZ
    assert signal.data.size > 0 and np.isfinite(signal.data).all()
    assert signal.data.min() < signal.data.max(), "flat channels are refused"
    assert signal.duration_s <= MAX_RECORDING_S


def _check_recording(recording: Recording) -> None:
    assert recording.signals
    for signal in recording.signals.values():
        _check_signal(signal)
    _check_events(recording.events)


def _check_samples(samples: np.ndarray, fs_hz: float) -> None:
    assert 0 < fs_hz <= MAX_FS_HZ
    assert samples.dtype == np.int64
    if samples.size:
        assert samples[0] >= 0 and (np.diff(samples) >= 0).all()
        assert samples[-1] / fs_hz <= MAX_RECORDING_S


# --------------------------------------------------------------------------------------------
# EDF / EDF+


def _hypnogram_call(folder: Path) -> None:
    path = folder / "SC4001EC-Hypnogram.edf"
    events = read_edf_annotations(path)
    _check_events(events)
    labels = read_hypnogram(path)
    assert set(labels) <= {*AASM_LABELS, None}


@pytest.mark.samples
@FUZZ
@given(data=st.data())
def test_fuzz_edf_hypnogram(samples_dir: Path, tmp_path: Path, data: st.DataObject) -> None:
    hyp = samples_dir / "sleep_edf" / "SC4001EC-Hypnogram.edf"
    fuzz_once(data, tmp_path, {hyp.name: hyp}, hyp.name, _hypnogram_call)


@pytest.fixture(scope="module")
def edf_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20-s EDF+C with three channels at 100, 10 and 1 Hz and three annotations."""
    rng = np.random.default_rng(7)
    path = tmp_path_factory.mktemp("edf") / "night.edf"
    write_edf(
        path,
        [
            Signal("EEG Fpz-Cz", rng.normal(0, 20, 2000), 100.0, "uV"),
            Signal("Resp", rng.normal(0, 1, 200), 10.0, "mV"),
            Signal("SaO2", 90 + rng.uniform(0, 8, 20), 1.0, "%"),
        ],
        start=dt.datetime(2001, 2, 3, 22, 0, 0),
        annotations=[
            Event(0.0, 10.0, "Sleep stage W"),
            Event(10.0, 10.0, "Sleep stage 1"),
            Event(12.5, 0.0, "Arousal"),
        ],
    )
    return path


def _edf_call(folder: Path) -> None:
    path = folder / "night.edf"
    header = read_edf_header(path)
    assert header["n_records"] * header["record_duration_s"] <= MAX_RECORDING_S
    _check_recording(read_edf(path))


@FUZZ
@given(data=st.data())
def test_fuzz_edf_signals(edf_file: Path, tmp_path: Path, data: st.DataObject) -> None:
    # The header is 256 bytes plus 256 per signal (three channels and the annotation signal).
    fuzz_once(data, tmp_path, {"night.edf": edf_file}, "night.edf", _edf_call, hot=5 * 256)


# --------------------------------------------------------------------------------------------
# WFDB records and annotation files


def _record_files(folder: Path, record: str) -> dict[str, Path]:
    return {p.name: p for p in sorted(folder.glob(f"{record}.*")) if p.suffix in (".hea", ".dat")}


@pytest.mark.samples
@pytest.mark.parametrize(
    ("record", "target"),
    [("03700181", ".hea"), ("100", ".hea"), ("03700181", ".dat")],
)
@FUZZ
@given(data=st.data())
def test_fuzz_wfdb_record(
    samples_dir: Path, tmp_path: Path, record: str, target: str, data: st.DataObject
) -> None:
    files = _record_files(samples_dir / "wfdb_sample", record)
    fuzz_once(
        data,
        tmp_path,
        files,
        record + target,
        lambda folder: _check_recording(read_wfdb_record(folder / record)),
    )


def _annotation_call(record: str, extension: str) -> Callable[[Path], None]:
    def call(folder: Path) -> None:
        samples, symbols, fs_hz = read_annotation_samples(folder / record, extension)
        _check_samples(samples, fs_hz)
        assert len(symbols) == samples.size
        if extension == "apn":
            assert set(read_apn(folder / record)) <= {"A", "N"}
        if extension == "qrs":
            _check_samples(read_qrs(folder / record), fs_hz)

    return call


def _fuzz_annotation(
    data: st.DataObject, tmp_path: Path, folder: Path, record: str, extension: str
) -> None:
    files = {f"{record}.{ext}": folder / f"{record}.{ext}" for ext in ("hea", extension)}
    fuzz_once(data, tmp_path, files, f"{record}.{extension}", _annotation_call(record, extension))


@pytest.mark.samples
@pytest.mark.parametrize(
    ("dataset", "record", "extension"), [("wfdb_sample", "100", "atr"), ("apnea_ecg", "a01", "apn")]
)
@FUZZ
@given(data=st.data())
def test_fuzz_wfdb_annotations(
    samples_dir: Path,
    tmp_path: Path,
    dataset: str,
    record: str,
    extension: str,
    data: st.DataObject,
) -> None:
    _fuzz_annotation(data, tmp_path, samples_dir / dataset, record, extension)


@FUZZ
@given(data=st.data())
def test_fuzz_qrs(apnea_record: dict[str, Path], tmp_path: Path, data: st.DataObject) -> None:
    # The real a01.qrs (60 kB, 30 000 beats) takes 80 ms a read; the project's writer makes a
    # 3-minute one in the same layout (no stored rate, N beats), so the fuzz stays fast.
    _fuzz_annotation(data, tmp_path, apnea_record["a01.qrs"].parent, "a01", "qrs")


# --------------------------------------------------------------------------------------------
# Apnea-ECG: a whole record, and the text answer files


@pytest.fixture(scope="module")
def apnea_record(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 3-minute synthetic released record ``a01``: ``.hea``, ``.dat``, ``.apn``, ``.qrs``."""
    from sleepbench.tasks.apnea_ecg.synth import write_synthetic_apnea_ecg

    root = tmp_path_factory.mktemp("apnea")
    write_synthetic_apnea_ecg(root, n_released=1, n_withheld=0, minutes=3)
    return {f"a01{ext}": root / f"a01{ext}" for ext in (".hea", ".dat", ".apn", ".qrs")}


def _apnea_record_call(folder: Path) -> None:
    recording = read_apnea_ecg_record(folder / "a01")
    _check_recording(recording)
    assert recording.epoch_labels and set(recording.epoch_labels) <= {"A", "N"}


@pytest.mark.parametrize("target", ["a01.hea", "a01.dat", "a01.apn"])
@FUZZ
@given(data=st.data())
def test_fuzz_apnea_ecg_record(
    apnea_record: dict[str, Path], tmp_path: Path, target: str, data: st.DataObject
) -> None:
    files = {name: path for name, path in apnea_record.items() if name != "a01.qrs"}
    fuzz_once(data, tmp_path, files, target, _apnea_record_call)


_TEXT_READERS: dict[str, Callable[[Path], Mapping[str, object]]] = {
    "event-1-answers": read_event1_answers,
    "event-2-answers": read_event2_answers,
    "additional-information.txt": read_additional_information,
}


@pytest.mark.samples
@pytest.mark.parametrize("name", sorted(_TEXT_READERS))
@FUZZ
@given(data=st.data())
def test_fuzz_apnea_ecg_text_files(
    samples_dir: Path, tmp_path: Path, name: str, data: st.DataObject
) -> None:
    def call(folder: Path) -> None:
        assert _TEXT_READERS[name](folder / name)

    path = samples_dir / "apnea_ecg" / name
    fuzz_once(data, tmp_path, {name: path}, name, call, hot=path.stat().st_size)


# --------------------------------------------------------------------------------------------
# NSRR XML, both schemas

_PROFUSION = b"""<?xml version="1.0" encoding="UTF-8"?>
<CMPStudyConfig><EpochLength>30</EpochLength><ScoredEvents>
<ScoredEvent><Name>Obstructive Apnea</Name><Start>40.5</Start><Duration>15</Duration>
<Input>ABDOMEN</Input></ScoredEvent>
<ScoredEvent><Name>SpO2 desaturation</Name><Start>50</Start><Duration>20</Duration>
<Input>SpO2</Input><LowestSpO2>88</LowestSpO2><Desaturation>5</Desaturation></ScoredEvent>
<ScoredEvent><Name>Arousal (ASDA)</Name><Start>70</Start><Duration>5</Duration>
<Input>C3</Input></ScoredEvent>
</ScoredEvents><SleepStages><SleepStage>0</SleepStage><SleepStage>1</SleepStage>
<SleepStage>2</SleepStage><SleepStage>2</SleepStage><SleepStage>5</SleepStage>
<SleepStage>9</SleepStage></SleepStages></CMPStudyConfig>
"""


@pytest.fixture(scope="module")
def nsrr_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An NSRR ``PSGAnnotation`` night of 10 epochs written by the project's writer."""
    path = tmp_path_factory.mktemp("xml") / "night-nsrr.xml"
    events = [
        Event(60.0, 12.0, "Obstructive apnea"),
        Event(100.0, 15.0, "Hypopnea"),
        Event(110.0, 20.0, "SpO2 desaturation", attrs={"spo2_nadir": 89, "spo2_baseline": 94}),
        Event(140.0, 5.0, "Arousal"),
    ]
    stages = [(30.0 * i, 30.0, s) for i, s in enumerate("W W 1 2 2 3 4 R R W".split())]
    write_nsrr_xml(path, events, stages, recording_duration_s=300.0)
    return path


def _nsrr_call(folder: Path) -> None:
    ann = read_nsrr_xml(folder / "night.xml")
    assert MIN_EPOCH_S <= ann.epoch_length_s <= MAX_EPOCH_S
    _check_events(ann.events)
    assert set(ann.epoch_stages()) <= {*AASM_LABELS, None}
    assert ann.sleep_time_s >= 0
    try:
        assert ahi_from_events(ann) >= 0
    except RecordingError as err:  # no sleep scored: the one documented refusal
        assert "no epoch is scored as sleep" in err.reason


@pytest.mark.parametrize("schema", ["nsrr", "profusion"])
@FUZZ
@given(data=st.data())
def test_fuzz_nsrr_xml(nsrr_file: Path, tmp_path: Path, schema: str, data: st.DataObject) -> None:
    content = nsrr_file.read_bytes() if schema == "nsrr" else _PROFUSION
    fuzz_once(data, tmp_path, {"night.xml": content}, "night.xml", _nsrr_call, hot=len(content))


# --------------------------------------------------------------------------------------------
# the unmutated sources are accepted: the fuzz starts from valid files


@pytest.mark.samples
def test_unmutated_sources_are_read(
    samples_dir: Path,
    tmp_path: Path,
    edf_file: Path,
    apnea_record: dict[str, Path],
    nsrr_file: Path,
) -> None:
    hyp = samples_dir / "sleep_edf" / "SC4001EC-Hypnogram.edf"
    _hypnogram_call(lay_out(tmp_path, {hyp.name: hyp}))
    _edf_call(lay_out(tmp_path, {"night.edf": edf_file}))
    for record in ("03700181", "100"):
        files = _record_files(samples_dir / "wfdb_sample", record)
        _check_recording(read_wfdb_record(lay_out(tmp_path, files) / record))
    for dataset, record, extension in [("wfdb_sample", "100", "atr"), ("apnea_ecg", "a01", "apn")]:
        source = samples_dir / dataset
        files = {f"{record}.{ext}": source / f"{record}.{ext}" for ext in ("hea", extension)}
        _annotation_call(record, extension)(lay_out(tmp_path, files))
    _annotation_call("a01", "qrs")(lay_out(tmp_path, apnea_record))
    _apnea_record_call(lay_out(tmp_path, apnea_record))
    for name, read in _TEXT_READERS.items():
        assert read(samples_dir / "apnea_ecg" / name)
    for content in (nsrr_file.read_bytes(), _PROFUSION):
        _nsrr_call(lay_out(tmp_path, {"night.xml": content}))
