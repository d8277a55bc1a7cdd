"""Read-only access to a finished cache, safe for DataLoader workers.

The h5py handle is opened lazily in the process that reads (and re-opened after a fork), because
HDF5 file handles must not cross process boundaries.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from sleepbench.cache.skipped import SkippedRecord, format_skipped, read_skipped_table
from sleepbench.errors import RecordingError


@dataclass(frozen=True)
class CachedRecord:
    """Index entry of one cached record: its id, subject, attrs and dataset shapes."""

    record_id: str
    subject_id: str
    attrs: dict[str, Any]
    shapes: dict[str, tuple[int, ...]]


class CacheStore:
    """A finished cache file.

    Args:
        path: ``.h5`` file written by :func:`sleepbench.cache.build.build_cache`.
        in_memory: read every dataset into RAM once (small sets; avoids HDF5 reads per item).

    Attributes:
        records: the cached recordings (:class:`CachedRecord`), sorted by id.
        skipped_records: the recordings the build left out (:class:`SkippedRecord`: id, files,
            error type, message), sorted by id.
        skipped: the same as ``(record_id, "<error_type>: <message>")`` pairs.

    Raises:
        RecordingError: the file is not a complete sleepbench cache.
    """

    def __init__(self, path: Path, in_memory: bool = False) -> None:
        self.path = Path(path)
        self._handle: h5py.File | None = None
        self._pid: int | None = None
        self._memory: dict[str, dict[str, np.ndarray]] | None = None
        with h5py.File(self.path, "r") as f:
            if not f.attrs.get("complete", 0):
                raise RecordingError(self.path, "cache file is incomplete (interrupted build)")
            self.fingerprint = str(f.attrs["fingerprint"])
            self.preprocess = json.loads(f.attrs["preprocess"])
            self.records: list[CachedRecord] = []
            for rid in sorted(f["records"]):
                grp = f["records"][rid]
                attrs = {k: _decode(v) for k, v in grp.attrs.items() if k != "complete"}
                self.records.append(
                    CachedRecord(
                        record_id=rid,
                        subject_id=str(attrs.pop("subject_id")),
                        attrs=attrs,
                        shapes={k: tuple(grp[k].shape) for k in grp},
                    )
                )
            self.skipped_records: list[SkippedRecord] = read_skipped_table(f)
            if in_memory:
                self._memory = {
                    rid: {k: grp[k][()] for k in grp} for rid, grp in f["records"].items()
                }
        self._by_id = {r.record_id: i for i, r in enumerate(self.records)}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handle"] = None  # never pickle an open HDF5 handle into a worker
        state["_pid"] = None
        return state

    def _file(self) -> h5py.File:
        if self._handle is None or self._pid != os.getpid():
            self._handle = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._handle

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """``(record_id, reason)`` of every skipped recording (reason: ``"<type>: <message>"``)."""
        return [(r.record_id, r.reason) for r in self.skipped_records]

    def skipped_summary(self) -> str:
        """The skipped table as text, one recording per line (empty when none was skipped)."""
        return format_skipped(self.skipped_records)

    def index_of(self, record_id: str) -> int:
        """Position of ``record_id`` in :attr:`records`."""
        return self._by_id[record_id]

    def read(self, record: int, name: str, sl: slice | tuple = slice(None)) -> np.ndarray:
        """Return ``records[record]``'s dataset ``name`` sliced by ``sl`` (numpy semantics)."""
        rid = self.records[record].record_id
        if self._memory is not None:
            return self._memory[rid][name][sl]
        return self._file()["records"][rid][name][sl]

    def close(self) -> None:
        """Close this process's handle (re-opened on the next read)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value
