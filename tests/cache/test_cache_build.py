"""Cache build: atomic and resumable after a kill, parallel == serial, bad records listed.

A toy top-level preprocess function turns tiny source files into deterministic arrays, so a build
interrupted by SIGKILL (in a forked process) and resumed can be compared, dataset by dataset and
attribute by attribute, with an uninterrupted build in another folder.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from sleepbench.cache.build import ProcessedRecord, SourceRecord, build_cache, cache_path
from sleepbench.cache.fingerprint import fingerprint
from sleepbench.cache.store import CacheStore
from sleepbench.errors import RecordingError

# record id at which the toy preprocess function SIGKILLs its own process
KILL_ENV = "SLEEPBENCH_TEST_KILL_AT"
# file to which the toy preprocess function appends the id of every record it processes
LOG_ENV = "SLEEPBENCH_TEST_CALL_LOG"

CFG = {"gain": 2.0, "labels": 5, "samples_per_label": 50}
READER = "toy-1"


def toy_preprocess(source: SourceRecord, cfg: Mapping[str, Any]) -> ProcessedRecord:
    """Deterministic arrays from the bytes of ``source.paths[0]``; bad or killing on request."""
    if os.environ.get(KILL_ENV) == source.record_id:
        os.kill(os.getpid(), signal.SIGKILL)
    log = os.environ.get(LOG_ENV)
    if log:
        with open(log, "a") as fh:
            fh.write(source.record_id + "\n")
    if source.meta.get("bad"):
        raise RecordingError(source.paths[0], "truncated signal file")
    digest = hashlib.sha256(source.paths[0].read_bytes()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    n = int(cfg["labels"])
    x = (rng.standard_normal((2, n * int(cfg["samples_per_label"]))) * cfg["gain"]).astype(
        np.float32
    )
    y = rng.integers(0, 3, n).astype(np.int64)
    return ProcessedRecord(
        arrays={"x": x, "y": y},
        attrs={"fs_hz": 50.0, "n_labels": n, "channels": ["ECG", "Resp"], "night": 1},
    )


def make_sources(root: Path, n: int = 6, bad: tuple[int, ...] = ()) -> list[SourceRecord]:
    """``n`` one-file records under ``root/src`` (two records per subject)."""
    src = root / "src"
    src.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        path = src / f"rec{i:02d}.dat"
        if not path.exists():
            path.write_bytes(bytes([i]) * (64 + i))
        out.append(
            SourceRecord(
                record_id=f"r{i:02d}",
                subject_id=f"s{i // 2}",
                paths=(path,),
                meta={"bad": i in bad},
            )
        )
    return out


def build(sources: list[SourceRecord], cache_dir: Path, workers: int = 1, **cfg: Any) -> Path:
    """Build the toy cache with ``CFG`` (updated by ``cfg``)."""
    return build_cache(
        "toy",
        sources,
        toy_preprocess,
        {**CFG, **cfg},
        cache_dir,
        READER,
        workers=workers,
        progress=False,
    )


def expected_path(sources: list[SourceRecord], cache_dir: Path) -> Path:
    """Where :func:`build` puts the finished cache for ``sources``."""
    fp = fingerprint("toy", READER, CFG, {s.record_id: s.paths for s in sources})
    return cache_path(cache_dir, "toy", fp)


def _decode(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else value


def dump(path: Path) -> dict[str, Any]:
    """Every object of an HDF5 file: name -> (attrs, dtype, data) (root under ``"/"``)."""
    out: dict[str, Any] = {}
    with h5py.File(path, "r") as f:
        out["/"] = ({k: _decode(v) for k, v in f.attrs.items()}, None, None)

        def visit(name: str, obj: Any) -> None:
            attrs = {k: _decode(v) for k, v in obj.attrs.items()}
            if isinstance(obj, h5py.Dataset):
                out[name] = (attrs, obj.dtype.str, obj[()])
            else:
                out[name] = (attrs, None, None)

        f.visititems(visit)
    return out


def assert_same_content(a: Path, b: Path) -> None:
    """Same objects, same attributes, same dtypes and values in both files."""
    da, db = dump(a), dump(b)
    assert sorted(da) == sorted(db)
    for name in da:
        attrs_a, dtype_a, data_a = da[name]
        attrs_b, dtype_b, data_b = db[name]
        assert attrs_a == attrs_b, name
        assert dtype_a == dtype_b, name
        if data_a is not None:
            assert np.array_equal(data_a, data_b), name


def calls(log: Path) -> list[str]:
    """Record ids the toy preprocess function was called for (in call order)."""
    return log.read_text().split() if log.exists() else []


def run_killed_build(sources: list[SourceRecord], cache_dir: Path, kill_at: str) -> int:
    """Run :func:`build` in a forked process that SIGKILLs itself at ``kill_at``; its exit code."""
    os.environ[KILL_ENV] = kill_at
    try:
        proc = mp.get_context("fork").Process(target=build, args=(sources, cache_dir))
        proc.start()
        proc.join(60)
    finally:
        del os.environ[KILL_ENV]
    assert not proc.is_alive()
    return proc.exitcode


@pytest.fixture
def call_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "calls.txt"
    monkeypatch.setenv(LOG_ENV, str(log))
    return log


@pytest.fixture
def reference(tmp_path: Path) -> tuple[list[SourceRecord], Path]:
    """Sources and an uninterrupted, serial build of them."""
    sources = make_sources(tmp_path)
    return sources, build(sources, tmp_path / "reference")


def test_build_writes_records_attrs_and_empty_skipped_table(reference) -> None:
    sources, path = reference
    assert path == expected_path(sources, path.parent)
    assert not path.with_name(path.name + ".partial").exists()
    store = CacheStore(path)
    assert [r.record_id for r in store.records] == [s.record_id for s in sources]
    assert [r.subject_id for r in store.records] == [s.subject_id for s in sources]
    assert store.skipped == []
    assert store.preprocess == CFG
    first = store.records[0]
    assert first.shapes == {"x": (2, 250), "y": (5,)}
    assert first.attrs == {"fs_hz": 50.0, "n_labels": 5, "channels": ["ECG", "Resp"], "night": 1}
    want = toy_preprocess(sources[3], CFG)
    np.testing.assert_array_equal(store.read(3, "x"), want.arrays["x"])
    np.testing.assert_array_equal(store.read(3, "y"), want.arrays["y"])
    np.testing.assert_array_equal(
        store.read(3, "x", (..., slice(10, 20))), want.arrays["x"][:, 10:20]
    )
    store.close()


def test_finished_cache_is_reused_without_preprocessing(reference, call_log: Path) -> None:
    sources, path = reference
    mtime = path.stat().st_mtime_ns
    assert build(sources, path.parent) == path
    assert calls(call_log) == []
    assert path.stat().st_mtime_ns == mtime


def test_changed_config_builds_a_new_file(reference) -> None:
    sources, path = reference
    other = build(sources, path.parent, gain=3.0)
    assert other != path and other.exists() and path.exists()
    np.testing.assert_allclose(
        CacheStore(other).read(0, "x"), CacheStore(path).read(0, "x") * 1.5, rtol=1e-6
    )


def test_killed_build_leaves_only_a_partial_and_resumes_to_identical_content(
    tmp_path: Path, reference, call_log: Path
) -> None:
    sources, ref_path = reference
    call_log.unlink(missing_ok=True)  # forget the reference build's calls
    cache_dir = tmp_path / "interrupted"
    final = expected_path(sources, cache_dir)
    partial = final.with_name(final.name + ".partial")

    assert run_killed_build(sources, cache_dir, kill_at=sources[2].record_id) == -signal.SIGKILL

    # a half build is never visible under the final name, and never readable as complete
    assert not final.exists()
    assert partial.exists()
    with pytest.raises(RecordingError, match="incomplete"):
        CacheStore(partial)
    with h5py.File(partial, "r") as f:
        assert sorted(f["records"]) == ["r00", "r01"]
        assert all(f["records"][r].attrs["complete"] == 1 for r in f["records"])
        assert "skipped" not in f
    assert calls(call_log) == ["r00", "r01"]

    # the re-run resumes: only the records that were not finished are preprocessed
    assert build(sources, cache_dir) == final
    assert calls(call_log) == ["r00", "r01", "r02", "r03", "r04", "r05"]
    assert not partial.exists()
    assert_same_content(final, ref_path)
    assert CacheStore(final).skipped == []


def test_resumed_build_lists_bad_records_skipped_before_the_kill(tmp_path: Path) -> None:
    sources = make_sources(tmp_path, bad=(1,))
    ref_path = build(sources, tmp_path / "reference")
    cache_dir = tmp_path / "interrupted"
    assert run_killed_build(sources, cache_dir, kill_at=sources[3].record_id) == -signal.SIGKILL
    resumed = build(sources, cache_dir)
    assert_same_content(resumed, ref_path)
    assert [rid for rid, _ in CacheStore(resumed).skipped] == ["r01"]


def test_half_written_record_group_is_discarded_on_resume(tmp_path: Path, reference) -> None:
    sources, ref_path = reference
    cache_dir = tmp_path / "interrupted"
    final = expected_path(sources, cache_dir)
    partial = final.with_name(final.name + ".partial")
    assert run_killed_build(sources, cache_dir, kill_at=sources[4].record_id) == -signal.SIGKILL
    # simulate a kill between writing r03's data and flagging it complete: wrong data, no flag
    with h5py.File(partial, "a") as f:
        f["records"]["r03"].attrs["complete"] = 0
        f["records"]["r03"]["x"][...] = 0.0
    assert build(sources, cache_dir) == final
    assert_same_content(final, ref_path)


def test_corrupt_partial_is_discarded_and_rebuilt(tmp_path: Path, reference) -> None:
    sources, ref_path = reference
    cache_dir = tmp_path / "corrupt"
    final = expected_path(sources, cache_dir)
    partial = final.with_name(final.name + ".partial")
    cache_dir.mkdir()
    partial.write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(3000))
    with pytest.raises(OSError):
        CacheStore(partial)
    assert build(sources, cache_dir) == final
    assert not partial.exists()
    assert_same_content(final, ref_path)


def test_partial_of_another_fingerprint_is_started_afresh(tmp_path: Path, reference) -> None:
    sources, ref_path = reference
    cache_dir = tmp_path / "foreign"
    final = expected_path(sources, cache_dir)
    partial = final.with_name(final.name + ".partial")
    cache_dir.mkdir()
    with h5py.File(partial, "w") as f:
        f.attrs["fingerprint"] = "0" * 16
        grp = f.create_group("records").create_group("r00")
        grp.create_dataset("x", data=np.zeros((2, 250), np.float32))
        grp.create_dataset("y", data=np.zeros(5, np.int64))
        grp.attrs["subject_id"] = "s0"
        grp.attrs["complete"] = 1
    assert build(sources, cache_dir) == final
    assert_same_content(final, ref_path)


def test_two_workers_give_the_same_content_as_one(tmp_path: Path, reference) -> None:
    sources, ref_path = reference
    parallel = build(sources, tmp_path / "parallel", workers=2)
    assert parallel.name == ref_path.name
    assert_same_content(parallel, ref_path)


def test_bad_record_is_skipped_with_its_reason(tmp_path: Path) -> None:
    sources = make_sources(tmp_path, bad=(1, 4))
    store = CacheStore(build(sources, tmp_path / "cache"))
    assert [r.record_id for r in store.records] == ["r00", "r02", "r03", "r05"]
    assert [rid for rid, _ in store.skipped] == ["r01", "r04"]
    for (_, reason), name in zip(store.skipped, ["rec01.dat", "rec04.dat"]):
        assert name in reason
        assert "truncated signal file" in reason


def test_bad_records_are_skipped_with_two_workers(tmp_path: Path) -> None:
    sources = make_sources(tmp_path, bad=(0, 3))
    serial = build(sources, tmp_path / "serial")
    parallel = build(sources, tmp_path / "parallel", workers=2)
    assert_same_content(parallel, serial)
    assert [rid for rid, _ in CacheStore(parallel).skipped] == ["r00", "r03"]


def test_all_records_bad_raises(tmp_path: Path) -> None:
    sources = make_sources(tmp_path, n=3, bad=(0, 1, 2))
    with pytest.raises(RecordingError, match="no usable recording"):
        build(sources, tmp_path / "cache")
    assert not expected_path(sources, tmp_path / "cache").exists()


def test_all_records_bad_raises_again_on_retry(tmp_path: Path) -> None:
    sources = make_sources(tmp_path, n=3, bad=(0, 1, 2))
    for _ in range(2):
        with pytest.raises(RecordingError, match="no usable recording"):
            build(sources, tmp_path / "cache")


def test_retry_after_a_failed_build_recovers_once_records_are_fixed(tmp_path: Path) -> None:
    bad_sources = make_sources(tmp_path, n=3, bad=(0, 1, 2))
    with pytest.raises(RecordingError):
        build(bad_sources, tmp_path / "cache")
    # same files (same fingerprint), but the records can now be read
    good = [SourceRecord(s.record_id, s.subject_id, s.paths) for s in bad_sources]
    store = CacheStore(build(good, tmp_path / "cache"))
    assert len(store.records) == 3 and store.skipped == []


def test_duplicate_record_ids_are_rejected(tmp_path: Path) -> None:
    sources = make_sources(tmp_path, n=2)
    with pytest.raises(ValueError, match="duplicate"):
        build([sources[0], sources[1], sources[0]], tmp_path / "cache")


def test_store_rejects_a_file_not_flagged_complete(tmp_path: Path) -> None:
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.attrs["complete"] = 0
    with pytest.raises(RecordingError, match=r"x\.h5.*incomplete"):
        CacheStore(path)


def test_in_memory_store_reads_like_the_file_store(reference) -> None:
    _, path = reference
    disk, memory = CacheStore(path), CacheStore(path, in_memory=True)
    for i in range(len(disk.records)):
        for name in ("x", "y"):
            np.testing.assert_array_equal(memory.read(i, name), disk.read(i, name))
    np.testing.assert_array_equal(memory.read(2, "y", slice(1, 3)), disk.read(2, "y", slice(1, 3)))
    assert memory.index_of("r04") == 4
    disk.close()
