"""``kill -9`` of a process running a multi-worker build: its workers die with it, and a re-run
takes the lock and resumes to a finished cache (every wait bounded)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sleepbench.cache.lock import file_lock
from sleepbench.cache.store import CacheStore

pytestmark = pytest.mark.timeout(120)

# builds 6 toy records with 2 workers under the cache lock, as `sleepbench prepare` does; with
# SLOW set, each record writes its worker's PID into $PIDS and then sleeps for a minute
SCRIPT = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path

    import numpy as np

    from sleepbench.cache.build import ProcessedRecord, SourceRecord, build_cache
    from sleepbench.cache.lock import file_lock


    def preprocess(source, cfg):
        if os.environ.get("SLOW") and source.record_id != "r0":
            (Path(os.environ["PIDS"]) / str(os.getpid())).touch()
            time.sleep(60)
        return ProcessedRecord({"x": np.full((1, 8), int(source.record_id[1:]), np.float32)})


    if __name__ == "__main__":
        cache = Path(sys.argv[1])
        sources = [SourceRecord(f"r{i}", f"s{i}", ()) for i in range(6)]
        with file_lock(cache / ".toy.lock", timeout_s=30):
            print(build_cache("toy", sources, preprocess, {}, cache, "1", workers=2,
                              progress=False), flush=True)
""")


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def test_workers_die_with_a_killed_build_and_the_rerun_completes(tmp_path: Path) -> None:
    script, cache, pids = tmp_path / "build.py", tmp_path / "cache", tmp_path / "pids"
    script.write_text(SCRIPT)
    pids.mkdir()
    env = {**os.environ, "SLOW": "1", "PIDS": str(pids)}
    parent = subprocess.Popen([sys.executable, str(script), str(cache)], env=env)
    workers: list[int] = []
    try:
        wait_for(lambda: len(list(pids.iterdir())) >= 2, 60, "both workers to start a record")
        workers = [int(p.name) for p in pids.iterdir()]
        assert parent.pid not in workers and all(alive(w) for w in workers)
        (partial,) = cache.glob("*.h5.partial")  # the build is under way
        for worker in workers:  # workers never hold the cache file or the lock (Linux /proc)
            fds = Path(f"/proc/{worker}/fd")
            held = {os.readlink(fd) for fd in fds.iterdir()} if fds.exists() else set()
            assert not held & {str(partial), str(cache / ".toy.lock")}

        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        wait_for(lambda: not any(alive(w) for w in workers), 5, "the workers to die")
    finally:
        for pid in [parent.pid, *workers]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # nobody holds the lock any more, and the re-run resumes from the partial file
    with file_lock(cache / ".toy.lock", timeout_s=2):
        pass
    rerun = subprocess.run(
        [sys.executable, str(script), str(cache)],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "SLOW"},
    )
    assert rerun.returncode == 0, rerun.stderr
    final = Path(rerun.stdout.strip().splitlines()[-1])
    assert final.exists() and not list(cache.glob("*.partial"))
    store = CacheStore(final)
    assert [r.record_id for r in store.records] == [f"r{i}" for i in range(6)]
    assert store.read(3, "x")[0, 0] == 3.0 and store.skipped == []
