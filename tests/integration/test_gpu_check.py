"""benchmarks/gpu_check.py on the CPU: each registered task end to end (fit, test, loader and
preloaded-batch timing) with the CUDA determinism guard on, so that an op that would raise on a
GPU under ``trainer.deterministic=true`` fails here too."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import pytest

from sleepbench.registry import task_names

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gpu_check(load_benchmark) -> ModuleType:
    """``benchmarks/gpu_check.py`` imported as a module."""
    return load_benchmark("gpu_check")


@pytest.mark.parametrize("task", task_names())
def test_gpu_check_runs_on_cpu_under_the_cuda_determinism_guard(
    gpu_check: ModuleType, task: str, tmp_path: Path
) -> None:
    out = tmp_path / "gpu_check.json"
    status = gpu_check.main(
        [
            "--accelerator=cpu",
            "--precision=32",
            "--size=synthetic",
            f"--tasks={task}",
            "--train-batches=3",
            "--val-batches=1",
            "--loader-batches=4",
            "--preload-batches=2",
            "--device-steps=2",
            "--build-workers=1",
            f"--workdir={tmp_path / 'runs'}",
            f"--out={out}",
            "--cuda-op-guard",
        ]
    )
    payload = json.loads(out.read_text())
    (record,) = payload["tasks"]
    assert payload["complete"] is True
    assert status == 0, record.get("error")
    assert record["task"] == task and record["deterministic"] is True
    assert record["precision"] == "32" and record["peak_gpu_mem_mb"] is None
    assert record["timed_train_steps"] == 2  # 3 batches, the first one is warm-up
    for key in (
        "train_samples_per_s",
        "inference_ms_per_hour",
        "loader_batches_per_s",
        "device_steps_per_s",
    ):
        assert math.isfinite(record[key]) and record[key] > 0, key
    assert record["gpu_waits_for_data"] == (
        record["loader_batches_per_s"] < record["device_steps_per_s"]
    )
    assert payload["environment"]["torch"] and "lightning" in payload["environment"]


def test_merge_keeps_other_tasks_and_replaces_the_rerun_one(
    gpu_check: ModuleType, tmp_path: Path
) -> None:
    out = tmp_path / "gpu_check.json"
    earlier = [{"task": "apnea_ecg", "wall_s": 1.0}, {"task": "no_such_task", "wall_s": 2.0}]
    out.write_text(json.dumps({"tasks": earlier}))
    status = gpu_check.main(
        ["--accelerator=cpu", "--precision=32", "--tasks=no_such_task", f"--out={out}", "--merge"]
    )
    payload = json.loads(out.read_text())
    assert status == 1 and payload["complete"] is True
    by_task = {r["task"]: r for r in payload["tasks"]}
    assert by_task["apnea_ecg"] == earlier[0]  # kept as it was
    assert "error" in by_task["no_such_task"] and "wall_s" not in by_task["no_such_task"]

    gpu_check.main(["--accelerator=cpu", "--precision=32", "--tasks=no_such_task", f"--out={out}"])
    assert [r["task"] for r in json.loads(out.read_text())["tasks"]] == ["no_such_task"]


def test_repeat_reproduces_the_weights_and_metrics(gpu_check: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    status = gpu_check.main(
        [
            "--accelerator=cpu",
            "--precision=32",
            "--size=synthetic",
            "--tasks=sleep_edf",
            "--train-batches=3",
            "--val-batches=1",
            "--loader-batches=2",
            "--preload-batches=1",
            "--device-steps=1",
            "--build-workers=1",
            f"--workdir={tmp_path / 'runs'}",
            f"--out={out}",
            "--repeat",
        ]
    )
    (record,) = json.loads(out.read_text())["tasks"]
    assert status == 0, record.get("error")
    assert len(record["weights_sha256"]) == 64
    assert record["repeat_same_weights"] is True and record["repeat_same_metrics"] is True


def test_same_metrics_treats_nan_as_equal_and_differences_as_different(
    gpu_check: ModuleType,
) -> None:
    nan = float("nan")
    assert gpu_check.same_metrics({"a": 1.0, "b": nan}, {"a": 1.0, "b": nan})
    assert not gpu_check.same_metrics({"a": 1.0}, {"a": 1.0 + 1e-12})
    assert not gpu_check.same_metrics({"a": 1.0}, {"a": 1.0, "b": 2.0})
