"""EDF / EDF+ reader: header, channels at their native rates, EDF+ annotations.

Three entry points:

- :func:`read_edf_header` parses the fixed header only (no sample is read): channel labels,
  sampling rate and physical unit per channel, record layout and start date-time.
- :func:`read_edf` returns a :class:`~sleepbench.recording.Recording` holding the requested
  channels, each **at its own sampling rate** and in the **physical unit and values the file
  declares** (an EEG stored in ``uV`` comes back in microvolts, SaO2 in ``%``), as float32.
- :func:`read_edf_annotations` returns the EDF+ annotations (e.g. a Sleep-EDF hypnogram) as
  :class:`~sleepbench.recording.Event` objects with onset and duration in seconds.

Reader choice. ``mne.io.read_raw_edf`` (mne 1.13) brings every channel of a file with mixed rates
up to the highest rate (an SaO2 channel stored at 1 Hz comes back FFT-resampled to the EEG's
125 Hz) and rescales units it knows to SI (uV -> V) while reporting ``'%'`` as ``'n/a'``. That
silently changes the data a benchmark is built on, so the samples are read with ``edfio``, which
memory-maps the data records and returns each signal at ``samples_per_record / record_duration``
Hz with the file's calibration, and reads only the channels asked for. mne serves as the
reference implementation in the tests. The fixed header is parsed by :mod:`sleepbench.io.edf_header`
because the size check that detects truncated files needs the header's own declared record
count, which ``edfio`` silently "repairs"; the EDF+ annotations are parsed from the raw TAL bytes
by :mod:`sleepbench.io.edf_annotations`, because ``edfio`` skips a TAL whose onset does not parse,
which would leave the epochs it scores silently unscored.

Privacy. The EDF header's patient field (patient code, sex, birth date, name) and the recording
identification field (admin code, technician, equipment) are never returned, stored or logged.
On request :func:`read_edf` derives ``sex`` and ``age`` (whole years at recording start) from an
EDF+ patient field into ``Recording.meta``; the raw field is discarded right after.
"""

from __future__ import annotations

import datetime
import re
import warnings
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import edfio
import numpy as np

from sleepbench.errors import RecordingError
from sleepbench.io.bounds import (
    check_sampling_rate,
)
from sleepbench.io.channel_checks import check_samples
from sleepbench.io.edf_annotations import read_annotation_records
from sleepbench.io.edf_header import header_dict, parse_header
from sleepbench.recording import Event, Recording, Signal

__all__ = ["read_edf", "read_edf_annotations", "read_edf_header"]

_META_FIELDS = frozenset({"sex", "age"})
_EDFPLUS_DATE = re.compile(r"(\d{2})-([A-Za-z]{3})-(\d{4})")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")

ChannelRequest = Mapping[str, Sequence[str] | str] | Sequence[str] | None


def read_edf_header(path: str | Path) -> dict[str, Any]:
    """Parse the header of an EDF/EDF+ file without reading any sample.

    Args:
        path: the ``.edf`` file.

    Returns:
        A dict with

        - ``channels``: labels of the ordinary signals in file order (the EDF+ annotation
          signal is not a channel and is left out);
        - ``fs_hz``, ``units``, ``samples_per_record``: lists parallel to ``channels``
          (Hz, the file's physical dimension such as ``"uV"``, samples per data record);
        - ``n_records``: number of data records (inferred from the file size when the header
          says ``-1``); ``record_duration_s``: seconds per record; ``duration_s``: their product;
        - ``start_datetime``: recording start from the header's date/time fields
          (:class:`datetime.datetime`, ``None`` when unparsable);
        - ``edf_plus``: ``"EDF+C"``, ``"EDF+D"`` or ``None`` for plain EDF;
        - ``header_bytes``, ``record_bytes``: on-disk layout.

        Nothing from the patient or recording identification fields is included.

    Raises:
        RecordingError: missing, non-EDF, malformed or truncated file, a size that disagrees
            with the declared record count, a channel label that is not printable ASCII, or a
            record duration or recording length out of :mod:`sleepbench.io.bounds`.
    """
    return header_dict(parse_header(Path(path)))


