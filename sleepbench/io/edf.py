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
"repairs". The EDF+ annotations are parsed here too, from the raw TAL bytes of the annotation
signal (https://www.edfplus.info/specs/edfplus.html#tal): ``edfio`` skips a TAL whose onset does
not parse, which would leave the epochs it scores silently unscored.

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
    check_edf_record_duration,
    check_recording_length,
    check_sampling_rate,
    check_time,
)
from sleepbench.io.channel_checks import check_samples
from sleepbench.recording import Event, Recording, Signal

__all__ = ["read_edf", "read_edf_annotations", "read_edf_header"]

_FIXED_HEADER_BYTES = 256
_ANNOTATION_LABEL = b"EDF Annotations"
# One Time-stamped Annotations List: onset, optional duration (\x15), then texts each closed by
# \x14; the \x00 that ends a TAL is split off before matching.
_TAL = re.compile(rb"([+-]\d+(?:\.\d*)?)(?:\x15(\d+(?:\.\d*)?))?\x14(.*)\x14", re.DOTALL)
# Successive EDF+C data records must start record_duration apart (their time-keeping TALs).
_TIMEKEEPING_TOLERANCE_S = 1e-3
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
        RecordingError: missing, non-EDF, malformed or truncated file, a size that disagrees
            with the declared record count, a channel label that is not printable ASCII, or a
            record duration or recording length out of :mod:`sleepbench.io.bounds`.
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
    header = _parse_header(path)
    if header["edf_plus"] == "EDF+D":
        raise RecordingError(path, "EDF+D (discontinuous) files are not supported")
    wanted = _resolve_channels(path, header, channels)
    events = _read_annotations(path, header) if header["has_annotations"] else []
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
    header = _parse_header(path)
    if not header["has_annotations"]:
        raise RecordingError(path, "plain EDF file: no 'EDF Annotations' signal to read")
    return _read_annotations(path, header)


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

    fields: dict[str, list[bytes]] = {}
    offset = 0
    for name, width in _SIGNAL_FIELDS:
        chunk = raw[offset : offset + width * n_signals]
        fields[name] = [chunk[i * width : (i + 1) * width] for i in range(n_signals)]
        offset += width * n_signals

    signals = []
    for i in range(n_signals):
        raw_label = fields["label"][i]
        label = _label_text(path, raw_label, i)
        signals.append(
            {
                "label": label,
                # edfio tells the annotation signal by its right-stripped label; so do we, so
                # that both number the ordinary signals alike.
                "annotation": raw_label.rstrip() == _ANNOTATION_LABEL,
                "unit": fields["unit"][i].decode("latin-1").strip(),
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
    ordinary = [i for i, s in enumerate(signals) if not s["annotation"]]
    check_edf_record_duration(path, record_duration_s, has_signals=bool(ordinary))
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
    check_recording_length(path, "recording length", n_records * record_duration_s)
    _check_size(path, size, header_bytes, n_records, record_bytes)

    reserved = fixed[192:236].decode("latin-1").strip()
    edf_plus = reserved[:5] if reserved[:5] in ("EDF+C", "EDF+D") else None
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


def _check_size(
    path: Path, size: int, header_bytes: int, n_records: int, record_bytes: int
) -> None:
    """The file must hold exactly the declared records: no fewer, no more, no partial one.

    Extra whole records mean the header's count is stale (a recorder that crashed before
    updating it): reading only the declared ones would silently drop data, half a night say.
    A trailing partial record is refused too: the spec fixes the size exactly, so the header
    and the data disagree and which of them is wrong cannot be told.
    """
    expected = header_bytes + n_records * record_bytes
    layout = f"{header_bytes} header + {n_records} records x {record_bytes} bytes"
    if size < expected:
        raise RecordingError(
            path, f"truncated file: {size} bytes, header needs {expected} ({layout})"
        )
    extra_records, rest = divmod(size - expected, record_bytes)
    if extra_records:
        raise RecordingError(
            path,
            f"file holds {extra_records} more data records than the {n_records} its header "
            f"declares ({size} bytes, header implies {expected}: {layout})",
        )
    if rest:
        raise RecordingError(
            path,
            f"{rest} bytes after the last declared data record ({size} bytes, header implies "
            f"{expected}: {layout}); a partial record means header and data disagree",
        )


def _label_text(path: Path, raw: bytes, index: int) -> str:
    """A channel label as text: printable ASCII, as the EDF spec requires of header fields."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        text = None
    if text is None or not text.isprintable():
        raise RecordingError(path, f"label of signal {index + 1} is not printable text: {raw!r}")
    return text.strip()


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
            # Size mismatches were validated in _parse_header; edfio's own notices are noise.
            warnings.simplefilter("ignore")
            return edfio.read_edf(path, lazy_load_data=True)
    except (ValueError, UnicodeDecodeError, OSError) as err:
        raise RecordingError(path, f"edfio cannot parse the file: {err}") from err


def _read_annotations(path: Path, header: dict[str, Any]) -> list[Event]:
    """Parse the TALs of every annotation signal in every data record.

    In each data record the first TAL of the first annotation signal is the record's
    time-keeping annotation (empty text, onset = the record's start after the header's start
    time); its onset in the first record is subtracted from every annotation onset, as
    ``edfio`` does.
    """
    slots, offset = [], 0
    for sig in header["signals"]:
        width = 2 * sig["samples_per_record"]
        if sig["annotation"]:
            slots.append((offset, offset + width))
        offset += width
    n_records, record_bytes = header["n_records"], header["record_bytes"]
    if n_records == 0:
        return []
    records = np.memmap(
        path,
        dtype=np.uint8,
        mode="r",
        offset=header["header_bytes"],
        shape=(n_records, record_bytes),
    )
    starts: list[float] = []
    found: list[tuple[float, float | None, str]] = []
    for r in range(n_records):
        for k, (lo, hi) in enumerate(slots):
            tals = _parse_tals(path, records[r, lo:hi].tobytes(), r)
            if k == 0:
                if not tals or tals[0][2][:1] != [""]:
                    raise RecordingError(
                        path, f"data record {r} has no time-keeping annotation (empty first TAL)"
                    )
                starts.append(tals[0][0])
                tals[0] = (tals[0][0], tals[0][1], tals[0][2][1:])
            found.extend(
                (onset, duration, text) for onset, duration, texts in tals for text in texts
            )
    del records  # release the memory map before the file may be replaced

    # Annotation-only files have 0-s records that all start at 0: nothing to check there.
    if header["edf_plus"] == "EDF+C" and header["record_duration_s"] > 0:
        step = header["record_duration_s"]
        for r, start in enumerate(starts):
            if abs(start - (starts[0] + r * step)) > _TIMEKEEPING_TOLERANCE_S:
                raise RecordingError(
                    path,
                    f"EDF+C data record {r} starts at {start:g} s, not {starts[0] + r * step:g} s "
                    "(records are not contiguous)",
                )
    events = [
        Event(onset_s=round(onset - starts[0], 12), duration_s=duration or 0.0, label=text)
        for onset, duration, text in found
        if text
    ]
    return sorted(events, key=lambda e: (e.onset_s, e.duration_s, e.label))


def _parse_tals(path: Path, raw: bytes, record: int) -> list[tuple[float, float | None, list[str]]]:
    """The TALs of one annotation signal in one data record: ``(onset_s, duration_s, texts)``.

    Each TAL ends with a 0-byte, and the bytes after the last TAL are 0 (the spec's padding);
    anything else is corruption and is refused rather than skipped.
    """
    tals = []
    pos = 0
    while pos < len(raw) and raw[pos] != 0:
        end = raw.find(b"\x00", pos)
        if end < 0:
            raise RecordingError(path, f"data record {record}: TAL without its closing 0-byte")
        match = _TAL.fullmatch(raw, pos, end)
        if match is None:
            raise RecordingError(path, f"data record {record}: malformed TAL {raw[pos:end][:60]!r}")
        where = f"data record {record}: annotation"
        onset = check_time(path, f"{where} onset", float(match[1]), signed=True)
        duration = check_time(path, f"{where} duration", float(match[2])) if match[2] else None
        tals.append(
            (onset, duration, [_tal_text(path, t, record) for t in match[3].split(b"\x14")])
        )
        pos = end + 1
    if raw[pos:].strip(b"\x00"):
        raise RecordingError(
            path, f"data record {record}: bytes after the last TAL: {raw[pos:][:60]!r}"
        )
    return tals


def _tal_text(path: Path, raw: bytes, record: int) -> str:
    """An annotation text: UTF-8 (EDF+ TALs are UTF-8) without control characters."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or not text.isprintable():
        raise RecordingError(
            path, f"data record {record}: annotation text is not printable UTF-8: {raw[:60]!r}"
        )
    return text


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
