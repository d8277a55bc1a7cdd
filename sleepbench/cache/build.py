"""Build a task's HDF5 cache: parallel, resumable, atomic, with a table of skipped recordings.

Layout of ``<cache_dir>/<task>-<fingerprint>.h5``::

    /                      attrs: fingerprint, task, format, complete=1, preprocess (JSON)
    /records/<record_id>/  datasets written by the task's preprocess function (e.g. x, y)
                           attrs: subject_id, complete=1, plus the task's own attrs
    /skipped               table of the recordings that could not be used
                           (record_id, files, error_type, message: see sleepbench.cache.skipped)

One bad recording never stops a build: whatever its preprocessing raises (a
:class:`RecordingError`, or a ``KeyError``/``UnicodeDecodeError`` from a reader meeting input it
did not expect), and a recording listed with a missing partner file (:attr:`SourceRecord.missing`),
goes to ``skipped`` and the build goes on; the end of the build logs the table. Only a build left
with no usable recording fails, with :class:`NoUsableRecordingError` listing the table.

The build writes ``<name>.h5.partial``; each record group gets ``complete=1`` after its data are
flushed, so an interrupted build resumes from the finished groups (incomplete groups are
discarded). Only the finished file is renamed into place (``os.replace``, atomic on POSIX), so a
half-built cache is never readable under the final name; an exception escaping the build leaves
the ``.partial`` to resume from. Pool workers die with the building process
(:mod:`sleepbench.cache.pool`).
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import h5py
import numpy as np
from tqdm.auto import tqdm

from sleepbench.cache.fingerprint import CACHE_FORMAT_VERSION, fingerprint
from sleepbench.cache.pool import worker_pool
from sleepbench.cache.skipped import (
    MISSING_FILE,
    SkippedRecord,
    format_skipped,
    skipped_from_exception,
    write_skipped_table,
)
from sleepbench.errors import RecordingError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceRecord:
    """One recording to preprocess.

    Args:
        record_id: unique id (HDF5 group name).
        subject_id: the person it belongs to.
        paths: its source files (all of them: they enter the fingerprint).
        meta: anything the preprocess function needs (labels file, visit...); JSON-able.
        missing: set by a task's ``list_sources`` when a file this recording needs does not
            exist (a PSG without hypnogram, a record without labels): the message, naming the
            missing file. The build lists such a recording as skipped (``MissingFile``) without
            preprocessing it.
    """

    record_id: str
    subject_id: str
    paths: tuple[Path, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)
    missing: str | None = None


@dataclass
class ProcessedRecord:
    """What a task's preprocess function returns for one recording.

    Args:
        arrays: dataset name -> array (``x``: float32 ``[channels, samples]``, ``y``: labels...).
        attrs: scalar/str attributes stored on the record group (JSON-able values).
    """

    arrays: dict[str, np.ndarray]
    attrs: dict[str, Any] = field(default_factory=dict)


PreprocessFn = Callable[[SourceRecord, Mapping[str, Any]], ProcessedRecord]


def cache_path(cache_dir: Path, task: str, fp: str) -> Path:
    """Final path of a task's cache file for fingerprint ``fp``."""
    return Path(cache_dir) / f"{task}-{fp}.h5"


def _attr_value(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool, np.integer, np.floating)):
        return value
    return json.dumps(value, sort_keys=True, default=str)


class NoUsableRecordingError(RecordingError):
    """A build ended with no usable recording; ``skipped`` holds every recording's row."""

    def __init__(self, path: str | Path, task: str, skipped: Sequence[SkippedRecord]) -> None:
        self.task, self.skipped = task, list(skipped)
        super().__init__(
            path,
            f"no usable recording for {task}; all {len(self.skipped)} skipped:\n"
            + format_skipped(self.skipped, limit=50),
        )

    def __reduce__(self):  # keep the table through pickling
        return (type(self), (self.path, self.task, self.skipped))


class _Failed(NamedTuple):
    """A recording's preprocessing failed: its table row and the traceback (for debug logs)."""

    row: SkippedRecord
    trace: str


