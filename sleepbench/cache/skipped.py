"""The ``skipped`` table of a cache: recordings a build could not use, with file, error and message.

One row per recording: ``record_id``, ``files`` (JSON list of its file paths, the failing one
first), ``error_type`` (the exception's class name, or ``MissingFile`` for a recording whose
partner file was found missing while listing the sources) and ``message``. Caches written before
format 2 hold two columns, ``(record_id, reason)``; they are still read.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from sleepbench.errors import RecordingError

#: Column names of the on-disk table (stored in its ``columns`` attribute).
SKIPPED_COLUMNS: tuple[str, ...] = ("record_id", "files", "error_type", "message")
#: ``error_type`` of a recording whose partner file (labels, signal) does not exist.
MISSING_FILE = "MissingFile"


@dataclass(frozen=True)
class SkippedRecord:
    """One recording left out of a cache.

    Args:
        record_id: the recording's id.
        files: its files as strings, the one the error names first.
        error_type: exception class name (``RecordingError``, ``KeyError``...) or ``MissingFile``.
        message: what went wrong, in words.
    """

    record_id: str
    files: tuple[str, ...]
    error_type: str
    message: str

    @property
    def reason(self) -> str:
        """``"<error_type>: <message>"`` (the message alone when the type is unknown)."""
        return f"{self.error_type}: {self.message}" if self.error_type else self.message


def skipped_from_exception(
    record_id: str, paths: Sequence[Path | str], err: BaseException
) -> SkippedRecord:
    """The row of a recording whose preprocessing raised ``err``.

    A :class:`RecordingError` names its file, which goes first in ``files``. Any other exception
    is a reader or preprocessing bug met on this input: its message gets the innermost frame
    (``at file:line in function``) so the row points at the code as well as at the data.
    """
    files = [str(p) for p in paths]
    if isinstance(err, RecordingError):
        message = str(err)
        if err.path in files:
            files.remove(err.path)
        files.insert(0, err.path)
    else:
        message = str(err) or repr(err)
        frames = traceback.extract_tb(err.__traceback__)
        if frames:
            last = frames[-1]
            message += f" (at {Path(last.filename).name}:{last.lineno} in {last.name})"
    return SkippedRecord(record_id, tuple(files), type(err).__name__, message)


def write_skipped_table(f: h5py.File, rows: Iterable[SkippedRecord]) -> None:
    """Replace ``f["skipped"]`` with ``rows`` (sorted by record id)."""
    table = [
        (r.record_id, json.dumps(list(r.files)), r.error_type, r.message)
        for r in sorted(rows, key=lambda r: r.record_id)
    ]
    if "skipped" in f:  # left by an earlier run that failed or died after writing it
        del f["skipped"]
    data = np.array(table, dtype=h5py.string_dtype()).reshape(len(table), len(SKIPPED_COLUMNS))
    f.create_dataset("skipped", data=data)
    f["skipped"].attrs["columns"] = json.dumps(SKIPPED_COLUMNS)


def read_skipped_table(f: h5py.File) -> list[SkippedRecord]:
    """The rows of ``f["skipped"]``, in either the current or the two-column (format 1) layout."""
    table = f["skipped"].asstr()[()]
    rows = []
    for row in table:  # 2-D: one row per recording
        if len(row) == 2:  # format 1: (record_id, "<type>: <message>")
            rid, reason = (str(v) for v in row)
            kind, sep, message = reason.partition(": ")
            if not sep or not kind.isidentifier():
                kind, message = "", reason
            rows.append(SkippedRecord(rid, (), kind, message))
        else:
            rid, files, kind, message = (str(v) for v in row)
            rows.append(SkippedRecord(rid, tuple(json.loads(files)), kind, message))
    return rows


def format_skipped(rows: Sequence[SkippedRecord], limit: int | None = None) -> str:
    """Human-readable table, one recording per line: ``id  files  type: message``.

    Args:
        rows: the table.
        limit: show at most this many rows, then say how many more there are.
    """
    shown = rows if limit is None else rows[:limit]
    lines = [f"  {r.record_id}  {', '.join(r.files) or '-'}  {r.reason}" for r in shown]
    if len(rows) > len(shown):
        lines.append(f"  ... and {len(rows) - len(shown)} more")
    return "\n".join(lines)
