"""One bad recording never stops a build: any exception, or a missing partner file, becomes a row
of the ``skipped`` table (record, files, error type, message); only zero usable recordings fail."""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from sleepbench.cache.build import (
    NoUsableRecordingError,
    ProcessedRecord,
    SourceRecord,
    build_cache,
)
from sleepbench.cache.skipped import SKIPPED_COLUMNS, SkippedRecord
from sleepbench.cache.store import CacheStore
from sleepbench.errors import RecordingError

CALLS_ENV = "SLEEPBENCH_TEST_SKIPPED_CALLS"


def failing_preprocess(source: SourceRecord, cfg: Mapping[str, Any]) -> ProcessedRecord:
    """Arrays from the file's bytes, or the failure ``meta["fail"]`` names, as a reader would."""
    with open(cfg["calls"], "a") as fh:
        fh.write(source.record_id + "\n")
    data = source.paths[0].read_bytes()
    fail = source.meta.get("fail")
    if fail == "KeyError":
        header: dict[str, str] = {}
        header["EpochLength"]  # a header field the reader expected and did not find
    elif fail == "ValueError":
        raise ValueError("EpochLength=1e-12 is not a usable epoch length")
    elif fail == "UnicodeDecodeError":
        data.decode("utf-8")  # the file holds a non-UTF-8 byte
    elif fail == "RecordingError":
        raise RecordingError(source.paths[0], "truncated signal file")
    elif fail == "unstorable":  # an attr HDF5 cannot hold: fails when the build writes it
        return ProcessedRecord({"x": np.array([object(), 1], dtype=object)})
    return ProcessedRecord({"x": np.frombuffer(data, dtype=np.uint8).astype(np.float32)[None]})


def make_sources(root: Path, fails: Mapping[int, str], n: int = 6) -> list[SourceRecord]:
    """``n`` one-file records; record ``i`` fails as ``fails[i]`` says."""
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        path = root / f"rec{i}.dat"
        path.write_bytes(b"\xff\xfe" + bytes([i]) * 8 if fails.get(i) else bytes([65 + i]) * 8)
        out.append(SourceRecord(f"r{i}", f"s{i}", (path,), {"fail": fails.get(i)}))
    return out


def build(sources: list[SourceRecord], tmp_path: Path, workers: int = 1) -> Path:
    calls = tmp_path / "calls.txt"
    return build_cache(
        "toy", sources, failing_preprocess, {"calls": str(calls)}, tmp_path / "cache", "1",
        workers=workers, progress=False,
    )  # fmt: skip


def calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls.txt"
    return path.read_text().split() if path.exists() else []


@pytest.mark.parametrize("workers", [1, 2])
def test_any_exception_skips_only_its_recording(
    tmp_path: Path, workers: int, caplog: pytest.LogCaptureFixture
) -> None:
    fails = {1: "KeyError", 2: "ValueError", 3: "UnicodeDecodeError", 5: "RecordingError"}
    sources = make_sources(tmp_path / "src", fails)
    with caplog.at_level(logging.INFO, logger="sleepbench.cache.build"):
        path = build(sources, tmp_path, workers=workers)
    store = CacheStore(path)
    assert [r.record_id for r in store.records] == ["r0", "r4"]
    rows = {r.record_id: r for r in store.skipped_records}
    assert sorted(rows) == ["r1", "r2", "r3", "r5"]
    for i, kind in fails.items():
        row = rows[f"r{i}"]
        assert row.error_type == kind
        assert row.files[0] == str(tmp_path / "src" / f"rec{i}.dat")
    assert rows["r1"].message.startswith("'EpochLength' (at test_cache_skipped.py:")
    assert "in failing_preprocess" in rows["r1"].message
    assert "EpochLength=1e-12" in rows["r2"].message
    assert "can't decode byte 0xff" in rows["r3"].message
    assert rows["r5"].message.endswith("rec5.dat: truncated signal file")
    # the (record, reason) pairs read as before
    assert dict(store.skipped)["r2"].startswith("ValueError: EpochLength=1e-12")
    # one summary at the end names every skipped file and its reason
    summary = [r.getMessage() for r in caplog.records if "recordings skipped" in r.getMessage()]
    assert len(summary) == 1
    for i in fails:
        assert f"rec{i}.dat" in summary[0] and rows[f"r{i}"].reason in summary[0]
    assert "4 of 6 recordings skipped" in summary[0]