def _run_one(
    fn: PreprocessFn, source: SourceRecord, cfg: Mapping[str, Any]
) -> ProcessedRecord | _Failed:
    """Preprocess one record; any exception becomes its (picklable) skipped row."""
    try:
        return fn(source, cfg)
    except Exception as err:  # one bad recording, whatever the error, must not stop the build
        trace = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        return _Failed(skipped_from_exception(source.record_id, source.paths, err), trace)


def _open_partial(partial: Path, fp: str, task: str, preprocess: Mapping[str, Any]) -> h5py.File:
    """Open (resume) or create the partial file; a corrupt or foreign one is started afresh."""
    if partial.exists():
        try:
            f = h5py.File(partial, "a")
            if f.attrs.get("fingerprint") == fp:
                for rid in list(f.get("records", {})):
                    if not f["records"][rid].attrs.get("complete", 0):
                        del f["records"][rid]  # half-written group from the interrupted run
                return f
            f.close()
        except OSError as err:  # killed mid-write: unreadable HDF5
            log.warning("discarding unreadable partial cache %s (%s)", partial, err)
        partial.unlink()
    f = h5py.File(partial, "w")
    f.attrs["fingerprint"] = fp
    f.attrs["task"] = task
    f.attrs["format"] = CACHE_FORMAT_VERSION
    f.attrs["preprocess"] = json.dumps(preprocess, sort_keys=True, default=str)
    f.attrs["complete"] = 0
    f.create_group("records")
    return f


def _write_record(f: h5py.File, source: SourceRecord, rec: ProcessedRecord) -> None:
    grp = f["records"].create_group(source.record_id)
    for name, arr in rec.arrays.items():
        arr = np.asarray(arr)
        chunks = None
        if arr.ndim >= 1 and arr.shape[-1] > 4096:  # chunk long time axes for window reads
            chunks = tuple(arr.shape[:-1]) + (min(arr.shape[-1], 1 << 15),)
        grp.create_dataset(name, data=arr, chunks=chunks)
    grp.attrs["subject_id"] = source.subject_id
    for key, value in rec.attrs.items():
        grp.attrs[key] = _attr_value(value)
    f.flush()
    grp.attrs["complete"] = 1  # written last: marks the group as whole
    f.flush()


def _drop_record(f: h5py.File, record_id: str) -> None:
    """Remove a record group a failed write left behind."""
    if record_id in f["records"]:
        del f["records"][record_id]


def build_cache(
    task: str,
    sources: Sequence[SourceRecord],
    preprocess_fn: PreprocessFn,
    preprocess_cfg: Mapping[str, Any],
    cache_dir: Path,
    reader_version: str,
    workers: int = 1,
    progress: bool = True,
) -> Path:
    """Return the path of a complete cache for ``sources``, building (or resuming) it if needed.

    Args:
        task: task name (file prefix).
        sources: recordings to preprocess; those with ``missing`` set are listed as skipped.
        preprocess_fn: top-level (picklable) ``(SourceRecord, cfg) -> ProcessedRecord``;
            whatever it raises for a recording lists that recording as skipped.
        preprocess_cfg: the task's preprocessing config; enters the fingerprint.
        cache_dir: folder for cache files.
        reader_version: version of the task's reader + preprocessing code; enters the fingerprint.
        workers: processes preprocessing in parallel (1 = in this process).
        progress: show a progress bar.

    Returns:
        Path of the finished ``.h5`` file (its skipped table: ``CacheStore(path).skipped_records``).

    Raises:
        NoUsableRecordingError: not one recording could be cached (the ``.partial`` stays).
        ValueError: two sources share a record id.
    """
    ids = [s.record_id for s in sources]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate record ids in the sources of {task}")
    fp = fingerprint(
        task, reader_version, dict(preprocess_cfg), {s.record_id: s.paths for s in sources}
    )
    final = cache_path(cache_dir, task, fp)
    if final.exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(final.name + ".partial")
    skipped: dict[str, SkippedRecord] = {
        s.record_id: SkippedRecord(s.record_id, tuple(map(str, s.paths)), MISSING_FILE, s.missing)
        for s in sources
        if s.missing
    }
    buildable = [s for s in sources if not s.missing]
    # started before the partial file is opened, so that forked workers never hold its handle
    pool = worker_pool(workers) if workers > 1 and len(buildable) > 1 else None
    failed = True
    try:
        f = _open_partial(partial, fp, task, preprocess_cfg)
        try:
            _build_records(
                f,
                task,
                buildable,
                len(sources),
                preprocess_fn,
                preprocess_cfg,
                pool,
                2 * workers,
                skipped,
                progress,
            )
            rows = sorted(skipped.values(), key=lambda r: r.record_id)
            write_skipped_table(f, rows)
            f.flush()
            n_built = len(f["records"])
            if not n_built:
                raise NoUsableRecordingError(cache_dir, task, rows)
            f.attrs["complete"] = 1
            f.flush()
        finally:
            f.close()
        failed = False
    finally:
        if pool is not None:
            # after a failure, in-flight records are not waited for (the workers finish them
            # and exit, or die with this process)
            pool.shutdown(wait=not failed, cancel_futures=True)
    os.replace(partial, final)
    if rows:
        log.warning(
            "%s cache %s: %d of %d recordings skipped:\n%s",
            task,
            final.name,
            len(rows),
            len(sources),
            format_skipped(rows),
        )
    else:
        log.info("%s cache %s: all %d recordings built", task, final.name, n_built)
    return final


