"""Several tasks' benches at once on a CPU machine: one ``sleepbench bench --task T`` process per
task, at most ``jobs`` at a time, the CPU cores split between them.

Why: on a CPU the small default models use a second thread poorly (a training step on two
threads is far from twice as fast as on one) and synthesis, cache building, the classical peers
and the evaluation run on one thread anyway. Two one-thread processes on two
cores therefore finish the six tasks sooner than one two-thread process running them one after
another. A GPU machine keeps running tasks one after another (each takes every GPU it is given).

Each task's whole output (Lightning's included) goes to ``<runs_dir>/logs/<task>.log``; the
console gets the ``sleepbench`` log lines of every task prefixed ``[task]``. A task that fails is
reported with the end of its log and the others go on. Each child writes its result rows to a
JSON file the parent reads back; the parent writes the leaderboard once, after all of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

__all__ = ["SUMMARY_FILE", "LaneResult", "resolve_jobs", "run_lanes", "threads_per_lane"]

#: environment variables that size the thread pools of torch, numpy's BLAS and scikit-learn
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: log lines echoed to the console: this package's logger (format ``<time> LEVEL sleepbench...``)
#: and the lines of its synthetic-data banner
_ECHO_MARK = " sleepbench"
_BANNER_MARK = "!!"
#: per-task exit codes and wall times of the last run, written next to the logs
SUMMARY_FILE = "lanes.json"
#: lines of a failed task's log shown on the console
_TAIL_LINES = 25


@dataclass
class LaneResult:
    """One task's child process: its exit code, wall time (s), log file and result rows."""

    task: str
    returncode: int
    wall_s: float
    log: Path
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The child exited with code 0."""
        return self.returncode == 0


def _cuda_visible() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover - torch is a dependency
        return False


def _distributed_launch() -> bool:
    """torchrun or SLURM started this process as one of several ranks (each would fork lanes)."""
    return any(int(os.environ.get(v, "1") or 1) > 1 for v in ("WORLD_SIZE", "SLURM_NTASKS"))


def resolve_jobs(jobs: str | int, n_tasks: int, cores: int | None = None) -> int:
    """How many tasks run at once.

    Args:
        jobs: ``"auto"`` or a positive count. ``"auto"``: 1 where a CUDA GPU is visible (tasks
            take the GPUs one after another), under a multi-process launch (torchrun, SLURM) or
            for one task; otherwise one task per CPU core, at most ``n_tasks``.
        n_tasks: tasks selected.
        cores: CPU cores (default ``os.cpu_count()``).

    Returns:
        The number of lanes, ``1 <= lanes <= max(1, n_tasks)``.

    Raises:
        ValueError: ``jobs`` is neither ``"auto"`` nor a positive integer.
    """
    cores = cores or os.cpu_count() or 1
    if str(jobs) == "auto":
        if n_tasks <= 1 or _distributed_launch() or _cuda_visible():
            return 1
        return max(1, min(n_tasks, cores))
    try:
        n = int(jobs)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise ValueError(f"--jobs must be 'auto' or a positive integer, got {jobs!r}")
    return max(1, min(n, n_tasks))


def threads_per_lane(lanes: int, cores: int | None = None) -> int:
    """CPU threads each of ``lanes`` concurrent tasks gets: the cores shared out, at least 1."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, lanes))


def child_command(task: str, overrides: Sequence[str], rows_out: Path) -> list[str]:
    """The ``sleepbench bench`` command line of one task's lane."""
    return [
        sys.executable,
        "-m",
        "sleepbench.cli",
        "bench",
        "--task",
        task,
        "--jobs",
        "1",
        "--rows-out",
        str(rows_out),
        "trainer.enable_progress_bar=false",  # a log file, not a terminal (the user may override)
        *overrides,
    ]


def _pump(task: str, stream: TextIO, log_file: TextIO, echo: Callable[[str], None]) -> None:
    """Copy a child's output to its log; echo this package's log lines, prefixed."""
    for line in stream:
        log_file.write(line)
        log_file.flush()
        if _ECHO_MARK in line or line.startswith(_BANNER_MARK):
            echo(f"[{task}] {line.rstrip()}")


