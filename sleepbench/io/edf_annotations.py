"""EDF+ annotations read from the raw TAL bytes of the annotation signals.

``edfio`` drops a TAL it cannot parse (its epochs then silently become unscored) and raises
assorted exception types on corrupt text; this parser refuses every malformed byte with one
:class:`~sleepbench.errors.RecordingError` instead. On valid files it returns what ``edfio``
returns (a test compares them). Format: https://www.edfplus.info/specs/edfplus.html#tal
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from sleepbench.errors import RecordingError
from sleepbench.io.bounds import check_time
from sleepbench.recording import Event

__all__ = ["read_annotation_records"]

# One Time-stamped Annotations List: onset, optional duration (\x15), then texts each closed by
# \x14; the \x00 that ends a TAL is split off before matching.
_TAL = re.compile(rb"([+-]\d+(?:\.\d*)?)(?:\x15(\d+(?:\.\d*)?))?\x14(.*)\x14", re.DOTALL)
# Successive EDF+C data records must start record_duration apart (their time-keeping TALs).
_TIMEKEEPING_TOLERANCE_S = 1e-3


def read_annotation_records(path: Path, header: dict[str, Any]) -> list[Event]:
    """Parse the TALs of every annotation signal in every data record of an EDF+ file.

    Args:
        path: the file (named in errors).
        header: :mod:`sleepbench.io.edf`'s parsed header (``signals`` with ``samples_per_record``
            and ``annotation``, ``n_records``, ``record_bytes``, ``header_bytes``, ``edf_plus``,
            ``record_duration_s``), already checked against the file size.

    Returns:
        The annotations with text, sorted by onset (seconds from the first record's start).

    Raises:
        RecordingError: a malformed TAL, undecodable or non-printable text, a record without its
            time-keeping TAL, non-contiguous EDF+C records, an onset outside the plausible range.

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