def _build_records(
    f: h5py.File,
    task: str,
    todo_sources: Sequence[SourceRecord],
    n_sources: int,
    preprocess_fn: PreprocessFn,
    preprocess_cfg: Mapping[str, Any],
    pool: ProcessPoolExecutor | None,
    in_flight: int,
    skipped: dict[str, SkippedRecord],
    progress: bool,
) -> None:
    """Preprocess and write every source not yet in ``f``; failures go into ``skipped``.

    Records run in ``pool`` (at most ``in_flight`` at a time) or, without one, here.
    """
    done = set(f["records"])
    todo = [s for s in todo_sources if s.record_id not in done]
    if done:
        log.info("%s cache: resuming, %d of %d records already built", task, len(done), n_sources)
    bar = tqdm(
        total=n_sources,
        initial=n_sources - len(todo),
        desc=f"cache {task}",
        disable=not progress,
    )

    def skip(row: SkippedRecord, trace: str = "") -> None:
        skipped[row.record_id] = row
        log.warning("skipped %s (%s): %s", row.record_id, ", ".join(row.files), row.reason)
        if trace:
            log.debug("%s: %s", row.record_id, trace)

    def handle(source: SourceRecord, out: ProcessedRecord | _Failed) -> None:
        if isinstance(out, _Failed):
            skip(out.row, out.trace)
        else:
            try:
                _write_record(f, source, out)
            except OSError:  # the disk or the cache file, not this recording: stop
                raise
            except Exception as err:  # arrays/attrs HDF5 cannot store: this recording's fault
                _drop_record(f, source.record_id)
                skip(skipped_from_exception(source.record_id, source.paths, err))
        bar.update(1)

    try:
        if pool is None or len(todo) <= 1:
            for s in todo:
                handle(s, _run_one(preprocess_fn, s, preprocess_cfg))
            return
        pending: dict[Future, SourceRecord] = {}
        queue = list(todo)
        # bounded in-flight work keeps memory flat on 2,000-night builds
        while queue or pending:
            while queue and len(pending) < in_flight:
                s = queue.pop(0)
                pending[pool.submit(_run_one, preprocess_fn, s, preprocess_cfg)] = s
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                source = pending.pop(fut)
                try:
                    out = fut.result()
                except BrokenProcessPool as err:  # a worker died (killed, crashed): stop here
                    ids = sorted({source.record_id, *(s.record_id for s in pending.values())})
                    raise BrokenProcessPool(
                        f"a {task} preprocessing worker died with one of {ids} in flight; "
                        "the partial cache is kept: re-run to resume"
                    ) from err
                except Exception as err:  # e.g. the result could not be pickled back
                    out = _Failed(skipped_from_exception(source.record_id, source.paths, err), "")
                handle(source, out)
    finally:
        bar.close()
