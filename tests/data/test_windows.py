"""WindowIndex, regular_windows and WindowDataset over a tiny real cache, in and out of workers."""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from sleepbench.cache.build import ProcessedRecord, SourceRecord, build_cache
from sleepbench.cache.store import CacheStore
from sleepbench.data.windows import WindowDataset, WindowIndex, regular_windows

SPL = 10  # samples of x per label
N_LABELS = (12, 7)  # labels of the two records


def ramp_preprocess(source: SourceRecord, cfg: Mapping[str, Any]) -> ProcessedRecord:
    """x[c, t] = 1000·record + 100·c + t/100 (position readable from the value), y and mask."""
    rec = int(source.meta["index"])
    n = int(source.meta["n_labels"])
    t = np.arange(n * SPL) / 100.0
    x = np.stack([1000 * rec + 100 * c + t for c in range(2)]).astype(np.float32)
    y = ((np.arange(n) + rec) % 3).astype(np.int64)
    mask = (np.arange(n) % 2 == 0).astype(np.uint8)
    return ProcessedRecord({"x": x, "y": y, "mask": mask}, {"n_labels": n})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> CacheStore:
    root = tmp_path_factory.mktemp("windows")
    sources = []
    for i, n in enumerate(N_LABELS):
        path = root / f"rec{i}.dat"
        path.write_bytes(b"\0" * (i + 1))
        sources.append(SourceRecord(f"r{i}", f"s{i}", (path,), {"index": i, "n_labels": n}))
    return CacheStore(build_cache("win", sources, ramp_preprocess, {}, root, "1", progress=False))


def full_index() -> WindowIndex:
    """3-label windows with stride 2 over both records."""
    return WindowIndex.concat(
        regular_windows(rec, n, SPL, labels_per_window=3, stride_labels=2)
        for rec, n in enumerate(N_LABELS)
    )


def test_regular_windows_fit_inside_the_record() -> None:
    w = regular_windows(
        1, n_labels=10, samples_per_label=6000, labels_per_window=3, stride_labels=2
    )
    np.testing.assert_array_equal(w.y_start, [0, 2, 4, 6])
    np.testing.assert_array_equal(w.y_stop, [3, 5, 7, 9])
    np.testing.assert_array_equal(w.x_start, w.y_start * 6000)
    np.testing.assert_array_equal(w.x_stop, w.y_stop * 6000)
    np.testing.assert_array_equal(w.record, [1] * 4)
    assert all(a.dtype == np.int64 for a in (w.record, w.x_start, w.x_stop, w.y_start, w.y_stop))
    one = regular_windows(0, n_labels=5, samples_per_label=100)
    assert len(one) == 5 and np.all(one.y_stop - one.y_start == 1)
    assert len(regular_windows(0, n_labels=2, samples_per_label=1, labels_per_window=3)) == 0


def test_index_subset_concat_and_length_check() -> None:
    a = regular_windows(0, 4, 10)
    b = regular_windows(1, 3, 10)
    both = WindowIndex.concat([a, b])
    assert len(both) == 7
    np.testing.assert_array_equal(both.record, [0, 0, 0, 0, 1, 1, 1])
    sub = both.subset(both.record == 1)
    np.testing.assert_array_equal(sub.y_start, [0, 1, 2])
    picked = both.subset(np.array([6, 0]))
    np.testing.assert_array_equal(picked.record, [1, 0])
    np.testing.assert_array_equal(picked.x_start, [20, 0])
    assert len(WindowIndex.concat([])) == 0
    with pytest.raises(ValueError, match="length"):
        WindowIndex([0, 0], [0, 1], [1, 2], [0], [1])


def test_items_slice_x_and_y_of_the_right_record(store: CacheStore) -> None:
    index = full_index()
    ds = WindowDataset(store, index, extra=("mask",))
    assert len(ds) == 5 + 3  # (12 - 3) // 2 + 1 and (7 - 3) // 2 + 1
    for i in range(len(ds)):
        item = ds[i]
        rec, y0 = int(index.record[i]), int(index.y_start[i])
        assert item["x"].dtype == torch.float32 and item["x"].shape == (2, 3 * SPL)
        t = np.arange(y0 * SPL, (y0 + 3) * SPL) / 100.0
        want_x = np.stack([1000 * rec + 100 * c + t for c in range(2)]).astype(np.float32)
        np.testing.assert_array_equal(item["x"].numpy(), want_x)
        np.testing.assert_array_equal(item["y"].numpy(), (np.arange(y0, y0 + 3) + rec) % 3)
        np.testing.assert_array_equal(item["mask"].numpy(), np.arange(y0, y0 + 3) % 2 == 0)
        assert item["record"].item() == rec and item["window"].item() == i