def _tail(path: Path, n: int = _TAIL_LINES) -> str:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(f"    {line}" for line in lines[-n:])


def run_lanes(
    tasks: Sequence[str],
    overrides: Sequence[str],
    jobs: int,
    log_dir: Path,
    command: Callable[[str, Sequence[str], Path], list[str]] | None = None,
    echo: Callable[[str], None] = print,
    poll_s: float = 0.5,
) -> list[LaneResult]:
    """Run each task's bench as its own process, at most ``jobs`` at once, in ``tasks`` order.

    Args:
        tasks: task names; started in this order as lanes free up.
        overrides: the dotlist every task gets.
        jobs: concurrent processes (:func:`resolve_jobs`).
        log_dir: folder of the per-task logs ``<task>.log`` (created).
        command: builds a task's command line (default :func:`child_command`).
        echo: console writer.
        poll_s: seconds between checks on the running children.

    Returns:
        One :class:`LaneResult` per task, in ``tasks`` order (failed ones included); the same
        facts (exit code, wall time, log) are written to ``log_dir /`` :data:`SUMMARY_FILE`.
    """
    command = command or child_command
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    threads = threads_per_lane(jobs)
    env.update({var: str(threads) for var in THREAD_VARS})
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach the console as they are written
    pending = list(tasks)
    running: dict[str, tuple[subprocess.Popen[str], float, threading.Thread, TextIO, Path]] = {}
    done: dict[str, LaneResult] = {}
    echo(
        f"running {len(tasks)} tasks, {jobs} at a time, {threads} CPU thread(s) each; "
        f"full logs in {log_dir}/"
    )
    with tempfile.TemporaryDirectory(prefix="sleepbench-lanes-") as tmp:
        try:
            while pending or running:
                while pending and len(running) < jobs:
                    task = pending.pop(0)
                    rows_out = Path(tmp) / f"{task}.json"
                    log_path = log_dir / f"{task}.log"
                    log_file = log_path.open("w", encoding="utf-8")
                    proc = subprocess.Popen(
                        command(task, overrides, rows_out),
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        # UTF-8 whatever the locale (Lightning prints emoji): a decoding error
                        # would stop the pump and leave the child blocked on a full pipe
                        encoding="utf-8",
                        errors="replace",
                        env=env,
                    )
                    pump = threading.Thread(
                        target=_pump, args=(task, proc.stdout, log_file, echo), daemon=True
                    )
                    pump.start()
                    running[task] = (proc, time.perf_counter(), pump, log_file, rows_out)
                    echo(f"[{task}] started (log: {log_path})")
                for task, (proc, t0, pump, log_file, rows_out) in list(running.items()):
                    if proc.poll() is None:
                        continue
                    pump.join()
                    log_file.close()
                    del running[task]
                    rows = json.loads(rows_out.read_text()) if rows_out.exists() else []
                    result = LaneResult(
                        task, proc.returncode, time.perf_counter() - t0, Path(log_file.name), rows
                    )
                    done[task] = result
                    if result.ok:
                        echo(f"[{task}] finished in {result.wall_s:.0f} s")
                    else:
                        echo(
                            f"[{task}] FAILED (exit code {result.returncode}) after "
                            f"{result.wall_s:.0f} s; the end of {result.log}:\n{_tail(result.log)}"
                        )
                if running:
                    time.sleep(poll_s)
        finally:  # Ctrl-C or an error here: no orphaned training processes
            for proc, *_ in running.values():
                proc.terminate()
            for proc, *_ in running.values():
                proc.wait()
    results = [done[t] for t in tasks]
    summary = {
        "jobs": jobs,
        "threads_per_task": threads,
        "tasks": [
            {"task": r.task, "returncode": r.returncode, "wall_s": r.wall_s, "log": str(r.log)}
            for r in results
        ],
    }
    (log_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=1))
    return results
