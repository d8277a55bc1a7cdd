"""The cache lock: says who holds it, never waits silently, takes over from dead owners, and is
never held by forked children."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sleepbench.cache.lock import LockOwner, LockTimeout, file_lock

pytestmark = pytest.mark.timeout(60)


def dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(30)
    return proc.pid


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def flock_free(path: Path) -> bool:
    """Whether a fresh descriptor of ``path`` can take the flock right now."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def log_lines(caplog: pytest.LogCaptureFixture, part: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if part in r.getMessage()]


@pytest.fixture
def lock_path(tmp_path: Path) -> Path:
    return tmp_path / "cache" / ".toy.lock"


@pytest.fixture
def kill_after() -> Iterator[list[int]]:
    """PIDs the test started; SIGKILLed at teardown."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_owner_record_is_written_and_emptied_on_release(lock_path: Path) -> None:
    with file_lock(lock_path) as owner:
        record = json.loads(lock_path.read_text())
        assert record == {"pid": os.getpid(), "host": socket.gethostname(), "since": owner.since}
        since = dt.datetime.fromisoformat(owner.since)
        assert abs((dt.datetime.now().astimezone() - since).total_seconds()) < 60
        assert not flock_free(lock_path)
    assert lock_path.read_text() == ""
    assert flock_free(lock_path)


def test_waiter_names_a_live_holder_repeatedly_then_times_out(
    lock_path: Path, caplog: pytest.LogCaptureFixture, kill_after: list[int]
) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import time
                from sleepbench.cache.lock import file_lock
                with file_lock({str(lock_path)!r}):
                    print("held", flush=True)
                    time.sleep(60)
            """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    kill_after.append(holder.pid)
    assert holder.stdout.readline().strip() == "held"
    with caplog.at_level(logging.WARNING, logger="sleepbench.cache.lock"):
        with pytest.raises(LockTimeout) as info:
            with file_lock(lock_path, timeout_s=1.0, poll_s=0.05, report_every_s=0.3):
                pass
    assert info.value.owner is not None and info.value.owner.pid == holder.pid
    assert f"PID {holder.pid} on {socket.gethostname()} since " in str(info.value)
    waiting = log_lines(caplog, "waiting for lock")
    assert len(waiting) >= 3  # at once, then every report_every_s
    assert all(f"held by PID {holder.pid} on {socket.gethostname()} since" in w for w in waiting)
    # once the holder is gone the kernel frees the lock
    holder.kill()
    holder.wait(10)
    with file_lock(lock_path, timeout_s=5.0) as owner:
        assert owner.pid == os.getpid()


def test_free_lock_left_by_a_dead_owner_is_taken_with_a_log_line(
    lock_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stale = LockOwner(dead_pid(), socket.gethostname(), "2024-05-01T10:00:00+00:00")
    lock_path.parent.mkdir(parents=True)
    lock_path.write_text(json.dumps({"pid": stale.pid, "host": stale.host, "since": stale.since}))
    with caplog.at_level(logging.WARNING, logger="sleepbench.cache.lock"):
        with file_lock(lock_path, timeout_s=5.0) as owner:
            assert owner.pid == os.getpid()
    (line,) = log_lines(caplog, "left by")
    assert f"PID {stale.pid} on {stale.host} since 2024-05-01T10:00:00+00:00" in line


def test_lock_still_held_by_an_orphan_of_a_dead_owner_is_taken_over(
    lock_path: Path, caplog: pytest.LogCaptureFixture, kill_after: list[int]
) -> None:
    # the hang of issue 7: the owner died, a child that inherited its descriptor holds the flock
    script = textwrap.dedent(f"""
        import fcntl, json, os, socket, time
        fd = os.open({str(lock_path)!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        record = {{"pid": os.getpid(), "host": socket.gethostname(), "since": "2024-05-01T10:00:00"}}
        os.write(fd, json.dumps(record).encode())
        child = os.fork()
        if child == 0:
            os.close(1)  # the test reads the owner's stdout until it closes
            time.sleep(60)
            os._exit(0)
        print(os.getpid(), child, flush=True)
        os._exit(0)
    """)
    lock_path.parent.mkdir(parents=True)
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    owner_pid, orphan_pid = map(int, owner.stdout.read().split())
    kill_after.append(orphan_pid)
    owner.wait(30)
    assert not alive(owner_pid) and alive(orphan_pid)
    assert not flock_free(lock_path)  # still held, by the orphan
    old_inode = lock_path.stat().st_ino
    with caplog.at_level(logging.WARNING, logger="sleepbench.cache.lock"):
        with file_lock(lock_path, timeout_s=5.0, poll_s=0.05) as me:
            assert me.pid == os.getpid()
            assert json.loads(lock_path.read_text())["pid"] == os.getpid()
    assert lock_path.stat().st_ino != old_inode
    (line,) = log_lines(caplog, "taking the lock over")
    assert f"owner PID {owner_pid} on {socket.gethostname()} since 2024-05-01T10:00:00" in line
    assert "is dead" in line


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def test_forked_children_do_not_hold_the_parents_lock(lock_path: Path) -> None:
    with file_lock(lock_path):
        child = mp.get_context("fork").Process(target=_sleep, args=(30,))
        child.start()
    try:
        assert child.is_alive()
        assert flock_free(lock_path)  # released although the child still runs
    finally:
        child.kill()
        child.join(10)


def test_taking_a_lock_this_process_holds_raises(lock_path: Path) -> None:
    with file_lock(lock_path):
        with pytest.raises(RuntimeError, match="already held by this process"):
            with file_lock(lock_path, timeout_s=5.0):
                pass


def test_unknown_holder_is_reported_as_such(
    lock_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lock_path.parent.mkdir(parents=True)
    lock_path.touch()
    fd = os.open(lock_path, os.O_RDWR)  # a holder that wrote no owner record (older sleepbench)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with caplog.at_level(logging.WARNING, logger="sleepbench.cache.lock"):
            with pytest.raises(LockTimeout, match="unknown process"):
                with file_lock(lock_path, timeout_s=0.3, poll_s=0.05):
                    pass
        assert log_lines(caplog, "held by an unknown process (no owner record)")
    finally:
        os.close(fd)
