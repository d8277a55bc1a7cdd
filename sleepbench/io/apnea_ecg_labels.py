"""PhysioNet Apnea-ECG 1.0.0 (CinC Challenge 2000): record lists, labels and answer files.

Per-minute labels: ``A`` = the minute contains apnea or hypopnea, ``N`` = it does not. Minute
``i`` covers seconds ``[60 i, 60 (i + 1))`` of the record. The released records carry them in
``<record>.apn``; the withheld ``x01``-``x35`` have them in the challenge answer file
``event-2-answers`` and their A/B/C class in ``event-1-answers``.

Record classes (challenge description):

- **A (apnea)** meets all criteria: at least one hour with an apnea index of 10 or more, and at
  least 100 minutes with apnea in the recording.
- **B (borderline)** meets some but not all criteria (at least one hour with apnea index >= 5 and
  5-99 apnea minutes).
- **C (control)** meets none: fewer than 5 apnea minutes.

From per-minute labels the hourly apnea index is not available, so :func:`apnea_class` uses the
apnea *minutes* of each hour instead, as ``additional-information.txt`` does for its "hours with
apnea" column (60-minute groups from minute 0 with 5-60 apnea minutes).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from wfdb.io.annotation import ann_label_table, is_qrs

from sleepbench.errors import RecordingError
from sleepbench.io.bounds import MAX_RECORDING_S, check_range, check_recording_length
from sleepbench.io.wfdb import read_annotation_samples, read_wfdb_record, record_stem
from sleepbench.recording import Recording

__all__ = [
    "DUPLICATES",
    "MINUTE_S",
    "RELEASED",
    "WITHHELD",
    "apnea_class",
    "classify_apnea_counts",
    "hourly_apnea_minutes",
    "label_to_int",
    "read_additional_information",
    "read_apn",
    "read_apnea_ecg_record",
    "read_event1_answers",
    "read_event2_answers",
    "read_qrs",
    "subject_of",
]

#: The 35 records released with labels (learning set): 20 class A, 5 class B, 10 class C.
RELEASED: tuple[str, ...] = (
    tuple(f"a{i:02d}" for i in range(1, 21))
    + tuple(f"b{i:02d}" for i in range(1, 6))
    + tuple(f"c{i:02d}" for i in range(1, 11))
)
#: The 35 records withheld during the challenge (test set); answers published afterwards.
WITHHELD: tuple[str, ...] = tuple(f"x{i:02d}" for i in range(1, 36))
#: Released records stored a second time with respiration and SpO2 (same night, same ECG).
DUPLICATES: tuple[str, ...] = ("a01r", "a02r", "a03r", "a04r", "b01r", "c01r", "c02r", "c03r")

#: Per-minute label -> training target.
label_to_int: Mapping[str, int] = MappingProxyType({"A": 1, "N": 0})

#: Length of one labelled epoch in seconds.
MINUTE_S = 60.0
#: Minutes in one hour group of the class definition.
_HOUR_MIN = 60

_RECORD = re.compile(r"^([abcx]\d{2})(e?r)?$")
_CLASSES = frozenset("ABC")
_BEAT_SYMBOLS = frozenset(
    str(sym)
    for store, sym in zip(ann_label_table.label_store, ann_label_table.symbol)
    if is_qrs[store]
)

# Columns of additional-information.txt, in file order, with the type of each value.
_INFO_COLUMNS: tuple[tuple[str, type], ...] = (
    ("length_min", int),
    ("non_apnea_min", int),
    ("apnea_min", int),
    ("hours_with_apnea", int),
    ("ai", float),
    ("hi", float),
    ("ahi", float),
    ("age", int),
    ("sex", str),
    ("height_cm", float),
    ("weight_kg", float),
)
# Columns counting minutes of one recording, bounded by the longest recording.
_MINUTE_COLUMNS = frozenset({"length_min", "non_apnea_min", "apnea_min"})


def subject_of(record_id: str) -> str:
    """Subject of an Apnea-ECG record: the ``r`` / ``er`` duplicates belong to their base record.

    ``a01r`` (respiration + SpO2) and ``a01er`` (ECG + respiration) are the night of ``a01``.

    Raises:
        ValueError: ``record_id`` is not an Apnea-ECG record name.
    """
    match = _RECORD.match(record_id)
    if match is None:
        raise ValueError(f"{record_id!r} is not an Apnea-ECG record name (a01, x12, a01r...)")
    return match.group(1)


def read_apn(stem: str | Path) -> list[str]:
    """Per-minute labels of ``<stem>.apn``.

    Returns:
        One ``"A"`` or ``"N"`` per minute, minute ``i`` being seconds ``[60 i, 60 (i + 1))``.

    Raises:
        RecordingError: the file is missing or unparsable, holds no label or a label other than
            A/N, or its annotations are not on consecutive one-minute marks from sample 0.
    """
    stem = record_stem(stem)
    path = stem.with_name(stem.name + ".apn")
    samples, symbols, fs_hz = read_annotation_samples(stem, "apn")
    if not symbols:
        raise RecordingError(path, "no per-minute labels")
    for minute, symbol in enumerate(symbols):
        if symbol not in label_to_int:
            raise RecordingError(path, f"unknown label {symbol!r} at minute {minute} (not A/N)")
    step = round(MINUTE_S * fs_hz)
    expected = np.arange(len(symbols), dtype=np.int64) * step
    off = np.flatnonzero(samples != expected)
    if off.size:
        i = int(off[0])
        raise RecordingError(
            path,
            f"label {i} at sample {samples[i]}, expected {expected[i]} "
            f"(labels must be one per minute from sample 0 at {fs_hz} Hz)",
        )
    return symbols


def read_qrs(stem: str | Path) -> np.ndarray:
    """R-peak sample indices from ``<stem>.qrs`` (beat annotations only; noise marks dropped).

    Returns:
        int64 array of sample indices at the record's rate (100 Hz for Apnea-ECG).

    Raises:
        RecordingError: the file is missing, unparsable, or holds no beat annotation.
    """
    stem = record_stem(stem)
    samples, symbols, _ = read_annotation_samples(stem, "qrs")
    beats = np.fromiter((s in _BEAT_SYMBOLS for s in symbols), dtype=bool, count=len(symbols))
    if not beats.any():
        raise RecordingError(stem.with_name(stem.name + ".qrs"), "no beat annotations")
    return samples[beats]


def _read_text(path: str | Path) -> tuple[Path, list[str]]:
    path = Path(path)
    if not path.is_file():
        raise RecordingError(path, "missing file")
    try:
        return path, path.read_text(encoding="ascii").splitlines()
    except UnicodeDecodeError as err:
        raise RecordingError(path, f"not an ASCII text file: {err}") from err


def read_event1_answers(path: str | Path) -> dict[str, str]:
    """Record classes from the challenge's ``event-1-answers`` (lines ``x01 A``).

    Returns:
        record -> ``"A"``, ``"B"`` or ``"C"``, in file order.

    Raises:
        RecordingError: missing file, a malformed line, an unknown class or a repeated record.
    """
    path, lines = _read_text(path)
    classes: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not _RECORD.match(fields[0]) or fields[1] not in _CLASSES:
            raise RecordingError(path, f"line {number}: expected '<record> <A|B|C>', got {line!r}")
        if fields[0] in classes:
            raise RecordingError(path, f"line {number}: record {fields[0]} listed twice")
        classes[fields[0]] = fields[1]
    if not classes:
        raise RecordingError(path, "no record classes")
    return classes


def read_event2_answers(path: str | Path) -> dict[str, list[str]]:
    """Per-minute labels from the challenge's ``event-2-answers``.

    Layout: a line with the record name, then one line per hour ``<hour> <labels>`` with hours
    numbered from 0 and 60 labels (A/N) per line except the last; records are separated by
    blank lines.

    Returns:
        record -> one ``"A"``/``"N"`` per minute from minute 0, in file order.

    Raises:
        RecordingError: missing file, label text before a record name, hours out of sequence,
            an hour line not holding 60 labels (bar the last), a label other than A/N, an empty
            or repeated record.
    """
    path, lines = _read_text(path)
    answers: dict[str, list[str]] = {}
    record: str | None = None
    short_hour = False  # an hour line with < 60 labels must be the record's last
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) == 1 and _RECORD.match(fields[0]):
            record = fields[0]
            if record in answers:
                raise RecordingError(path, f"line {number}: record {record} listed twice")
            answers[record], short_hour = [], False
            continue
        if record is None:
            raise RecordingError(path, f"line {number}: labels before any record name")
        labels = answers[record]
        if len(fields) != 2 or not fields[0].isdigit():
            raise RecordingError(path, f"line {number}: expected '<hour> <labels>', got {line!r}")
        hour, text = int(fields[0]), fields[1]
        if hour * _HOUR_MIN != len(labels) or short_hour:
            raise RecordingError(
                path, f"line {number}: {record} hour {hour} out of sequence or after a short hour"
            )
        if len(text) > _HOUR_MIN:
            raise RecordingError(path, f"line {number}: {len(text)} labels in one hour (max 60)")
        unknown = set(text) - label_to_int.keys()
        if unknown:
            raise RecordingError(path, f"line {number}: unknown labels {sorted(unknown)} (not A/N)")
        short_hour = len(text) < _HOUR_MIN
        labels.extend(text)
    empty = [name for name, labels in answers.items() if not labels]
    if empty or not answers:
        raise RecordingError(path, f"records without labels: {empty}" if empty else "no records")
    for name, labels in answers.items():
        check_recording_length(
            path, f"{name}: {len(labels)} labelled minutes", len(labels) * MINUTE_S
        )
    return answers


def hourly_apnea_minutes(labels: Sequence[str]) -> list[int]:
    """Apnea minutes in each 60-minute group from minute 0 (the last group may be shorter).

    Args:
        labels: per-minute ``"A"``/``"N"``.

    Raises:
        ValueError: a label is not A or N.
    """
    unknown = set(labels) - label_to_int.keys()
    if unknown:
        raise ValueError(f"labels must be 'A' or 'N', got {sorted(unknown)}")
    apnea = np.fromiter((label_to_int[x] for x in labels), dtype=np.int64, count=len(labels))
    return [int(apnea[i : i + _HOUR_MIN].sum()) for i in range(0, len(apnea), _HOUR_MIN)]


def classify_apnea_counts(apnea_minutes: int, max_hourly_apnea_minutes: int) -> str:
    """Apnea-ECG class from the apnea-minute total and the largest hourly apnea-minute count.

    Rule (the challenge definition with the hourly apnea index replaced by apnea minutes in the
    hour): ``"C"`` when ``apnea_minutes < 5``; ``"A"`` when ``apnea_minutes >= 100`` and
    ``max_hourly_apnea_minutes >= 10``; otherwise ``"B"`` (some but not all criteria met).
    """
    if apnea_minutes < 5:
        return "C"
    if apnea_minutes >= 100 and max_hourly_apnea_minutes >= 10:
        return "A"
    return "B"


def apnea_class(labels: Sequence[str]) -> str:
    """Apnea-ECG record class (``"A"``, ``"B"`` or ``"C"``) of per-minute labels.

    Applies :func:`classify_apnea_counts` to the total apnea minutes and the largest
    :func:`hourly_apnea_minutes`. Agrees with ``event-1-answers`` on all 35 withheld records.
    """
    hourly = hourly_apnea_minutes(labels)
    return classify_apnea_counts(sum(hourly), max(hourly, default=0))


def read_additional_information(path: str | Path) -> dict[str, dict[str, Any]]:
    """Per-record facts from the database's ``additional-information.txt``.

    Returns:
        record -> ``{"length_min", "non_apnea_min", "apnea_min", "hours_with_apnea"`` (int),
        ``"ai", "hi", "ahi"`` (events per hour from the respiration scoring, float),
        ``"age"`` (years, int), ``"sex"`` (``"M"``/``"F"``), ``"height_cm", "weight_kg"``
        (float)``}``. ``length_min`` counts one more minute than the label files hold.

    Raises:
        RecordingError: missing file or column header, a row with the wrong number of values
            or an unparsable, negative or infinite value (minute counts beyond the longest
            recording of :mod:`sleepbench.io.bounds`), a repeated record, or
            ``length != non-apnea + apnea``.
    """
    path, lines = _read_text(path)
    header_at = next((i for i, line in enumerate(lines) if line.split()[:1] == ["Record"]), None)
    if header_at is None:
        raise RecordingError(path, "no 'Record Length ...' column header line")
    info: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(lines[header_at + 1 :], start=header_at + 2):
        fields = line.split()
        if not fields or (not info and fields[0] == "minutes"):  # blank or units line
            continue
        if not _RECORD.match(fields[0]) or len(fields) != len(_INFO_COLUMNS) + 1:
            raise RecordingError(
                path, f"line {number}: expected a record and {len(_INFO_COLUMNS)} values"
            )
        try:
            row = {name: kind(value) for (name, kind), value in zip(_INFO_COLUMNS, fields[1:])}
        except ValueError as err:
            raise RecordingError(path, f"line {number}: {err}") from err
        for name, value in row.items():
            if name != "sex":
                high = MAX_RECORDING_S / MINUTE_S if name in _MINUTE_COLUMNS else math.inf
                check_range(path, f"line {number}: {name}", value, 0.0, high, "")
        if row["length_min"] != row["non_apnea_min"] + row["apnea_min"]:
            raise RecordingError(path, f"line {number}: length != non-apnea + apnea minutes")
        if fields[0] in info:
            raise RecordingError(path, f"line {number}: record {fields[0]} listed twice")
        info[fields[0]] = row
    if not info:
        raise RecordingError(path, "no record rows")
    return info


def read_apnea_ecg_record(
    stem: str | Path,
    channels: Sequence[str] | None = ("ECG",),
    answers: Mapping[str, Sequence[str]] | None = None,
    max_nan_run_s: float = 10.0,
) -> Recording:
    """Read one Apnea-ECG record with its per-minute labels.

    Args:
        stem: record path without extension (``.../a01``, ``.../x05``, ``.../a01er``).
        channels: channels to read (``None`` for all); the ECG by default.
        answers: per-minute labels of withheld records (:func:`read_event2_answers`); a
            withheld record absent from it gets ``epoch_labels=None``.
        max_nan_run_s: passed to :func:`~sleepbench.io.wfdb.read_wfdb_record`.

    Returns:
        A :class:`Recording` with ``subject_id = subject_of(record)``, ``epoch_s = 60`` and
        ``epoch_labels`` one ``"A"``/``"N"`` per minute; ``meta["split"]`` is ``"released"``,
        ``"withheld"`` or ``"duplicate"``.

    Raises:
        RecordingError: ``stem`` has an extension that no file of a record has (see
            :func:`~sleepbench.io.wfdb.record_stem`) or is not an Apnea-ECG record name, the
            signal cannot be read, a released (or duplicate) record has no usable ``.apn``, or
            the labels cover more minutes than the signal lasts.
    """
    stem = record_stem(stem)
    record_id = stem.name
    try:
        subject_id = subject_of(record_id)
    except ValueError as err:
        raise RecordingError(stem, str(err)) from None
    recording = read_wfdb_record(stem, channels, record_id, subject_id, max_nan_run_s=max_nan_run_s)
    if record_id in WITHHELD:
        split, source = "withheld", stem
        labels = list(answers[record_id]) if answers and record_id in answers else None
    else:
        split = "duplicate" if record_id != subject_id else "released"
        source = stem.with_name(record_id + ".apn")
        labels = read_apn(stem)
    if labels is not None:
        duration_s = min(signal.duration_s for signal in recording.signals.values())
        if len(labels) * MINUTE_S > duration_s:
            raise RecordingError(
                source, f"{len(labels)} labelled minutes but the signal lasts {duration_s:.1f} s"
            )
    recording.epoch_labels, recording.epoch_s = labels, (MINUTE_S if labels else None)
    recording.meta.update(dataset="apnea-ecg", split=split)
    return recording
