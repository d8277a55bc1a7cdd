"""End to end `sleepbench bench` on the synthetic default, from nothing: figures for the README.

One ``sleepbench bench`` process over the selected tasks (default: every task, which is what
``make bench`` runs) in an empty folder (its own cache, synthetic sets, runs and results), so the
wall time includes writing the synthetic data, building the caches, training, testing and the
peer rows, as a new user meets it. Several tasks run as concurrent lanes (``--jobs auto``,
:mod:`sleepbench.lanes`). Writes ``benchmarks/out/end_to_end.json``: ``bench`` (the whole run's
wall time, lanes and threads per task, the UTC day) and, per task, its lane's wall time and,
per result row (the model and its peers), the test metrics the leaderboard shows.

    .venv/bin/python benchmarks/bench_end_to_end.py [--task apnea_ecg ...] [--jobs auto]
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT_DIR, write_json  # noqa: E402

from sleepbench.config import isolated_outputs  # noqa: E402
from sleepbench.lanes import SUMMARY_FILE  # noqa: E402
from sleepbench.registry import get_spec, task_names  # noqa: E402

#: test metrics kept per row besides the task's headline metrics (the bars they must clear)
_EXTRA_METRICS = ("majority_acc",)


def _row(row: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    """A result row reduced to its model, protocol, synthetic flag and kept test metrics."""
    return {
        "model": row["model"],
        "protocol": row["protocol"],
        "synthetic": bool(row.get("data", {}).get("synthetic")),
        "metrics": {
            k.removeprefix("test/"): v
            for k, v in row["metrics"].items()
            if k.startswith("test/") and k.removeprefix("test/") in keep
        },
    }


def run_bench(tasks: list[str], jobs: str, extra: list[str]) -> dict[str, Any]:
    """One ``sleepbench bench`` over ``tasks`` in a fresh folder: its wall time, lanes and rows."""
    with tempfile.TemporaryDirectory(prefix="e2e-") as folder:
        overrides = [o for o in isolated_outputs(Path(folder)) if "build_workers" not in o]
        cmd = [sys.executable, "-m", "sleepbench.cli", "bench", "--jobs", jobs]
        cmd += [a for t in tasks for a in ("--task", t)] + overrides + extra
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        wall_s = time.perf_counter() - t0
        results = Path(folder) / "results.jsonl"
        rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
        summary_path = Path(folder) / "runs" / "logs" / SUMMARY_FILE
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    day = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    lane_wall = {t["task"]: t["wall_s"] for t in summary["tasks"]} if summary else {}
    figures: dict[str, Any] = {}
    for task in tasks:
        spec = get_spec(task)
        keep = {*(spec.headline_metrics or (spec.primary_metric,)), *_EXTRA_METRICS}
        figures[task] = {
            # one task alone (no lanes): the whole run is that task's time
            "wall_s": lane_wall.get(task, wall_s),
            # false: it ran alone (a partial re-run of one task), not beside another task
            "in_lane": task in lane_wall,
            # the day it ran: the shared 2-core machines of different sessions differ in speed
            "measured": day,
            "rows": [_row(r, keep) for r in rows if r["task"] == task],
        }
    bench = {
        "wall_s": wall_s,
        "measured": day,
        "tasks": tasks,
        "jobs": summary["jobs"] if summary else 1,
        "threads_per_task": summary["threads_per_task"] if summary else None,
    }
    return {"bench": bench, "figures": figures}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", action="append", help="task (repeatable; default: every task)")
    p.add_argument("--jobs", default="auto", help="sleepbench bench --jobs (default auto)")
    p.add_argument("overrides", nargs="*", help="extra dotlist overrides for every task")
    args = p.parse_args()
    tasks = args.task or task_names()
    out = run_bench(tasks, args.jobs, args.overrides)
    previous = OUT_DIR / "end_to_end.json"
    old = json.loads(previous.read_text())["figures"] if previous.exists() else {}
    # a partial re-run (--task) keeps the other tasks' figures and the last whole-bench time
    figures = {
        "bench": out["bench"] if set(tasks) >= set(task_names()) else old.get("bench"),
        "tasks": {**old.get("tasks", {}), **out["figures"]},
    }
    write_json("end_to_end", figures)
    print(f"sleepbench bench over {len(tasks)} task(s): {out['bench']['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