def read_edf(
    path: str | Path,
    channels: ChannelRequest = None,
    record_id: str | None = None,
    subject_id: str | None = None,
    *,
    expected_fs_hz: float | Mapping[str, float] | None = None,
    meta_fields: Collection[str] = (),
    allow_flat: bool = False,
) -> Recording:
    """Read channels of an EDF/EDF+ file, each at its native rate and in its physical unit.

    Args:
        path: the ``.edf`` file.
        channels: which channels to read. ``None`` reads every ordinary signal, keyed by its
            label. A sequence of labels reads those, keyed by label. A mapping
            ``{canonical: aliases}`` (``{"spo2": ["SaO2", "SpO2"]}``) reads, for each canonical
            name, the first alias the file has (alias order is priority order) and keys the
            :class:`Signal` by the canonical name; ``Signal.name`` always holds the file's own
            label. Labels match case-insensitively, ignoring surrounding blanks.
        record_id: ``Recording.record_id``; defaults to the file stem.
        subject_id: ``Recording.subject_id``; defaults to ``record_id``. Pass the real subject
            when a subject has several files (nights), or subject-wise splits will leak.
        expected_fs_hz: required sampling rate in Hz, either one value for every requested
            channel or a mapping from key (canonical name or label) to rate.
        meta_fields: non-identifying facts to derive from an EDF+ patient field into
            ``Recording.meta``: ``"sex"`` (``"M"``/``"F"``/``None``) and ``"age"`` (whole years
            at recording start, ``None`` when the birth date or start date is unknown).
        allow_flat: accept channels whose samples are all equal (off by default: a constant
            channel is a disconnected sensor in every dataset sleepbench reads).

    Returns:
        A :class:`Recording` with float32 signals, the file's EDF+ annotations as ``events``
        (seconds from recording start; empty for plain EDF), ``epoch_labels=None`` and
        ``meta`` holding only the requested ``meta_fields``.

    Raises:
        RecordingError: missing/truncated/malformed file (see :func:`read_edf_header`),
            discontinuous EDF+D file, requested channel absent (the message lists the channels
            present), empty, flat or NaN channel, physical or digital minimum equal to the
            maximum, a sampling rate outside :mod:`sleepbench.io.bounds` or other than
            ``expected_fs_hz``, or malformed annotations (see :func:`read_edf_annotations`).
    """
    path = Path(path)
    unknown = set(meta_fields) - _META_FIELDS
    if unknown:
        raise ValueError(f"unknown meta_fields {sorted(unknown)}; choose from {_META_FIELDS}")
    header = parse_header(path)
    if header["edf_plus"] == "EDF+D":
        raise RecordingError(path, "EDF+D (discontinuous) files are not supported")
    wanted = _resolve_channels(path, header, channels)
    events = read_annotation_records(path, header) if header["has_annotations"] else []
    edf = _open_edf(path)
    ordinary = edf.signals  # ordinary signals in file order, as header["ordinary"] indexes them
    if len(ordinary) != len(header["ordinary"]):  # both identify the annotation signal by label
        raise RecordingError(path, "edfio and the header disagree on the annotation signals")
    n_records = header["n_records"]

    signals: dict[str, Signal] = {}
    for key, index in wanted.items():
        sig_header = header["signals"][header["ordinary"][index]]
        _check_calibration(path, sig_header)
        fs_hz = sig_header["samples_per_record"] / header["record_duration_s"]
        check_sampling_rate(path, f"sampling rate of {sig_header['label']!r}", fs_hz)
        _check_rate(path, key, fs_hz, expected_fs_hz)
        # The size check made the file hold exactly the declared records.
        data = ordinary[index].data[: n_records * sig_header["samples_per_record"]]
        data = data.astype(np.float32)
        check_samples(path, sig_header["label"], data, allow_flat=allow_flat)
        signals[key] = Signal(sig_header["label"], data, fs_hz, sig_header["unit"])

    record_id = record_id if record_id is not None else path.name.split(".")[0]
    return Recording(
        record_id=record_id,
        subject_id=subject_id if subject_id is not None else record_id,
        signals=signals,
        events=events,
        epoch_labels=None,
        epoch_s=None,
        meta=_patient_meta(path, header["start_datetime"], meta_fields),
    )


def read_edf_annotations(path: str | Path) -> list[Event]:
    """Read the annotations of an EDF+ file (a Sleep-EDF ``*-Hypnogram.edf``, for instance).

    Args:
        path: the EDF+ file.

    Returns:
        One :class:`Event` per annotation, sorted by onset: ``onset_s`` seconds from the start
        of the first data record (the header's start time plus the first record's time-keeping
        offset, as ``edfio`` and mne count), ``duration_s`` (0 when the annotation has none),
        ``label`` the annotation text. Time-keeping (empty) annotations are left out.

    Raises:
        RecordingError: missing, truncated or malformed file (see :func:`read_edf_header`), a
            plain EDF file (which cannot carry annotations), a TAL that does not parse (bad
            onset or duration, missing terminator, text that is not printable UTF-8), a data
            record without its time-keeping annotation, EDF+C records that are not contiguous,
            or an onset or duration out of :mod:`sleepbench.io.bounds`.
    """
    path = Path(path)
    header = parse_header(path)
    if not header["has_annotations"]:
        raise RecordingError(path, "plain EDF file: no 'EDF Annotations' signal to read")
    return read_annotation_records(path, header)


