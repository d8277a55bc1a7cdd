"""The fixed EDF/EDF+ header, parsed from its bytes and checked against the file size.

256 bytes plus 256 per signal (https://www.edfplus.info/specs/edf.html). Every number that sizes
an array is checked against :mod:`sleepbench.io.bounds`, and the declared record count must match
the file size exactly, before any sample is read. The patient and recording identification fields
are never parsed here.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

import numpy as np

from sleepbench.errors import RecordingError
from sleepbench.io.bounds import (
    check_edf_record_duration,
    check_recording_length,
)

__all__ = ["header_dict", "parse_header"]

_FIXED_HEADER_BYTES = 256
_ANNOTATION_LABEL = b"EDF Annotations"
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


def parse_header(path: Path) -> dict[str, Any]:
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


def header_dict(header: dict[str, Any]) -> dict[str, Any]:
    """The public, PHI-free view of :func:`parse_header`'s result."""
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
