"""benchmarks/bench_defaults.py: override lists with brackets, and a sweep that keeps the entries
another sweep wrote while it ran."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sweep(load_benchmark):
    """``benchmarks/bench_defaults.py`` imported as a module."""
    return load_benchmark("bench_defaults")


def test_commas_inside_brackets_stay_in_one_override(sweep) -> None:
    assert sweep._split_overrides("loss.class_weights=[1.0,2.0,2.0],optim.lr=1e-3") == [
        "loss.class_weights=[1.0,2.0,2.0]",
        "optim.lr=1e-3",
    ]
    assert sweep._split_overrides("") == []
    assert sweep._split_overrides("a=1,,b=2") == ["a=1", "b=2"]


def test_entries_written_by_a_concurrent_sweep_are_kept(sweep, tmp_path, monkeypatch) -> None:
    common = sys.modules["_common"]
    monkeypatch.setattr(common, "OUT_DIR", tmp_path)
    monkeypatch.setattr(sweep, "OUT_DIR", tmp_path)
    out = tmp_path / "defaults_apnea_ecg.json"
    out.write_text(json.dumps({"figures": {"old": {"overrides": []}}}))

    def fake_run(task, folder, name, overrides):
        # another sweep finishes while this variant runs
        other = json.loads(out.read_text())
        other["figures"]["other"] = {"overrides": ["x=1"]}
        out.write_text(json.dumps(other))
        return {"overrides": overrides, "rows": {}}

    monkeypatch.setattr(sweep, "run_variant", fake_run)
    monkeypatch.setattr(
        sys, "argv", ["bench_defaults.py", "--task", "apnea_ecg", "--variant", "mine=a=[1,2]"]
    )
    sweep.main()
    figures = json.loads(out.read_text())["figures"]
    assert set(figures) == {"old", "other", "mine"}
    assert figures["mine"]["overrides"] == ["a=[1,2]"]