# --------------------------------------------------------------------------------------------
# channel selection and checks


def _resolve_channels(
    path: Path, header: dict[str, Any], request: ChannelRequest
) -> dict[str, int]:
    """Map output key -> index into the ordinary signals."""
    labels = [header["signals"][i]["label"] for i in header["ordinary"]]
    by_norm: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_norm.setdefault(label.strip().lower(), []).append(i)

    def find(alias: str) -> int | None:
        hits = by_norm.get(alias.strip().lower(), [])
        if len(hits) > 1:
            raise RecordingError(path, f"channel label {alias!r} occurs {len(hits)} times")
        return hits[0] if hits else None

    if request is None:
        request = labels
    if isinstance(request, str):
        request = [request]
    if isinstance(request, Mapping):
        items = [
            (key, [aliases] if isinstance(aliases, str) else list(aliases))
            for key, aliases in request.items()
        ]
    else:
        items = [(label, [label]) for label in request]

    wanted: dict[str, int] = {}
    for key, aliases in items:
        index = next((i for i in map(find, aliases) if i is not None), None)
        if index is None:
            raise RecordingError(
                path, f"channel {key!r} (tried {aliases}) not found; channels present: {labels}"
            )
        wanted[key] = index
    return wanted


def _check_calibration(path: Path, sig: dict[str, Any]) -> None:
    if sig["digital_max"] <= sig["digital_min"]:
        raise RecordingError(
            path,
            f"channel {sig['label']!r}: digital range [{sig['digital_min']}, "
            f"{sig['digital_max']}] is empty",
        )
    # A reversed physical range is legal (an inverted channel); an empty one maps every sample
    # to one value (edfio then returns the raw digital numbers, in no unit at all).
    if sig["physical_max"] == sig["physical_min"]:
        raise RecordingError(
            path,
            f"channel {sig['label']!r}: physical minimum equals physical maximum "
            f"({sig['physical_min']:g})",
        )
    if sig["samples_per_record"] <= 0:
        raise RecordingError(path, f"channel {sig['label']!r} has no samples per record")


def _check_rate(
    path: Path, key: str, fs_hz: float, expected: float | Mapping[str, float] | None
) -> None:
    if expected is None:
        return
    want = expected.get(key) if isinstance(expected, Mapping) else expected
    if want is not None and not np.isclose(fs_hz, want, rtol=1e-6, atol=0.0):
        raise RecordingError(path, f"channel {key!r} is sampled at {fs_hz:g} Hz, expected {want:g}")


# --------------------------------------------------------------------------------------------
# data, annotations, meta


def _open_edf(path: Path) -> edfio.Edf:
    """Memory-map the file with edfio (lazy: only channels whose data is touched are read)."""
    try:
        with warnings.catch_warnings():
            # Size mismatches were validated in parse_header; edfio's own notices are noise.
            warnings.simplefilter("ignore")
            return edfio.read_edf(path, lazy_load_data=True)
    except (ValueError, UnicodeDecodeError, OSError) as err:
        raise RecordingError(path, f"edfio cannot parse the file: {err}") from err


def _patient_meta(
    path: Path, start: datetime.datetime | None, meta_fields: Collection[str]
) -> dict[str, Any]:
    """Derive sex / age from the EDF+ patient field ``code sex birthdate name ...``.

    Only the requested facts leave this function; the field itself (with the name, the code
    and the exact birth date) is not returned. Plain-EDF (free text) patient fields yield
    ``None`` for every fact.
    """
    if not meta_fields:
        return {}
    with path.open("rb") as f:
        raw = f.read(88)[8:].decode("latin-1").split()
    edf_plus = len(raw) >= 4 and raw[1] in ("M", "F", "X")
    meta: dict[str, Any] = {}
    if "sex" in meta_fields:
        meta["sex"] = raw[1] if edf_plus and raw[1] in ("M", "F") else None
    if "age" in meta_fields:
        birth = _edfplus_date(raw[2]) if edf_plus else None
        meta["age"] = (
            start.year - birth.year - ((start.month, start.day) < (birth.month, birth.day))
            if birth is not None and start is not None
            else None
        )
    return meta


def _edfplus_date(text: str) -> datetime.date | None:
    match = _EDFPLUS_DATE.fullmatch(text)
    if match is None or match.group(2).upper() not in _MONTHS:
        return None
    try:
        return datetime.date(
            int(match.group(3)), _MONTHS.index(match.group(2).upper()) + 1, int(match.group(1))
        )
    except ValueError:
        return None