def test_single_label_windows_give_scalar_y(store: CacheStore) -> None:
    ds = WindowDataset(store, regular_windows(1, N_LABELS[1], SPL))
    item = ds[4]
    assert item["y"].shape == () and item["y"].item() == (4 + 1) % 3
    np.testing.assert_array_equal(ds.labels(), (np.arange(N_LABELS[1]) + 1) % 3)


def test_labels_gives_first_label_of_each_window(store: CacheStore) -> None:
    index = full_index()
    labels = WindowDataset(store, index).labels()
    np.testing.assert_array_equal(labels, (index.y_start + index.record) % 3)


def _flip_and_shift(x: np.ndarray, y: np.ndarray, rng: np.random.Generator):
    return -x + rng.uniform(0, 1), 2 - y


def test_transform_is_applied_and_reproducible_under_a_torch_seed(store: CacheStore) -> None:
    ds = WindowDataset(store, full_index(), transform=_flip_and_shift)
    plain = WindowDataset(store, full_index())
    torch.manual_seed(3)
    first = [ds[i] for i in range(len(ds))]
    torch.manual_seed(3)
    again = [ds[i] for i in range(len(ds))]
    for a, b, p in zip(first, again, plain):
        torch.testing.assert_close(a["x"], b["x"])
        shift = (a["x"] + p["x"]).numpy()
        assert np.ptp(shift) < 1e-3 and 0 <= shift.flat[0] <= 1  # -x + one uniform draw
        torch.testing.assert_close(a["y"], 2 - p["y"])
    # different items draw different offsets
    offsets = {round(float((a["x"] + p["x"]).mean()), 4) for a, p in zip(first, plain)}
    assert len(offsets) == len(first)


def _collect(loader: DataLoader) -> dict[int, dict[str, np.ndarray]]:
    out = {}
    for batch in loader:
        for j, w in enumerate(batch["window"].tolist()):
            out[w] = {k: v[j].numpy() for k, v in batch.items()}
    return out


def test_store_with_open_handle_pickles_and_reads_the_same(store: CacheStore) -> None:
    first = store.read(1, "x", (..., slice(5, 25)))  # opens the handle in this process
    assert store._handle is not None
    clone = pickle.loads(pickle.dumps(store))
    assert clone._handle is None  # re-opened lazily where it is used
    np.testing.assert_array_equal(clone.read(1, "x", (..., slice(5, 25))), first)
    assert clone.records == store.records and clone.skipped == store.skipped
    clone.close()


class _PidWindowDataset(WindowDataset):
    """WindowDataset whose items also say which process read them and whose handle it used."""

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = super().__getitem__(i)
        item["pid"] = torch.tensor(os.getpid())
        item["handle_pid"] = torch.tensor(self.store._pid)
        return item


def test_dataloader_workers_return_the_same_items(store: CacheStore) -> None:
    store.read(0, "y")  # the parent holds an open handle when the workers fork
    parent_handle = store._handle
    ds = _PidWindowDataset(store, full_index(), extra=("mask",))
    serial = _collect(DataLoader(ds, batch_size=3, num_workers=0))
    parallel = _collect(DataLoader(ds, batch_size=3, num_workers=2, multiprocessing_context="fork"))
    assert sorted(parallel) == sorted(serial) == list(range(len(ds)))
    for w in serial:
        for key in ("x", "y", "mask", "record"):
            np.testing.assert_array_equal(parallel[w][key], serial[w][key])
    # each worker re-opened the file in its own process instead of using the inherited handle
    worker_pids = {int(parallel[w]["pid"]) for w in parallel}
    assert len(worker_pids) == 2 and os.getpid() not in worker_pids
    assert all(int(parallel[w]["handle_pid"]) == int(parallel[w]["pid"]) for w in parallel)
    # the parent's handle is untouched and still reads
    assert store._handle is parent_handle and store._pid == os.getpid()
    np.testing.assert_array_equal(store.read(0, "y"), np.arange(N_LABELS[0]) % 3)
