"""Patient-level metadata files of the ICBHI 2017 database (see :mod:`sleepbench.io.icbhi`).

- ``patient_list_foldwise.txt``: ``patient fold`` a line (126 patients, folds 0..4: the 80/20
  patient-wise folds of RespireNet / Patch-Mix);
- ``patient_diagnosis.csv`` (``101,URTI``) or ``patient_diagnosis.txt`` /
  ``ICBHI_Challenge_diagnosis.txt`` (``101<TAB>URTI``);
- ``demographic_info.txt``: ``patient age sex adult_BMI child_weight_kg child_height_cm``
  (space-separated, ``NA`` when missing; adults have a BMI, children a weight and a height),
  or Patch-Mix's ``metadata.txt`` (tab-separated, numbers as ``3.0``, a 7th column holding a
  chest location, checked and dropped).

Every malformed file raises :class:`~sleepbench.errors.RecordingError` naming it and the line.
Also home of the small text helpers the ICBHI readers share.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from sleepbench.errors import RecordingError
from sleepbench.io.bounds import check_range

__all__ = [
    "DIAGNOSES",
    "parse_float",
    "read_demographics",
    "read_diagnoses",
    "read_lines",
    "read_patient_folds",
]

#: Diagnoses found in the patient diagnosis files (126 patients).
DIAGNOSES = (
    "Asthma", "Bronchiectasis", "Bronchiolitis", "COPD", "Healthy", "LRTI", "Pneumonia", "URTI",
)  # fmt: skip
_LOCATION = re.compile(r"Tc|[APL][lr]")


def read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines (1-based number, stripped text) of a small ASCII/UTF-8 text file."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise RecordingError(path, f"cannot read the file: {err}") from None
    except UnicodeDecodeError as err:
        raise RecordingError(path, f"not a text file: {err}") from None
    return [(i, line.strip()) for i, line in enumerate(text.splitlines(), 1) if line.strip()]


def parse_float(path: Path, line_no: int, text: str, what: str) -> float:
    """``float(text)``, or a RecordingError naming the file, the line and the field ``what``."""
    try:
        return float(text)
    except ValueError:
        raise RecordingError(path, f"line {line_no}: {what} {text!r} is not a number") from None


def _patient(path: Path, no: int, text: str) -> str:
    if not re.fullmatch(r"[0-9]{3}", text):
        raise RecordingError(path, f"line {no}: {text!r} is not a patient number (101..226)")
    return text


def _per_patient(path: Path, rows: Iterable[tuple[int, str, object]]) -> dict:
    out: dict[str, object] = {}
    for no, patient, value in rows:
        if patient in out:
            raise RecordingError(path, f"line {no}: patient {patient} is listed twice")
        out[patient] = value
    if not out:
        raise RecordingError(path, "the file lists no patient")
    return out


def read_patient_folds(path: str | Path) -> dict[str, int]:
    """Read ``patient_list_foldwise.txt`` (``patient fold`` a line, the 80/20 patient folds).

    Returns:
        ``patient -> fold`` (0..4).

    Raises:
        RecordingError: a line without two fields, a bad patient number, a fold outside 0..4,
            a patient listed twice, no patient.
    """
    path = Path(path)
    rows = []
    for no, line in read_lines(path):
        fields = line.split()
        if len(fields) != 2 or fields[1] not in ("0", "1", "2", "3", "4"):
            raise RecordingError(path, f"line {no}: {line!r} is not 'patient fold(0..4)'")
        rows.append((no, _patient(path, no, fields[0]), int(fields[1])))
    return _per_patient(path, rows)


def read_diagnoses(path: str | Path) -> dict[str, str]:
    """Read the patient diagnoses (``patient,diagnosis`` csv or tab-separated text).

    Returns:
        ``patient -> diagnosis`` (one of :data:`DIAGNOSES`).

    Raises:
        RecordingError: a line without two fields, a bad patient number, an unknown diagnosis,
            a patient listed twice, no patient.
    """
    path = Path(path)
    rows = []
    for no, line in read_lines(path):
        fields = [f.strip() for f in re.split(r"[,\t ]+", line)]
        if len(fields) != 2 or fields[1] not in DIAGNOSES:
            raise RecordingError(
                path, f"line {no}: {line!r} is not 'patient,diagnosis' {DIAGNOSES}"
            )
        rows.append((no, _patient(path, no, fields[0]), fields[1]))
    return _per_patient(path, rows)


# Plausible ranges of the demographic fields: age (years), BMI (kg/m^2), weight (kg), height (cm).
_DEMOGRAPHIC_RANGES = {"age": 120.0, "bmi": 100.0, "weight": 300.0, "height": 250.0}


def _demographic(path: Path, no: int, name: str, text: str) -> float | None:
    """One demographic number (``NA`` -> ``None``), checked against its plausible range."""
    if text == "NA":
        return None
    value = parse_float(path, no, text, name)
    return check_range(path, f"line {no}: {name}", value, 0.0, _DEMOGRAPHIC_RANGES[name], "")


def read_demographics(path: str | Path) -> dict[str, dict]:
    """Read ``demographic_info.txt``: ``patient age sex adult_BMI child_weight child_height``.

    Patch-Mix's ``metadata.txt`` variant (tab-separated, a 7th column with a chest location) is
    read too; the 7th column is checked and dropped.

    Returns:
        ``patient -> {"age": years, "sex": "M"|"F", "bmi": kg/m^2, "weight": kg, "height": cm}``
        with ``None`` for ``NA`` (adults have a BMI, children a weight and a height).

    Raises:
        RecordingError: a line without 6 (or 7) fields, a bad patient number, a sex other than
            M/F/NA, a number out of its plausible range, a patient listed twice, no patient.
    """
    path = Path(path)
    rows = []
    for no, line in read_lines(path):
        fields = line.split()
        if len(fields) not in (6, 7) or (len(fields) == 7 and not _LOCATION.fullmatch(fields[6])):
            raise RecordingError(
                path, f"line {no}: {line!r} is not 'patient age sex bmi weight height'"
            )
        sex = None if fields[2] == "NA" else fields[2]
        if sex not in (None, "M", "F"):
            raise RecordingError(path, f"line {no}: sex {sex!r} is not M, F or NA")
        age, bmi, weight, height = (
            _demographic(path, no, name, text)
            for name, text in zip(("age", "bmi", "weight", "height"), fields[1:2] + fields[3:6])
        )
        record = {"age": age, "sex": sex, "bmi": bmi, "weight": weight, "height": height}
        rows.append((no, _patient(path, no, fields[0]), record))
    return _per_patient(path, rows)
