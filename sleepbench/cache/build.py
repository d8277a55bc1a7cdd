"""Build a task's HDF5 cache: parallel, resumable, atomic, with a table of skipped recordings.

Layout of ``<cache_dir>/<task>-<fingerprint>.h5``::

    /                      attrs: fingerprint, task, format, complete=1, preprocess (JSON)
    /records/<record_id>/  datasets written by the task's preprocess function (e.g. x, y)
                           attrs: subject_id, complete=1, plus the task's own attrs
    /skipped               table of (record_id, reason) for recordings that could not be used

The build writes ``<name>.h5.partial``; each record group gets ``complete=1`` after its data are
flushed, so an interrupted build resumes from the finished groups (incomplete groups are
discarded). Only the finished file is renamed into place (``os.replace``, atomic on POSIX), so a
half-built cache is never readable under the final name.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from tqdm.auto import tqdm

from sleepbench.cache.fingerprint import CACHE_FORMAT_VERSION, fingerprint
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
    """

    record_id: str
    subject_id: str
    paths: tuple[Path, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)


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


def _run_one(
    fn: PreprocessFn, source: SourceRecord, cfg: Mapping[str, Any]
) -> ProcessedRecord | str:
    """Preprocess one record; a RecordingError becomes its reason string (picklable)."""
    try:
        return fn(source, cfg)
    except RecordingError as err:
        return f"RecordingError: {err}"


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
        sources: recordings to preprocess.
        preprocess_fn: top-level (picklable) ``(SourceRecord, cfg) -> ProcessedRecord``; raises
            :class:`RecordingError` for bad input, which lists the record as skipped.
        preprocess_cfg: the task's preprocessing config; enters the fingerprint.
        cache_dir: folder for cache files.
        reader_version: version of the task's reader + preprocessing code; enters the fingerprint.
        workers: processes preprocessing in parallel (1 = in this process).
        progress: show a progress bar.

    Returns:
        Path of the finished ``.h5`` file.
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
    f = _open_partial(partial, fp, task, preprocess_cfg)
    try:
        done = set(f["records"])
        skipped: dict[str, str] = {}
        todo = [s for s in sources if s.record_id not in done]
        if done:
            log.info(
                "%s cache: resuming, %d of %d records already built", task, len(done), len(sources)
            )
        bar = tqdm(
            total=len(sources), initial=len(done), desc=f"cache {task}", disable=not progress
        )

        def handle(source: SourceRecord, out: ProcessedRecord | str) -> None:
            if isinstance(out, str):
                skipped[source.record_id] = out
                log.warning("skipped %s: %s", source.record_id, out)
            else:
                _write_record(f, source, out)
            bar.update(1)

        if workers <= 1 or len(todo) <= 1:
            for s in todo:
                handle(s, _run_one(preprocess_fn, s, preprocess_cfg))
        else:
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                pending: dict[Future, SourceRecord] = {}
                queue = list(todo)
                # bounded in-flight work keeps memory flat on 2,000-night builds
                while queue or pending:
                    while queue and len(pending) < 2 * workers:
                        s = queue.pop(0)
                        pending[pool.submit(_run_one, preprocess_fn, s, preprocess_cfg)] = s
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        handle(pending.pop(fut), fut.result())
        bar.close()
        rows = sorted(skipped.items())
        if "skipped" in f:  # left by an earlier run that failed or died after this point
            del f["skipped"]
        f.create_dataset(
            "skipped",
            data=np.array(rows, dtype=h5py.string_dtype()).reshape(len(rows), 2),
        )
        if not len(f["records"]):
            raise RecordingError(cache_dir, f"no usable recording for {task}: {rows[:5]}")
        f.attrs["complete"] = 1
        f.flush()
    finally:
        f.close()
    os.replace(partial, final)
    return final
