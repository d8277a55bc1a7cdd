"""The shared DataModule's build step: under the cache lock (re-exported for sleepbench.train),
bounded by ``data.lock_timeout_s``, with every skipped recording in the result provenance."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from omegaconf import DictConfig, OmegaConf

from sleepbench.cache import lock
from sleepbench.cache.build import ProcessedRecord, SourceRecord
from sleepbench.cache.lock import LockTimeout
from sleepbench.data import datamodule
from sleepbench.data.datamodule import CachedDataModule
from sleepbench.data.splits import Split
from sleepbench.data.windows import WindowIndex, regular_windows

pytestmark = pytest.mark.timeout(60)


def toy_preprocess(source: SourceRecord, cfg: Mapping[str, Any]) -> ProcessedRecord:
    """Four one-sample labels from the file's bytes; a ``KeyError`` for record ``bad``."""
    if source.record_id == "bad":
        raise KeyError("Resp")
    data = np.frombuffer(source.paths[0].read_bytes(), dtype=np.uint8).astype(np.float32)
    return ProcessedRecord({"x": data[None, :4], "y": np.arange(4, dtype=np.int64)})


class ToyDataModule(CachedDataModule):
    """Three good records, one whose preprocessing fails, one without its label file."""

    task_name = "toy"
    preprocess_fn = staticmethod(toy_preprocess)

    @classmethod
    def list_sources(cls, root: Path, cfg: DictConfig) -> list[SourceRecord]:
        out = []
        for rid in ("a", "b", "bad", "c"):
            path = root / f"{rid}.dat"
            path.write_bytes(bytes(range(8)))
            out.append(SourceRecord(rid, rid, (path,)))
        out.append(SourceRecord("d", "d", (root / "d.dat",), missing="d.lbl does not exist"))
        return out

    def make_split(self, subject_of: Mapping[str, str]) -> Split:
        return Split("toy", 0, 0, train=["a"], val=["b"], test=["c"])

    def window_index(self, record_ids: list[str], stage: str) -> WindowIndex:
        return WindowIndex.concat(regular_windows(self.store.index_of(r), 4, 1) for r in record_ids)


def config(tmp_path: Path, **data: Any) -> DictConfig:
    root = tmp_path / "data"
    root.mkdir(exist_ok=True)
    return OmegaConf.create(
        {
            "data": {"root": str(root), "cache_dir": str(tmp_path / "cache"), "build_workers": 1,
                     "num_workers": 0, "batch_size": 2, **data},
            "trainer": {"enable_progress_bar": False},
            "output": {"splits_dir": str(tmp_path / "splits")},
            "protocol": "toy", "fold": 0, "seed": 0,
        }
    )  # fmt: skip


def test_train_keeps_importing_file_lock_from_the_datamodule() -> None:
    assert datamodule.file_lock is lock.file_lock


def test_setup_builds_under_the_lock_and_reports_every_skipped_recording(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dm = ToyDataModule(config(tmp_path))
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
    assert [r.record_id for r in dm.store.records] == ["a", "b", "c"]
    skipped = {row["record"]: row for row in dm.provenance["skipped"]}
    assert skipped["bad"]["error_type"] == "KeyError"
    assert skipped["bad"]["files"] == [str(tmp_path / "data" / "bad.dat")]
    assert skipped["bad"]["reason"].startswith("KeyError: 'Resp'")
    assert skipped["d"] == {
        "record": "d",
        "reason": "MissingFile: d.lbl does not exist",
        "files": [str(tmp_path / "data" / "d.dat")],
        "error_type": "MissingFile",
    }
    assert len(dm.train_set) == 4
    # the lock was taken and released: its file exists, emptied
    assert (tmp_path / "cache" / ".toy.lock").read_text() == ""
    assert any("2 recordings were skipped" in r.getMessage() for r in caplog.records)


def test_a_held_cache_lock_times_out_naming_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "cache" / ".toy.lock"
    path.parent.mkdir(parents=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    record = {"pid": 1, "host": socket.gethostname(), "since": "2024-05-01T10:00:00+00:00"}
    os.write(fd, json.dumps(record).encode())  # PID 1 is alive: not a stale lock
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        dm = ToyDataModule(config(tmp_path, lock_timeout_s=0.5))
        with pytest.raises(LockTimeout, match="PID 1 on .* since 2024-05-01T10:00:00"):
            dm.prepare_data()
        assert dm.cache_file is None
    finally:
        os.close(fd)


def test_train_windows_per_epoch_draws_a_fresh_subset_each_epoch(tmp_path: Path) -> None:
    dm = ToyDataModule(config(tmp_path, train_windows_per_epoch=2))
    dm.setup("fit")
    assert len(dm.train_set) == 4
    loader = dm.train_dataloader()
    assert len(loader.sampler) == 2
    epochs = [sorted(int(i) for i in loader.sampler) for _ in range(12)]
    assert all(len(set(e)) == 2 and set(e) <= set(range(4)) for e in epochs)  # no repeats
    assert len({tuple(e) for e in epochs}) > 1  # a new draw per epoch, not a fixed subset
    assert sum(len(b["y"]) for b in loader) == 2
    # validation always sees every window
    assert sum(len(b["y"]) for b in dm.val_dataloader()) == len(dm.val_set)


def test_train_windows_per_epoch_off_or_at_least_the_set_keeps_every_window(
    tmp_path: Path,
) -> None:
    for n in (None, 4, 10):
        (tmp_path / str(n)).mkdir()
        dm = ToyDataModule(config(tmp_path / str(n), train_windows_per_epoch=n))
        dm.setup("fit")
        assert sum(len(b["y"]) for b in dm.train_dataloader()) == 4
