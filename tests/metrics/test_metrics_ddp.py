"""Two-process (gloo) runs: each rank updates part of the data; compute() equals one process."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sleepbench.metrics import (
    BinaryScreeningMetrics,
    EventIoU,
    ICBHIScore,
    IndexAgreement,
    make_multiclass_metrics,
)

WORLD_SIZE = 2


def make_data(seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    n = 301  # odd: the ranks get unequal shares
    frames = [np.repeat(rng.integers(0, 3, 60), rng.integers(5, 25, 60))[:500] for _ in range(10)]
    frames_ref = [
        np.repeat(rng.integers(0, 3, 60), rng.integers(5, 25, 60))[:500] for _ in range(10)
    ]
    return {
        "prob": torch.from_numpy(rng.random(n)),
        "target": torch.from_numpy(rng.integers(0, 2, n)),
        "prob4": torch.from_numpy(rng.normal(size=(n, 4))).softmax(-1).float(),
        "target4": torch.from_numpy(np.where(rng.random(n) < 0.1, -1, rng.integers(0, 4, n))),
        # records interleaved so that every recording is split across both ranks
        "record": torch.from_numpy(rng.integers(0, 7, n)),
        "frames_pred": torch.from_numpy(np.stack(frames)),
        "frames_ref": torch.from_numpy(np.stack(frames_ref)),
    }


def build_metrics() -> dict[str, object]:
    return {
        "binary": BinaryScreeningMetrics(prefix="b/"),
        "multi": make_multiclass_metrics(4, prefix="m/", ignore_index=-1),
        "icbhi": ICBHIScore(num_classes=4, ignore_index=-1),
        "index": IndexAgreement(units_per_hour=60, cutoffs=(5, 15)),
        "events": EventIoU(frame_s=0.5, median_kernel=3, merge_gap_s=1.0, min_duration_s=3.0),
    }


def run_metrics(data: dict[str, torch.Tensor], rank: int, world_size: int) -> dict[str, object]:
    """Update every metric with this rank's share (in two batches) and compute."""
    metrics = build_metrics()
    cut = [0, 140, 301] if world_size == 2 else [0, 301]
    sl = slice(cut[rank], cut[rank + 1])
    for part in np.array_split(np.arange(sl.start, sl.stop), 2):
        idx = torch.from_numpy(part)
        metrics["binary"].update(data["prob"][idx], data["target"][idx])
        metrics["multi"].update(data["prob4"][idx], data["target4"][idx])
        metrics["icbhi"].update(data["prob4"][idx], data["target4"][idx])
        metrics["index"].update(data["record"][idx], data["prob"][idx], data["target"][idx])
    n_seq = data["frames_pred"].shape[0]
    rows = range(n_seq) if world_size == 1 else range(rank, n_seq, world_size)
    for r in rows:
        metrics["events"].update(data["frames_pred"][r], data["frames_ref"][r])
    out = {name: m.compute() for name, m in metrics.items()}
    out["indices"] = metrics["index"].compute_indices()
    return out


def _worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)  # forked child: keep OpenMP out of the inherited state
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    try:
        torch.save(run_metrics(make_data(), rank, world_size), Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def assert_same(a: object, b: object, where: str = "") -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}/{k}")
    else:
        torch.testing.assert_close(a, b, equal_nan=True, check_dtype=True, msg=where)


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")
def test_two_process_sync_equals_single_process(tmp_path: Path) -> None:
    # fork: the children inherit the imported modules (spawn would re-import torch and
    # torchmetrics in each child, tens of seconds on a busy machine)
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    ctx = mp.start_processes(
        _worker,
        args=(WORLD_SIZE, str(tmp_path / "init"), str(tmp_path)),
        nprocs=WORLD_SIZE,
        join=False,
        start_method=method,
    )
    deadline = time.monotonic() + 120
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("distributed workers did not finish in 120 s")

    single = run_metrics(make_data(), 0, 1)
    for rank in range(WORLD_SIZE):
        assert_same(torch.load(tmp_path / f"rank{rank}.pt"), single, f"rank{rank}")
    # the test data must actually exercise the metrics
    assert single["index"]["n_records"] == 7
    assert single["events"]["event_f1"] > 0
