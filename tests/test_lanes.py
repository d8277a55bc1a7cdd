"""Concurrent task lanes of `sleepbench bench`: how many, how many threads, what runs when, and a
failed task reported while the others finish."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from sleepbench import lanes
from sleepbench.cli import main
from sleepbench.lanes import resolve_jobs, run_lanes, threads_per_lane

pytestmark = pytest.mark.timeout(120)

# A stand-in for one task's `sleepbench bench`: logs like the package, records when it ran and
# with how many threads, writes its rows; task "bad" fails.
_CHILD = r"""
import json, os, sys, time
task, rows_out, stamp = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.time()
print("Lightning noise that stays in the log \U0001f4a1")  # an emoji, as Lightning prints
print(f"2026-01-01 00:00:00,000 INFO sleepbench: {task} epoch 1/1")
time.sleep(0.6)
with open(stamp, "w") as fh:
    json.dump({"start": t0, "end": time.time(), "omp": os.environ.get("OMP_NUM_THREADS")}, fh)
if task == "bad":
    print("Traceback: the bad task broke")
    sys.exit(3)
with open(rows_out, "w") as fh:
    json.dump([{"key": f"{task}/row", "metrics": {"test/acc": 0.5}}], fh)
"""


def _command(tmp_path: Path):
    script = tmp_path / "child.py"
    script.write_text(_CHILD)

    def command(task: str, overrides: Sequence[str], rows_out: Path) -> list[str]:
        return [sys.executable, str(script), task, str(rows_out), str(tmp_path / f"{task}.stamp")]

    return command


def _stamps(tmp_path: Path, tasks: Sequence[str]) -> dict[str, dict]:
    return {t: json.loads((tmp_path / f"{t}.stamp").read_text()) for t in tasks}


def test_resolve_jobs_auto_uses_the_cores_on_a_cpu_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lanes, "_cuda_visible", lambda: False)
    assert resolve_jobs("auto", 6, cores=2) == 2
    assert resolve_jobs("auto", 6, cores=16) == 6
    assert resolve_jobs("auto", 1, cores=16) == 1  # one task: nothing to run beside it
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert resolve_jobs("auto", 6, cores=16) == 1  # torchrun ranks must not each fork lanes
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setattr(lanes, "_cuda_visible", lambda: True)
    assert resolve_jobs("auto", 6, cores=16) == 1  # a GPU machine: one task after another


def test_resolve_jobs_explicit_counts_and_refusals() -> None:
    assert resolve_jobs("3", 6) == 3
    assert resolve_jobs(4, 2) == 2  # never more lanes than tasks
    for bad in ("0", "-1", "many"):
        with pytest.raises(ValueError, match="--jobs"):
            resolve_jobs(bad, 6)


def test_threads_per_lane_shares_out_the_cores() -> None:
    assert threads_per_lane(2, cores=2) == 1
    assert threads_per_lane(3, cores=16) == 5
    assert threads_per_lane(4, cores=2) == 1  # never below one


def test_lanes_run_two_at_a_time_and_collect_rows_in_task_order(tmp_path: Path) -> None:
    tasks = ["a", "b", "c"]
    echoed: list[str] = []
    out = run_lanes(tasks, [], 2, tmp_path / "logs", _command(tmp_path), echoed.append, 0.05)
    assert [r.task for r in out] == tasks and all(r.ok for r in out)
    assert [row["key"] for r in out for row in r.rows] == ["a/row", "b/row", "c/row"]
    st = _stamps(tmp_path, tasks)
    assert st["a"]["start"] < st["b"]["end"] and st["b"]["start"] < st["a"]["end"]  # overlapped
    assert st["c"]["start"] >= min(st["a"]["end"], st["b"]["end"]) - 0.05  # waited for a lane
    assert {s["omp"] for s in st.values()} == {str(threads_per_lane(2))}
    # the whole output is in the log, only this package's lines on the console, prefixed
    assert "Lightning noise" in (tmp_path / "logs" / "a.log").read_text()
    assert "[a] 2026-01-01 00:00:00,000 INFO sleepbench: a epoch 1/1" in echoed
    assert not any("Lightning noise" in line for line in echoed)
    summary = json.loads((tmp_path / "logs" / lanes.SUMMARY_FILE).read_text())
    assert summary["jobs"] == 2 and [t["task"] for t in summary["tasks"]] == tasks
    assert all(t["returncode"] == 0 and t["wall_s"] >= 0.5 for t in summary["tasks"])


def test_a_failed_task_is_reported_with_its_log_and_the_others_finish(tmp_path: Path) -> None:
    echoed: list[str] = []
    out = run_lanes(
        ["bad", "a", "b"], [], 2, tmp_path / "logs", _command(tmp_path), echoed.append, 0.05
    )
    by_task = {r.task: r for r in out}
    assert by_task["bad"].returncode == 3 and not by_task["bad"].ok and by_task["bad"].rows == []
    assert by_task["a"].ok and by_task["b"].ok
    failure = next(line for line in echoed if "[bad] FAILED" in line)
    assert "exit code 3" in failure and "the bad task broke" in failure


def test_bench_refuses_a_bad_jobs_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--jobs", "0", "--task", "shhs_spo2", "--task", "esc50"]) == 2
    assert "--jobs" in capsys.readouterr().err


def test_bench_with_lanes_reports_every_task_and_exits_1_when_one_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the stand-in calls the tasks by their real names; make apnea_ecg the one that fails
    monkeypatch.setattr(lanes, "child_command", _renaming(_command(tmp_path), "apnea_ecg", "bad"))
    code = main(
        ["bench", "--jobs", "2", "--task", "apnea_ecg", "--task", "shhs_spo2",
         f"output.runs_dir={tmp_path / 'runs'}", f"output.results={tmp_path / 'results.jsonl'}",
         f"output.leaderboard={tmp_path / 'leaderboard.md'}"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1
    assert "shhs_spo2/row" in out and "[shhs_spo2] finished" in out
    # the costlier task (cost_hint) starts first; rows and failures keep the registry order
    assert out.index("[shhs_spo2] started") < out.index("[apnea_ecg] started")
    assert "failed: apnea_ecg" in err and str(tmp_path / "runs" / "logs" / "apnea_ecg.log") in err
    assert (tmp_path / "leaderboard.md").exists()


def _renaming(command, task: str, as_task: str):
    def renamed(t: str, overrides: Sequence[str], rows_out: Path) -> list[str]:
        cmd = command(t, overrides, rows_out)
        return [as_task if (i == 2 and t == task) else c for i, c in enumerate(cmd)]

    return renamed
