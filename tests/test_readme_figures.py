"""The README quotes only figures that the benchmark scripts' JSON output holds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def figures(load_benchmark):
    """``benchmarks/readme_figures.py`` imported as a module."""
    return load_benchmark("readme_figures")


def test_readme_block_is_what_the_json_renders(figures) -> None:
    readme = (REPO / "README.md").read_text()
    assert figures.readme_block(readme) == figures.render(), (
        "README figures differ from benchmarks/out/*.json: re-run the benchmark scripts and "
        "`python benchmarks/readme_figures.py --write`"
    )


def test_a_changed_json_figure_changes_the_block(figures, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(REPO / "benchmarks" / "out", out)
    payload = json.loads((out / "apnea_ecg.json").read_text())
    payload["figures"]["cache_windows_per_s"] *= 2
    (out / "apnea_ecg.json").write_text(json.dumps(payload))
    assert figures.render(out) != figures.render()


def test_a_missing_benchmark_is_an_error_not_a_stale_figure(figures, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(REPO / "benchmarks" / "out", out)
    (out / "sleep_edf.json").unlink()
    with pytest.raises(FileNotFoundError, match="bench_sleep_edf.py"):
        figures.render(out)


def test_without_a_gpu_run_the_readme_says_so(figures, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(REPO / "benchmarks" / "out", out)
    (out / "gpu_check.json").unlink(missing_ok=True)
    assert "No GPU figure exists yet" in figures.render(out)


def test_a_gpu_run_is_quoted_with_the_gpu_name(figures, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(REPO / "benchmarks" / "out", out)
    record = {
        "task": "apnea_ecg",
        "model": "ESI-ConvNeXtV2-BiLSTM",
        "n_params": 90_570_551,
        "precision": "bf16-mixed",
        "batch_size": 32,
        "num_workers": 4,
        "train_samples_per_s": 512.25,
        "inference_ms_per_hour": 3.5,
        "peak_gpu_mem_mb": 2048.0,
        "loader_batches_per_s": 40.0,
        "device_steps_per_s": 55.0,
    }
    env = {"gpu": "NVIDIA H200", "cpu_count": 16, "torch": "2.11.0+cu130", "cuda": "13.0"}
    payload = {"environment": env, "total_s": 300.0, "tasks": [record]}
    (out / "gpu_check.json").write_text(json.dumps(payload))
    block = figures.render(out)
    assert "GPU check on one NVIDIA H200" in block and "16 CPU cores" in block
    assert (
        "| apnea_ecg | ESI-ConvNeXtV2-BiLSTM (90.57 M) | bf16-mixed | 32, 4 | 512.2 | 3.5 |"
        in block
    )
    assert "2,048 MB" in block and "40.0 vs 55.0" in block and "No GPU figure" not in block


def test_the_gpu_repeat_check_names_reproduced_and_differing_tasks(figures, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(REPO / "benchmarks" / "out", out)
    tasks = [
        {"task": "icbhi_lung", "repeat_same_weights": True, "repeat_same_metrics": True},
        {"task": "shhs_spo2", "repeat_same_weights": False, "repeat_same_metrics": True},
        {"task": "esc50", "error": "RuntimeError: boom"},
    ]
    payload = {"environment": {"gpu": "NVIDIA H200"}, "tasks": tasks}
    (out / "gpu_repeat.json").write_text(json.dumps(payload))
    block = figures.render(out)
    assert "identical weights and test metrics for icbhi_lung; different for shhs_spo2;" in block
    assert "esc50" not in block.split("Repeat check")[1]


def test_the_end_to_end_block_quotes_the_whole_bench_and_its_lanes(figures, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(REPO / "benchmarks" / "out", out)
    row = {"model": "M", "protocol": "p", "synthetic": True, "metrics": {"acc": 0.75}}
    tasks = {"a": {"wall_s": 61.0, "measured": "2026-12-04", "rows": [row]}}
    bench = {"wall_s": 1234.4, "measured": "2026-12-04", "tasks": ["a", "b"], "jobs": 2,
             "threads_per_task": 1}  # fmt: skip
    machine = {"cpu": "x86_64", "cpu_count": 2, "torch": "2.11.0"}
    payload = {
        "benchmark": "end_to_end",
        "machine": machine,
        "figures": {"bench": bench, "tasks": tasks},
    }
    (out / "end_to_end.json").write_text(json.dumps(payload))
    text = figures.render(out)
    assert "| a | 1 min 01 s | M | acc 0.750 |" in text
    assert "All 2 tasks in one `sleepbench bench` (2 tasks at a time, 1 CPU thread(s) each" in text
    assert "20 min 34 s (2026-12-04)" in text
    tasks["a"]["in_lane"] = False  # a partial re-run of one task, alone
    (out / "end_to_end.json").write_text(json.dumps(payload))
    assert "| a | 1 min 01 s, re-run alone | M |" in figures.render(out)
    payload["figures"]["bench"] = None  # only partial re-runs so far
    (out / "end_to_end.json").write_text(json.dumps(payload))
    assert "No whole-bench time yet" in figures.render(out)
