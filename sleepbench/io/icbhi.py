"""ICBHI 2017 Respiratory Sound Database: recording names and cycle annotations.

Recordings (SPECS §4.1, §4.7; real samples in ``shared/data/icbhi``):

- one ``<stem>.wav`` + ``<stem>.txt`` per recording, ``stem`` =
  ``{patient}_{index}_{location}_{mode}_{device}``, e.g. ``101_1b1_Al_sc_Meditron``: patient
  101..226, recording index (``1b1``, ``2p3``...), chest location (``Tc`` trachea, ``A``/``P``/``L``
  anterior / posterior / lateral + ``l``/``r``), acquisition mode (``sc`` single channel, ``mc``
  multichannel), device (``AKGC417L``, ``LittC2SE``, ``Litt3200``, ``Meditron``);
- the ``.txt`` lists one respiratory cycle a line, ``start end crackles wheezes`` (seconds,
  seconds, 0/1, 0/1; tab-separated); label = crackles + 2 * wheezes (:data:`CLASSES`).

Where a copy's files lie, the official split and the old names of renamed recordings are in
:mod:`sleepbench.io.icbhi_layout`; the patient metadata files in
:mod:`sleepbench.io.icbhi_patients` (re-exported here).

Every malformed file raises :class:`~sleepbench.errors.RecordingError` naming it and the line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sleepbench.errors import RecordingError
from sleepbench.io.bounds import check_time
from sleepbench.io.icbhi_patients import (
    DIAGNOSES,
    parse_float,
    read_demographics,
    read_diagnoses,
    read_lines,
    read_patient_folds,
)

__all__ = [
    "CLASSES",
    "CYCLE_END_TOLERANCE_S",
    "DEVICES",
    "DIAGNOSES",
    "LOCATIONS",
    "MODES",
    "Cycle",
    "IcbhiName",
    "check_cycles_within",
    "cycle_samples",
    "parse_icbhi_name",
    "read_cycles",
    "read_demographics",
    "read_diagnoses",
    "read_patient_folds",
]

#: Cycle classes; label = crackles + 2 * wheezes.
CLASSES = ("normal", "crackle", "wheeze", "both")
DEVICES = ("AKGC417L", "LittC2SE", "Litt3200", "Meditron")
LOCATIONS = ("Tc", "Al", "Ar", "Pl", "Pr", "Ll", "Lr")
MODES = ("sc", "mc")
#: How far (s) a cycle may end past its recording's end. Annotation times are written to 0.1 ms
#: or so (the sample's last cycles end exactly at the last sample); a cycle far past the end
#: means the annotation file belongs to another recording.
CYCLE_END_TOLERANCE_S = 0.05

_NAME = re.compile(r"([0-9]{3})_([0-9]+[a-z][0-9]+)_([A-Za-z]+)_([a-z]+)_([A-Za-z0-9]+)")


@dataclass(frozen=True)
class IcbhiName:
    """The fields of a recording's stem (``101_1b1_Al_sc_Meditron``)."""

    stem: str
    patient: str
    index: str
    location: str
    mode: str
    device: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        """``(patient, index, location, mode)``: unique per recording across database versions."""
        return self.patient, self.index, self.location, self.mode


def parse_icbhi_name(stem: str, path: str | Path | None = None) -> IcbhiName:
    """Split a recording stem into its fields.

    Args:
        stem: ``{patient}_{index}_{location}_{mode}_{device}`` without extension.
        path: the file named in the error (default: ``stem``).

    Returns:
        Its :class:`IcbhiName`.

    Raises:
        RecordingError: the stem does not have the five fields, or names an unknown chest
            location, acquisition mode or device.
    """
    where = (stem or "<empty name>") if path is None else path
    match = _NAME.fullmatch(stem)
    if match is None:
        raise RecordingError(
            where, f"{stem!r} is not an ICBHI name (patient_index_location_mode_device)"
        )
    patient, index, location, mode, device = match.groups()
    for value, known, what in (
        (location, LOCATIONS, "chest location"),
        (mode, MODES, "acquisition mode"),
        (device, DEVICES, "device"),
    ):
        if value not in known:
            raise RecordingError(where, f"unknown {what} {value!r} in {stem!r}; known: {known}")
    return IcbhiName(stem, patient, index, location, mode, device)