def test_table_columns_on_disk(tmp_path: Path) -> None:
    path = build(make_sources(tmp_path / "src", {0: "ValueError"}, n=2), tmp_path)
    with h5py.File(path, "r") as f:
        assert json.loads(f["skipped"].attrs["columns"]) == list(SKIPPED_COLUMNS)
        rid, files, kind, message = f["skipped"].asstr()[0]
    assert (rid, kind) == ("r0", "ValueError")
    assert json.loads(files) == [str(tmp_path / "src" / "rec0.dat")]
    assert "EpochLength=1e-12" in message


def test_record_the_cache_cannot_store_is_skipped_and_leaves_no_group(tmp_path: Path) -> None:
    store = CacheStore(build(make_sources(tmp_path / "src", {2: "unstorable"}, n=3), tmp_path))
    assert [r.record_id for r in store.records] == ["r0", "r1"]
    (row,) = store.skipped_records
    assert row.record_id == "r2" and row.error_type == "TypeError"


def test_missing_partner_is_skipped_without_preprocessing(tmp_path: Path) -> None:
    sources = make_sources(tmp_path / "src", {}, n=3)
    absent = tmp_path / "src" / "rec1.apn"
    sources[1] = SourceRecord(
        "r1", "s1", (sources[1].paths[0], absent), missing=f"record r1 lacks {absent}"
    )
    store = CacheStore(build(sources, tmp_path))
    assert calls(tmp_path) == ["r0", "r2"]
    assert [r.record_id for r in store.records] == ["r0", "r2"]
    assert store.skipped_records == [
        SkippedRecord(
            "r1",
            (str(tmp_path / "src" / "rec1.dat"), str(absent)),
            "MissingFile",
            f"record r1 lacks {absent}",
        )
    ]


@pytest.mark.parametrize("workers", [1, 2])
def test_zero_usable_recordings_fails_with_the_table(tmp_path: Path, workers: int) -> None:
    sources = make_sources(tmp_path / "src", {0: "KeyError", 1: "UnicodeDecodeError"}, n=2)
    sources.append(SourceRecord("r9", "s9", (), missing="r9.dat does not exist"))
    with pytest.raises(NoUsableRecordingError) as info:
        build(sources, tmp_path, workers=workers)
    err = info.value
    assert isinstance(err, RecordingError)
    assert [(r.record_id, r.error_type) for r in err.skipped] == [
        ("r0", "KeyError"),
        ("r1", "UnicodeDecodeError"),
        ("r9", "MissingFile"),
    ]
    text = str(err)
    assert "no usable recording for toy" in text
    assert "rec0.dat" in text and "rec1.dat" in text and "r9.dat does not exist" in text
    assert pickle.loads(pickle.dumps(err)).skipped == err.skipped  # crosses processes whole
    # never a final file; the partial stays for the next run
    assert not list((tmp_path / "cache").glob("*.h5"))
    assert list((tmp_path / "cache").glob("*.h5.partial"))


def test_format_1_two_column_table_still_reads(tmp_path: Path) -> None:
    path = build(make_sources(tmp_path / "src", {}, n=2), tmp_path)
    with h5py.File(path, "a") as f:
        del f["skipped"]
        old = [("r7", "RecordingError: /d/r7.dat: truncated"), ("r8", "odd reason")]
        f.create_dataset("skipped", data=np.array(old, dtype=h5py.string_dtype()))
    store = CacheStore(path)
    assert store.skipped == old
    assert store.skipped_records[0] == SkippedRecord(
        "r7", (), "RecordingError", "/d/r7.dat: truncated"
    )
    assert store.skipped_records[1].error_type == ""
