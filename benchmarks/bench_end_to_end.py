"""End to end `sleepbench bench` on each task's synthetic default, from nothing: figures for the README.

Each task runs as a fresh ``sleepbench bench --task T`` process in an empty folder (its own cache,
synthetic set, runs and results), so the wall time includes writing the synthetic nights,
building the cache, training, testing and the peer rows, as a new user meets it. Writes
``benchmarks/out/end_to_end.json``: per task the wall time in seconds, the UTC day it ran
(``measured``) and, per result row (the model and its peers), the test metrics the leaderboard
shows.

    .venv/bin/python benchmarks/bench_end_to_end.py [--task apnea_ecg ...]
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
from sleepbench.registry import get_spec, task_names  # noqa: E402

#: test metrics kept per row besides the task's headline metrics (the bars they must clear)
_EXTRA_METRICS = ("majority_acc",)


def run_task(task: str, extra: list[str]) -> dict[str, Any]:
    """Run one task's synthetic default in a fresh folder; its wall time and result rows."""
    with tempfile.TemporaryDirectory(prefix=f"e2e-{task}-") as folder:
        overrides = [o for o in isolated_outputs(Path(folder)) if "build_workers" not in o]
        cmd = [sys.executable, "-m", "sleepbench.cli", "bench", "--task", task, *overrides, *extra]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        wall_s = time.perf_counter() - t0
        results = Path(folder) / "results.jsonl"
        rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    spec = get_spec(task)
    keep = {*(spec.headline_metrics or (spec.primary_metric,)), *_EXTRA_METRICS}
    return {
        "wall_s": wall_s,
        # the day it ran: a partial re-run keeps other days' entries, and the shared 2-core
        # machines of different sessions differ in speed, so wall times of two days do not add up
        "measured": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
        "rows": [
            {
                "model": row["model"],
                "protocol": row["protocol"],
                "synthetic": bool(row.get("data", {}).get("synthetic")),
                "metrics": {
                    k.removeprefix("test/"): v
                    for k, v in row["metrics"].items()
                    if k.startswith("test/") and k.removeprefix("test/") in keep
                },
            }
            for row in rows
        ],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", action="append", help="task (repeatable; default: every task)")
    p.add_argument("overrides", nargs="*", help="extra dotlist overrides for every task")
    args = p.parse_args()
    previous = OUT_DIR / "end_to_end.json"
    # a partial re-run (--task) keeps the other tasks' figures
    figures = json.loads(previous.read_text())["figures"] if previous.exists() else {}
    for task in args.task or task_names():
        figures[task] = run_task(task, args.overrides)
        print(f"{task}: {figures[task]['wall_s']:.0f} s", flush=True)
    write_json("end_to_end", figures)


if __name__ == "__main__":
    main()
