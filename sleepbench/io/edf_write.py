"""Write EDF / EDF+ files (signals, or annotations only) with edfio.

Used by the synthetic-data generators so that synthetic nights go through the very same readers
as real ones. Every file is written atomically (temporary file in the target folder, then
``os.replace``), so an interrupted run never leaves a half-written EDF behind. Patient fields are
always anonymised (``X`` for sex, birth date and name); only an opaque ``patient_code`` is kept.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import edfio
import numpy as np

from sleepbench.recording import Event, Signal

__all__ = ["physical_range_for", "write_edf", "write_edf_annotations"]

# EDF's conventional anonymised start (01.01.85 is the EDF "unknown date" convention).
_DEFAULT_START = dt.datetime(1985, 1, 1, 0, 0, 0)
_HEADROOM = 0.05  # fraction of the data span added on each side of the physical range


@contextmanager
def _atomic_target(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the body succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; published files should be readable
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _nice_floor(value: float, step: float) -> float:
    return math.floor(value / step) * step


def physical_range_for(data: np.ndarray) -> tuple[float, float]:
    """Physical (min, max) for a channel: the data span plus 5 % headroom, rounded outwards.

    Args:
        data: samples in physical units.

    Returns:
        ``(physical_min, physical_max)`` with ``min < max``, rounded to a step of 1/100 of the
        span's order of magnitude so the header values stay short and readable. A constant
        channel gets ``value ± 1``.
    """
    lo = float(np.min(data))
    hi = float(np.max(data))
    span = hi - lo
    if span == 0.0:
        return lo - 1.0, hi + 1.0
    lo -= _HEADROOM * span
    hi += _HEADROOM * span
    step = 10.0 ** (math.floor(math.log10(hi - lo)) - 2)
    lo_r = round(_nice_floor(lo, step), 10)
    hi_r = round(-_nice_floor(-hi, step), 10)
    return lo_r, hi_r


def _patient(patient_code: str) -> edfio.Patient:
    # Only the opaque code survives; sex, birth date and name are the EDF+ "unknown" marker X.
    return edfio.Patient(code=patient_code, sex="X", birthdate=None, name="X")


def _to_edf_annotations(events: Sequence[Event]) -> list[edfio.EdfAnnotation]:
    return [
        edfio.EdfAnnotation(
            onset=float(ev.onset_s),
            # EDF+ point events have no duration field.
            duration=float(ev.duration_s) if ev.duration_s > 0 else None,
            text=ev.label,
        )
        for ev in events
    ]


def _check_lengths(signals: Sequence[Signal], record_duration_s: float) -> int:
    """Return the number of data records; raise ValueError when the channels do not fit."""
    durations = {s.name: s.data.shape[0] / s.fs_hz for s in signals}
    first = next(iter(durations.values()))
    if any(not math.isclose(d, first, rel_tol=0, abs_tol=1e-9) for d in durations.values()):
        raise ValueError(f"channels differ in duration (s): {durations}")
    n_records = first / record_duration_s
    if not math.isclose(n_records, round(n_records), abs_tol=1e-9) or round(n_records) == 0:
        raise ValueError(
            f"duration {first} s is not a positive whole number of {record_duration_s}-s records"
        )
    for s in signals:
        per_record = s.fs_hz * record_duration_s
        if not math.isclose(per_record, round(per_record), abs_tol=1e-9):
            raise ValueError(
                f"channel {s.name!r} at {s.fs_hz} Hz has a non-integer number of samples "
                f"({per_record}) per {record_duration_s}-s record"
            )
    return round(n_records)


def write_edf(
    path: str | Path,
    signals: Sequence[Signal],
    start: dt.datetime | None = None,
    annotations: Sequence[Event] = (),
    patient_code: str = "X",
    record_duration_s: float = 1.0,
    physical_ranges: Mapping[str, tuple[float, float]] | None = None,
) -> Path:
    """Write channels (each at its own rate) to an EDF file, or EDF+C when annotations are given.

    Args:
        path: target ``.edf`` file; parent folders are created.
        signals: channels to store, all covering the same duration; each keeps its ``fs_hz``,
            ``name`` (EDF label, at most 16 characters) and ``unit``.
        start: recording start (date and time); ``None`` gives the anonymous 01.01.85 00:00:00.
        annotations: events stored in an ``EDF Annotations`` channel (makes the file EDF+C);
            events with ``duration_s == 0`` are written as point events.
        patient_code: opaque subject code for the patient field; sex, birth date and name are
            always written as ``X``.
        record_duration_s: data-record length in seconds; the duration must be a whole number
            of records and every channel must have an integer number of samples per record.
        physical_ranges: optional fixed ``(min, max)`` per channel name (``{"SaO2": (0, 100)}``);
            other channels get :func:`physical_range_for` of their data.

    Returns:
        The written path. Samples are stored as int16 over the full digital range, so the
        resolution is ``(max - min) / 65535`` in the channel's unit.

    Raises:
        ValueError: no channels, non-finite samples, data outside a fixed physical range, or
            durations that do not split into data records.
    """
    if not signals:
        raise ValueError("write_edf needs at least one channel (use write_edf_annotations)")
    n_records = _check_lengths(signals, record_duration_s)
    ranges = dict(physical_ranges or {})
    edf_signals = []
    for s in signals:
        data = np.asarray(s.data, dtype=np.float64)
        if not np.all(np.isfinite(data)):
            raise ValueError(f"channel {s.name!r} contains NaN or infinite samples")
        edf_signals.append(
            edfio.EdfSignal(
                data,
                sampling_frequency=float(s.fs_hz),
                label=s.name,
                physical_dimension=s.unit,
                physical_range=ranges.get(s.name, physical_range_for(data)),
            )
        )
    start = _DEFAULT_START if start is None else start
    edf = edfio.Edf(
        edf_signals,
        patient=_patient(patient_code),
        recording=edfio.Recording(startdate=start.date()),
        starttime=start.time().replace(microsecond=0),
        data_record_duration=record_duration_s,
        annotations=_to_edf_annotations(annotations) if annotations else None,
    )
    if edf.num_data_records != n_records:  # defensive: edfio must agree with our arithmetic
        raise ValueError(f"edfio computed {edf.num_data_records} records, expected {n_records}")
    out = Path(path)
    with _atomic_target(out) as tmp:
        edf.write(tmp)
    return out


def write_edf_annotations(
    path: str | Path,
    events: Sequence[Event],
    start: dt.datetime | None = None,
    patient_code: str = "X",
) -> Path:
    """Write an annotation-only EDF+C file, shaped like Sleep-EDF's ``*-Hypnogram.edf``.

    The file holds no ordinary signal: one ``EDF Annotations`` channel, one data record of
    duration 0, and one TAL per event (``+onset\\x15duration\\x14text\\x14``), as in the real
    Sleep-EDF hypnograms.

    Args:
        path: target file; parent folders are created.
        events: annotations (``onset_s``, ``duration_s``, ``label`` = annotation text).
        start: recording start, which should equal the matching PSG's start.
        patient_code: opaque subject code; all other patient fields are written as ``X``.

    Returns:
        The written path.

    Raises:
        ValueError: ``events`` is empty.
    """
    if not events:
        raise ValueError("an annotation-only EDF+ file needs at least one event")
    start = _DEFAULT_START if start is None else start
    edf = edfio.Edf(
        [],
        patient=_patient(patient_code),
        recording=edfio.Recording(startdate=start.date()),
        starttime=start.time().replace(microsecond=0),
        annotations=_to_edf_annotations(events),
    )
    out = Path(path)
    with _atomic_target(out) as tmp:
        edf.write(tmp)
    return out
