"""Apnea-ECG labels, answer files and record classes, on the real files and on written ones."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import wfdb

from sleepbench.errors import RecordingError
from sleepbench.io.apnea_ecg_labels import (
    DUPLICATES,
    RELEASED,
    WITHHELD,
    apnea_class,
    classify_apnea_counts,
    hourly_apnea_minutes,
    label_to_int,
    read_additional_information,
    read_apn,
    read_apnea_ecg_record,
    read_event1_answers,
    read_event2_answers,
    read_qrs,
    subject_of,
)

FS = 100
MINUTE = 60 * FS


@pytest.fixture(scope="module")
def apnea_dir(samples_dir: Path) -> Path:
    return samples_dir / "apnea_ecg"


def _write_apn(directory: Path, name: str, labels: list[str], step: int = MINUTE) -> None:
    wfdb.wrann(
        name,
        "apn",
        np.arange(len(labels), dtype=np.int64) * step,
        symbol=labels,
        fs=FS,
        write_dir=str(directory),
    )


def _write_ecg(directory: Path, name: str, minutes: float) -> None:
    n = int(minutes * MINUTE)
    ecg = np.sin(2 * np.pi * 1.1 * np.arange(n) / FS)[:, None]
    wfdb.wrsamp(
        name,
        fs=FS,
        units=["mV"],
        sig_name=["ECG"],
        p_signal=ecg,
        fmt=["16"],
        write_dir=str(directory),
    )


# --- constants -----------------------------------------------------------------------------------


def test_record_lists_and_subjects() -> None:
    assert len(RELEASED) == len(WITHHELD) == 35
    assert Counter(r[0] for r in RELEASED) == {"a": 20, "b": 5, "c": 10}
    assert {subject_of(r) for r in DUPLICATES} == {
        "a01",
        "a02",
        "a03",
        "a04",
        "b01",
        "c01",
        "c02",
        "c03",
    }
    assert {subject_of(r) for r in DUPLICATES} <= set(RELEASED)
    assert subject_of("a01er") == "a01" and subject_of("x07") == "x07"
    with pytest.raises(ValueError, match="not an Apnea-ECG record"):
        subject_of("SC4001E0")
    assert dict(label_to_int) == {"A": 1, "N": 0}


# --- real files ----------------------------------------------------------------------------------


@pytest.mark.samples
@pytest.mark.parametrize(("record", "n", "n_apnea"), [("a01", 489, 470), ("a02", 528, 420)])
def test_real_apn_counts(apnea_dir: Path, record: str, n: int, n_apnea: int) -> None:
    labels = read_apn(apnea_dir / record)
    assert len(labels) == n
    assert labels.count("A") == n_apnea
    assert set(labels) == {"A", "N"}


@pytest.mark.samples
def test_duplicates_carry_the_same_labels(apnea_dir: Path) -> None:
    assert (
        read_apn(apnea_dir / "a01r") == read_apn(apnea_dir / "a01er") == read_apn(apnea_dir / "a01")
    )


@pytest.mark.samples
def test_real_qrs_matches_rdann(apnea_dir: Path) -> None:
    peaks = read_qrs(apnea_dir / "a01")
    reference = wfdb.rdann(str(apnea_dir / "a01"), "qrs")
    np.testing.assert_array_equal(peaks, reference.sample)
    assert peaks.dtype == np.int64 and peaks.size == 29_938
    assert np.all(np.diff(peaks) > 0)
    assert peaks[-1] < wfdb.rdheader(str(apnea_dir / "a01")).sig_len
    # mean heart rate of a night is physiological (40-120 bpm)
    assert 40 < 60 * FS / np.median(np.diff(peaks)) < 120


@pytest.mark.samples
def test_event_answers_agree_with_each_other_and_the_table(apnea_dir: Path) -> None:
    minutes = read_event2_answers(apnea_dir / "event-2-answers")
    classes = read_event1_answers(apnea_dir / "event-1-answers")
    table = read_additional_information(apnea_dir / "additional-information.txt")
    assert tuple(minutes) == tuple(classes) == WITHHELD
    assert Counter(classes.values()) == {"A": 20, "B": 5, "C": 10}
    for record in WITHHELD:
        labels = minutes[record]
        assert apnea_class(labels) == classes[record], record
        # the table counts one minute more than the label files hold (the record's last,
        # partial minute), so its apnea total may exceed the labels' by that one minute
        assert len(labels) == table[record]["length_min"] - 1, record
        assert 0 <= table[record]["apnea_min"] - labels.count("A") <= 1, record


@pytest.mark.samples
def test_released_apn_agree_with_the_table(apnea_dir: Path) -> None:
    table = read_additional_information(apnea_dir / "additional-information.txt")
    for record in ("a01", "a02"):
        labels = read_apn(apnea_dir / record)
        assert len(labels) == table[record]["length_min"] - 1
        assert labels.count("A") == table[record]["apnea_min"]
        assert apnea_class(labels) == "A"


@pytest.mark.samples
def test_additional_information(apnea_dir: Path) -> None:
    table = read_additional_information(apnea_dir / "additional-information.txt")
    assert tuple(table) == RELEASED + WITHHELD
    assert table["a01"] == {
        "length_min": 490,
        "non_apnea_min": 20,
        "apnea_min": 470,
        "hours_with_apnea": 9,
        "ai": 12.5,
        "hi": 57.1,
        "ahi": 69.6,
        "age": 51,
        "sex": "M",
        "height_cm": 175.0,
        "weight_kg": 102.0,
    }
    for record, row in table.items():
        assert row["ahi"] == pytest.approx(row["ai"] + row["hi"], abs=0.051), record
        if record in RELEASED:
            # The record letter is its class. The busiest hour holds at least the mean over the
            # night's 60-minute groups (pigeonhole), a lower bound that suffices here.
            busiest = math.ceil(row["apnea_min"] / math.ceil(row["length_min"] / 60))
            assert classify_apnea_counts(row["apnea_min"], busiest) == record[0].upper()


# --- class rule ----------------------------------------------------------------------------------


def test_hourly_apnea_minutes() -> None:
    labels = ["A"] * 70 + ["N"] * 50 + ["A"] * 3
    assert hourly_apnea_minutes(labels) == [60, 10, 3]
    assert hourly_apnea_minutes([]) == []
    with pytest.raises(ValueError, match="'A' or 'N'"):
        hourly_apnea_minutes(["A", "x"])


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["N"] * 480, "C"),
        (["A"] * 4 + ["N"] * 476, "C"),
        (["A"] * 5 + ["N"] * 475, "B"),
        (["A"] * 99 + ["N"] * 381, "B"),
        (["A"] * 100 + ["N"] * 380, "A"),
        # 108 apnea minutes spread 9 per hour over 12 hours: no hour reaches 10 -> not A
        ((["A"] * 9 + ["N"] * 51) * 12, "B"),
        ((["A"] * 10 + ["N"] * 50) * 10, "A"),
    ],
)
def test_apnea_class_rule(labels: list[str], expected: str) -> None:
    assert apnea_class(labels) == expected


# --- .apn files: round trip and malformed input --------------------------------------------------


def test_apn_round_trip(tmp_path: Path) -> None:
    labels = ["N", "A", "A", "N", "A"]
    _write_apn(tmp_path, "a07", labels)
    assert read_apn(tmp_path / "a07") == labels


def test_apn_unknown_label(tmp_path: Path) -> None:
    _write_apn(tmp_path, "a07", ["N", "V", "A"])
    with pytest.raises(RecordingError, match=r"a07\.apn: unknown label 'V' at minute 1"):
        read_apn(tmp_path / "a07")


def test_apn_not_one_per_minute(tmp_path: Path) -> None:
    _write_apn(tmp_path, "a07", ["N", "A", "A"], step=MINUTE // 2)
    with pytest.raises(RecordingError, match=r"a07\.apn: label 1 at sample 3000, expected 6000"):
        read_apn(tmp_path / "a07")


def test_apn_missing(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match=r"a07\.apn: missing annotation file"):
        read_apn(tmp_path / "a07")


def test_qrs_without_beats(tmp_path: Path) -> None:
    wfdb.wrann("a07", "qrs", np.array([5, 9]), symbol=["~", "+"], fs=FS, write_dir=str(tmp_path))
    with pytest.raises(RecordingError, match=r"a07\.qrs: no beat annotations"):
        read_qrs(tmp_path / "a07")


# --- whole records -------------------------------------------------------------------------------


def test_released_record_with_labels(tmp_path: Path) -> None:
    _write_ecg(tmp_path, "a01r", minutes=3.5)
    _write_apn(tmp_path, "a01r", ["N", "A", "A"])
    recording = read_apnea_ecg_record(tmp_path / "a01r")
    assert (recording.record_id, recording.subject_id) == ("a01r", "a01")
    assert recording.epoch_labels == ["N", "A", "A"] and recording.epoch_s == 60.0
    assert recording.meta["split"] == "duplicate"
    assert recording.signal("ecg").fs_hz == FS


def test_released_record_without_apn_raises(tmp_path: Path) -> None:
    _write_ecg(tmp_path, "a03", minutes=2)
    with pytest.raises(RecordingError, match=r"a03\.apn: missing annotation file"):
        read_apnea_ecg_record(tmp_path / "a03")


def test_labels_longer_than_signal_raise(tmp_path: Path) -> None:
    _write_ecg(tmp_path, "b02", minutes=2.5)
    _write_apn(tmp_path, "b02", ["N"] * 3)
    with pytest.raises(RecordingError, match=r"b02\.apn: 3 labelled minutes but the signal lasts"):
        read_apnea_ecg_record(tmp_path / "b02")


def test_withheld_record_takes_answer_labels(tmp_path: Path) -> None:
    _write_ecg(tmp_path, "x05", minutes=2)
    recording = read_apnea_ecg_record(tmp_path / "x05", answers={"x05": "AN"})
    assert recording.epoch_labels == ["A", "N"] and recording.meta["split"] == "withheld"
    unlabelled = read_apnea_ecg_record(tmp_path / "x05")
    assert unlabelled.epoch_labels is None and unlabelled.epoch_s is None


# --- malformed answer / table files --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("x01\n 0 " + "N" * 60 + "\n 1 NNB\n", r"line 3: unknown labels \['B'\]"),
        ("x01\n 0 " + "N" * 59 + "\n 1 NN\n", r"line 3: x01 hour 1 out of sequence"),
        ("x01\n 1 NNN\n", r"line 2: x01 hour 1 out of sequence"),
        ("x01\n 0 " + "N" * 61 + "\n", r"line 2: 61 labels in one hour"),
        (" 0 NNN\n", r"line 1: labels before any record name"),
        ("x01\n 0 N\n\nx01\n 0 N\n", r"line 4: record x01 listed twice"),
        ("x01\n\nx02\n 0 A\n", r"records without labels: \['x01'\]"),
    ],
)
def test_event2_malformed(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "event-2-answers"
    path.write_text(text)
    with pytest.raises(RecordingError, match=r"event-2-answers: " + problem):
        read_event2_answers(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("x01 A\nx02 D\n", r"line 2: expected '<record> <A\|B\|C>'"),
        ("x01 A\nx01 B\n", r"line 2: record x01 listed twice"),
        ("\n", "no record classes"),
    ],
)
def test_event1_malformed(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "event-1-answers"
    path.write_text(text)
    with pytest.raises(RecordingError, match=r"event-1-answers: " + problem):
        read_event1_answers(path)


def test_additional_information_malformed(tmp_path: Path) -> None:
    path = tmp_path / "info.txt"
    head = "Record\tLength\tnon-apn\tapnea\thours\tAI\tHI\tAHI\tAge\tSex\theight\tweight\n"
    path.write_text(head + "a01\t490\t21\t470\t9\t12.5\t57.1\t69.6\t51\tM\t175\t102\n")
    with pytest.raises(RecordingError, match=r"info\.txt: line 2: length != non-apnea \+ apnea"):
        read_additional_information(path)
    path.write_text(head + "a01\t490\t20\t470\t9\n")
    with pytest.raises(RecordingError, match=r"info\.txt: line 2: expected a record and 11 values"):
        read_additional_information(path)
    path.write_text("a01\t490\n")
    with pytest.raises(RecordingError, match="no 'Record Length ...' column header"):
        read_additional_information(path)
    with pytest.raises(RecordingError, match=r"absent\.txt: missing file"):
        read_additional_information(tmp_path / "absent.txt")


# --- hardening: record paths, bounded text values --------------------------------------------


@pytest.mark.parametrize("suffix", [".hea", ".dat", ".apn", ".qrs"])
def test_record_may_be_named_by_any_of_its_files(tmp_path: Path, suffix: str) -> None:
    _write_ecg(tmp_path, "a04", minutes=2)
    _write_apn(tmp_path, "a04", ["N", "A"])
    by_stem = read_apnea_ecg_record(tmp_path / "a04")
    by_file = read_apnea_ecg_record(tmp_path / f"a04{suffix}")
    assert by_file.record_id == by_stem.record_id == "a04"
    assert by_file.epoch_labels == by_stem.epoch_labels == ["N", "A"]
    np.testing.assert_array_equal(by_file.signal("ECG").data, by_stem.signal("ECG").data)


@pytest.mark.parametrize(
    ("name", "reason"),
    [("a04.xyz", "unknown extension '.xyz'"), ("SC4001E0", "not an Apnea-ECG record name")],
)
def test_other_paths_are_a_recording_error(tmp_path: Path, name: str, reason: str) -> None:
    with pytest.raises(RecordingError, match=reason):
        read_apnea_ecg_record(tmp_path / name)


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ("490\t20\t470\t9\tnan\t57.1\t69.6\t51\tM\t175\t102", r"ai is nan, outside the allowed"),
        ("490\t20\t470\t9\t12.5\t57.1\t69.6\t-51\tM\t175\t102", r"age is -51, outside"),
        ("9000\t8530\t470\t9\t12.5\t57.1\t69.6\t51\tM\t175\t102", r"length_min is 9000, outside"),
    ],
)
def test_additional_information_values_are_bounded(
    tmp_path: Path, values: str, reason: str
) -> None:
    path = tmp_path / "info.txt"
    head = "Record\tLength\tnon-apn\tapnea\thours\tAI\tHI\tAHI\tAge\tSex\theight\tweight\n"
    path.write_text(f"{head}a01\t{values}\n")
    with pytest.raises(RecordingError, match=r"info\.txt: line 2: " + reason):
        read_additional_information(path)


def test_event2_answers_longer_than_a_recording_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "event-2-answers"
    hours = 73  # the bound is 72 h
    path.write_text("x01\n" + "".join(f"{h:2d} {'N' * 60}\n" for h in range(hours)))
    with pytest.raises(RecordingError, match="x01: 4380 labelled minutes is 262800.0 s, outside"):
        read_event2_answers(path)