@dataclass(frozen=True)
class Cycle:
    """One annotated respiratory cycle (seconds from the recording start)."""

    start_s: float
    end_s: float
    crackles: bool
    wheezes: bool

    @property
    def label(self) -> int:
        """Index into :data:`CLASSES`: crackles + 2 * wheezes."""
        return int(self.crackles) + 2 * int(self.wheezes)


def read_cycles(path: str | Path) -> list[Cycle]:
    """Read a recording's cycle annotations (``start end crackles wheezes`` a line).

    Args:
        path: the recording's ``.txt``.

    Returns:
        Its cycles in file order (times in s).

    Raises:
        RecordingError: unreadable file; no cycle; a line without exactly four fields; a time
            that is not a finite number in ``[0, MAX_RECORDING_S]``; ``end <= start``; a flag
            other than ``0`` / ``1``.
    """
    path = Path(path)
    cycles = []
    for no, line in read_lines(path):
        fields = line.split()
        if len(fields) != 4:
            raise RecordingError(path, f"line {no}: {line!r} is not 'start end crackles wheezes'")
        start = check_time(
            path, f"line {no}: cycle start", parse_float(path, no, fields[0], "start")
        )
        end = check_time(path, f"line {no}: cycle end", parse_float(path, no, fields[1], "end"))
        if end <= start:
            raise RecordingError(path, f"line {no}: cycle ends at {end:g} s, not after {start:g} s")
        if fields[2] not in ("0", "1") or fields[3] not in ("0", "1"):
            raise RecordingError(path, f"line {no}: crackle/wheeze flags {fields[2:]} are not 0/1")
        cycles.append(Cycle(start, end, fields[2] == "1", fields[3] == "1"))
    if not cycles:
        raise RecordingError(path, "no respiratory cycle annotated")
    return cycles


def check_cycles_within(
    path: str | Path,
    cycles: Iterable[Cycle],
    duration_s: float,
    tolerance_s: float = CYCLE_END_TOLERANCE_S,
) -> None:
    """Refuse cycles that do not lie in their recording.

    Args:
        path: the annotation file named in the error.
        cycles: its cycles.
        duration_s: the recording's length (s).
        tolerance_s: how far past ``duration_s`` a cycle may end.

    Raises:
        RecordingError: a cycle starts at or after the recording's end, or ends more than
            ``tolerance_s`` after it.
    """
    for i, cycle in enumerate(cycles, 1):
        if cycle.start_s >= duration_s or cycle.end_s > duration_s + tolerance_s:
            raise RecordingError(
                path,
                f"cycle {i} ({cycle.start_s:g}-{cycle.end_s:g} s) lies beyond the "
                f"recording's {duration_s:g} s",
            )


def cycle_samples(
    path: str | Path, cycles: list[Cycle], fs_hz: float, n_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sample positions of the cycles in a recording of ``n_samples`` at ``fs_hz``.

    Returns:
        ``(start, stop)`` int64 ``[n_cycles]``: ``round(start_s * fs_hz)`` and
        ``min(round(end_s * fs_hz), n_samples)``; each cycle spans at least one sample.

    Raises:
        RecordingError: as :func:`check_cycles_within` (``duration = n_samples / fs_hz``).
    """
    check_cycles_within(path, cycles, n_samples / fs_hz)
    start = np.array([round(c.start_s * fs_hz) for c in cycles], dtype=np.int64)
    stop = np.array([round(c.end_s * fs_hz) for c in cycles], dtype=np.int64)
    start = np.minimum(start, n_samples - 1)
    stop = np.clip(stop, start + 1, n_samples)
    return start, stop
