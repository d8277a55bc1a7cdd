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
reference implementation in the tests. The fixed header is parsed here (it is 256 bytes plus
256 per signal, see https://www.edfplus.info/specs/edf.html) because the size check that
detects truncated files needs the header's own declared record count, which ``edfio`` silently
"repairs".

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
from sleepbench.recording import Event, Recording, Signal

__all__ = ["read_edf", "read_edf_annotations", "read_edf_header"]

_FIXED_HEADER_BYTES = 256
_ANNOTATION_LABEL = "EDF Annotations"
# (name, width in bytes) of the per-signal header fields, in file order.
_SIGNAL_FIELDS: tuple[tuple[str, int], ...] = (
    ("label", 16),
    ("transducer", 80),
    ("unit", 8),
    ("physical_min", 8),
    ("physical_max", 8),
    ("digital_min", 8),
    ("digital_max", 8),
    ("prefilter", 80),
    ("samples_per_record", 8),
    ("reserved", 32),
)
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
        RecordingError: missing, non-EDF, malformed or truncated file.
    """
    return _header_dict(_parse_header(Path(path)))


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
        RecordingError: missing/truncated/malformed file, discontinuous EDF+D file, requested
            channel absent (the message lists the channels present), empty, flat or NaN
            channel, or a sampling rate other than ``expected_fs_hz``.
    """
    path = Path(path)
    unknown = set(meta_fields) - _META_FIELDS
    if unknown:
        raise ValueError(f"unknown meta_fields {sorted(unknown)}; choose from {_META_FIELDS}")
    header = _parse_header(path)
    if header["edf_plus"] == "EDF+D":
        raise RecordingError(path, "EDF+D (discontinuous) files are not supported")
    if header["record_duration_s"] <= 0 and header["ordinary"]:
        raise RecordingError(path, f"data record duration {header['record_duration_s']} s")
    wanted = _resolve_channels(path, header, channels)
    edf = _open_edf(path)
    ordinary = edf.signals  # ordinary signals in file order, as header["ordinary"] indexes them
    n_records = header["n_records"]

    signals: dict[str, Signal] = {}
    for key, index in wanted.items():
        sig_header = header["signals"][header["ordinary"][index]]
        _check_calibration(path, sig_header)
        fs_hz = sig_header["samples_per_record"] / header["record_duration_s"]
        _check_rate(path, key, fs_hz, expected_fs_hz)
        # Trailing bytes beyond the declared records are ignored, as mne does.
        data = ordinary[index].data[: n_records * sig_header["samples_per_record"]]
        data = data.astype(np.float32)
        _check_values(path, sig_header["label"], data, allow_flat)
        signals[key] = Signal(sig_header["label"], data, fs_hz, sig_header["unit"])

    events = _annotations_to_events(edf) if header["has_annotations"] else []
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
        One :class:`Event` per annotation, sorted by onset: ``onset_s`` seconds from recording
        start, ``duration_s`` (0 when the annotation has none), ``label`` the annotation text.
        Time-keeping annotations are left out.

    Raises:
        RecordingError: missing, truncated or malformed file, or a plain EDF file (which cannot
            carry annotations).
    """
    path = Path(path)
    header = _parse_header(path)
    if not header["has_annotations"]:
        raise RecordingError(path, "plain EDF file: no 'EDF Annotations' signal to read")
    return _annotations_to_events(_open_edf(path))


# --------------------------------------------------------------------------------------------
# header parsing


def _parse_header(path: Path) -> dict[str, Any]:
    """Parse the fixed header into a private dict (with calibration) and check the file size."""
    if not path.is_file():
        raise RecordingError(path, "file not found")
    size = path.stat().st_size
    with path.open("rb") as f:
        fixed = f.read(_FIXED_HEADER_BYTES)
        if len(fixed) < _FIXED_HEADER_BYTES:
            raise RecordingError(path, f"not an EDF file: only {size} bytes")
        if fixed.startswith(b"\xffBIOSEMI"):
            raise RecordingError(path, "BDF (24-bit) files are not supported")
        if fixed[:8].strip() != b"0":
            raise RecordingError(path, f"not an EDF file: version field {fixed[:8]!r}")
        header_bytes = _int_field(path, fixed[184:192], "header bytes")
        n_records = _int_field(path, fixed[236:244], "number of data records")
        record_duration_s = _float_field(path, fixed[244:252], "data record duration")
        n_signals = _int_field(path, fixed[252:256], "number of signals")
        if n_signals < 1:
            raise RecordingError(path, f"header declares {n_signals} signals")
        expected_header_bytes = _FIXED_HEADER_BYTES * (n_signals + 1)
        if header_bytes != expected_header_bytes:
            raise RecordingError(
                path,
                f"header size field says {header_bytes} bytes but {n_signals} signals "
                f"need {expected_header_bytes}",
            )
        raw = f.read(header_bytes - _FIXED_HEADER_BYTES)
    if len(raw) < header_bytes - _FIXED_HEADER_BYTES:
        raise RecordingError(path, f"truncated header: {size} of {header_bytes} bytes")

    fields: dict[str, list[str]] = {}
    offset = 0
    for name, width in _SIGNAL_FIELDS:
        chunk = raw[offset : offset + width * n_signals]
        fields[name] = [
            chunk[i * width : (i + 1) * width].decode("latin-1").strip() for i in range(n_signals)
        ]
        offset += width * n_signals

    signals = []
    for i in range(n_signals):
        label = fields["label"][i]
        signals.append(
            {
                "label": label,
                "unit": fields["unit"][i],
                "samples_per_record": _int_field(
                    path, fields["samples_per_record"][i], f"samples per record of {label!r}"
                ),
                **{
                    key: _float_field(path, fields[key][i], f"{key} of {label!r}")
                    for key in ("physical_min", "physical_max", "digital_min", "digital_max")
                },
            }
        )
    negative = [s["label"] for s in signals if s["samples_per_record"] < 0]
    if negative:
        raise RecordingError(path, f"negative samples per record for {negative}")
    # EDF samples are 2-byte integers; the annotation signal uses the same 2-byte slots.
    record_bytes = 2 * sum(s["samples_per_record"] for s in signals)
    if record_bytes <= 0:
        raise RecordingError(path, "data records have zero samples")
    data_bytes = size - header_bytes
    if n_records == -1:
        # -1 is only legal while recording; infer the count as mne does, but refuse partial data.
        n_records, rest = divmod(data_bytes, record_bytes)
        if rest:
            raise RecordingError(
                path, f"truncated file: {rest} bytes of an incomplete last data record"
            )
    elif n_records < 0:
        raise RecordingError(path, f"header declares {n_records} data records")
    expected_size = header_bytes + n_records * record_bytes
    if size < expected_size:
        raise RecordingError(
            path,
            f"truncated file: {size} bytes, header needs {expected_size} "
            f"({header_bytes} header + {n_records} records x {record_bytes} bytes)",
        )

    reserved = fixed[192:236].decode("latin-1").strip()
    edf_plus = reserved[:5] if reserved[:5] in ("EDF+C", "EDF+D") else None
    ordinary = [i for i, s in enumerate(signals) if s["label"] != _ANNOTATION_LABEL]
    return {
        "signals": signals,
        "ordinary": ordinary,
        "has_annotations": len(ordinary) < n_signals,
        "n_records": n_records,
        "record_duration_s": record_duration_s,
        "header_bytes": header_bytes,
        "record_bytes": record_bytes,
        "edf_plus": edf_plus,
        "start_datetime": _start_datetime(fixed[168:176], fixed[176:184]),
    }


def _header_dict(header: dict[str, Any]) -> dict[str, Any]:
    """The public, PHI-free view of :func:`_parse_header`'s result."""
    ordinary = [header["signals"][i] for i in header["ordinary"]]
    duration = header["record_duration_s"]
    return {
        "channels": [s["label"] for s in ordinary],
        "fs_hz": [s["samples_per_record"] / duration if duration > 0 else 0.0 for s in ordinary],
        "units": [s["unit"] for s in ordinary],
        "samples_per_record": [s["samples_per_record"] for s in ordinary],
        "n_records": header["n_records"],
        "record_duration_s": duration,
        "duration_s": header["n_records"] * duration,
        "start_datetime": header["start_datetime"],
        "edf_plus": header["edf_plus"],
        "header_bytes": header["header_bytes"],
        "record_bytes": header["record_bytes"],
    }


def _int_field(path: Path, raw: bytes | str, what: str) -> int:
    text = raw.decode("latin-1").strip() if isinstance(raw, bytes) else raw
    try:
        return int(text)
    except ValueError:
        try:  # some writers put "125.0" or "30." in integer fields
            value = float(text)
        except ValueError:
            raise RecordingError(path, f"malformed header: {what} is {text!r}") from None
        if not value.is_integer():
            raise RecordingError(path, f"malformed header: {what} is {text!r}") from None
        return int(value)


def _float_field(path: Path, raw: bytes | str, what: str) -> float:
    text = raw.decode("latin-1").strip() if isinstance(raw, bytes) else raw
    try:
        value = float(text)
    except ValueError:
        raise RecordingError(path, f"malformed header: {what} is {text!r}") from None
    if not np.isfinite(value):
        raise RecordingError(path, f"malformed header: {what} is {text!r}")
    return value


def _start_datetime(date: bytes, time: bytes) -> datetime.datetime | None:
    """Header start date (dd.mm.yy, 1985-2084 per the EDF spec) and time (hh.mm.ss)."""
    try:
        day, month, year = (int(x) for x in re.split(r"[.:/\-' ]", date.decode("ascii").strip()))
        hour, minute, second = (
            int(x) for x in re.split(r"[.:/\-' ]", time.decode("ascii").strip())
        )
        year += 1900 if year >= 85 else 2000
        return datetime.datetime(year, month, day, hour, minute, second)
    except (UnicodeDecodeError, ValueError):
        return None


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


def _check_values(path: Path, label: str, data: np.ndarray, allow_flat: bool) -> None:
    if data.size == 0:
        raise RecordingError(path, f"channel {label!r} is empty")
    if not np.isfinite(data).all():
        raise RecordingError(path, f"channel {label!r} contains NaN or infinite values")
    if not allow_flat and data.min() == data.max():
        raise RecordingError(path, f"channel {label!r} is flat (every sample is {data[0]:g})")


# --------------------------------------------------------------------------------------------
# data, annotations, meta


def _open_edf(path: Path) -> edfio.Edf:
    """Memory-map the file with edfio (lazy: only channels whose data is touched are read)."""
    try:
        with warnings.catch_warnings():
            # Size mismatches were validated in _parse_header; edfio's own notices are noise.
            warnings.simplefilter("ignore")
            return edfio.read_edf(path, lazy_load_data=True)
    except (ValueError, UnicodeDecodeError, OSError) as err:
        raise RecordingError(path, f"edfio cannot parse the file: {err}") from err


def _annotations_to_events(edf: edfio.Edf) -> list[Event]:
    events = [
        Event(
            onset_s=float(a.onset),
            duration_s=float(a.duration) if a.duration is not None else 0.0,
            label=a.text,
        )
        for a in edf.annotations
        if a.text
    ]
    return sorted(events, key=lambda e: e.onset_s)


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
