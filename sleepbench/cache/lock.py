"""An exclusive inter-process file lock that says who holds it and is taken over from the dead.

Exclusion is ``fcntl.flock`` on the lock file; the kernel drops it when every descriptor of the
locked file is closed. The file holds the owner's record, one JSON line
``{"pid": 4242, "host": "node1", "since": "2024-05-01T10:00:00+02:00"}``, emptied on release.

A waiter logs the holder when it starts waiting and every ``report_every_s`` after, and gives up
after ``timeout_s`` with :class:`LockTimeout`. A lock whose recorded owner is a dead process on
this host is stale: it can only still be held through a descriptor that some other process
inherited (an orphaned child); the waiter then unlinks that file and locks a fresh one at the same
path, so the orphan no longer blocks anyone.

Forked children never hold a lock of their parent: an ``os.register_at_fork`` hook closes this
process's lock descriptors in every child (closing, not unlocking, which would release the
parent's lock too).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# descriptors of the locks this process holds -> their path; closed in forked children
_HELD: dict[int, Path] = {}


def _close_held_in_child() -> None:
    for fd in list(_HELD):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_close_held_in_child)


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    try:  # Linux: a killed process whose parent has not reaped it yet is dead all the same
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


@dataclass(frozen=True)
class LockOwner:
    """Who holds a lock: process id, host name and when it took the lock (ISO 8601)."""

    pid: int
    host: str
    since: str

    @classmethod
    def current(cls) -> LockOwner:
        """This process, now."""
        now = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        return cls(os.getpid(), socket.gethostname(), now)

    @classmethod
    def parse(cls, text: str) -> LockOwner | None:
        """The owner written in a lock file's ``text``; None when empty or unreadable."""
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), str(data["host"]), str(data["since"]))
        except (ValueError, KeyError, TypeError):
            return None

    def is_dead(self) -> bool:
        """True only when the owner is known to be gone (a process of this host that exited)."""
        return self.host == socket.gethostname() and not _pid_alive(self.pid)

    def __str__(self) -> str:
        return f"PID {self.pid} on {self.host} since {self.since}"


class LockTimeout(TimeoutError):
    """The lock at ``path`` stayed held by ``owner`` (None: unknown) for ``waited_s`` seconds."""

    def __init__(self, path: Path, owner: LockOwner | None, waited_s: float) -> None:
        self.path, self.owner, self.waited_s = path, owner, waited_s
        who = str(owner) if owner else "an unknown process (no owner record)"
        super().__init__(f"lock {path} still held by {who} after {waited_s:.0f} s")


def _read_owner(fd: int) -> LockOwner | None:
    return LockOwner.parse(os.pread(fd, 4096, 0).decode("utf-8", "replace"))


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``fd`` is still the file at ``path`` (a takeover replaces it)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _take_over(path: Path, stale_fd: int) -> bool:
    """Unlink the stale lock file ``stale_fd`` if it is still the one at ``path``.

    A second, never-unlinked guard file serialises takeovers, so two waiters cannot each unlink
    the other's fresh lock file.

    Returns:
        True when ``path`` no longer is the stale file (unlinked here or by another waiter);
        False when the guard is busy (the caller waits and retries).
    """
    guard = os.open(path.with_name(path.name + ".takeover"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if _same_file(stale_fd, path):
            os.unlink(path)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(guard)


@contextmanager
def file_lock(
    path: Path,
    timeout_s: float | None = None,
    poll_s: float = 0.2,
    report_every_s: float = 30.0,
) -> Iterator[LockOwner]:
    """Hold an exclusive lock on ``path`` for the ``with`` block.

    Args:
        path: the lock file (created, with its folder, when absent).
        timeout_s: give up after this many seconds of waiting; None waits as long as it takes
            (still logging the holder every ``report_every_s``).
        poll_s: seconds between attempts while the lock is held by someone else.
        report_every_s: seconds between the "waiting for ... held by ..." log lines.

    Yields:
        The owner record written into the lock file (this process).

    Raises:
        LockTimeout: still held by another process after ``timeout_s``.
        RuntimeError: this process already holds ``path`` (waiting would never end).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    last_report: float | None = None
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # os.open fds are close-on-exec
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_owner(fd)
            if holder is not None and holder.is_dead():
                log.warning(
                    "lock %s: its owner %s is dead but a process it left behind still holds "
                    "the file; taking the lock over",
                    path,
                    holder,
                )
                replaced = _take_over(path, fd)
                os.close(fd)
                if replaced:
                    continue
            else:
                os.close(fd)
            if holder is not None and holder.pid == os.getpid() and path in _HELD.values():
                raise RuntimeError(f"lock {path} is already held by this process") from None
            now = time.monotonic()
            if last_report is None or now - last_report >= report_every_s:
                who = str(holder) if holder else "an unknown process (no owner record)"
                log.warning(
                    "waiting for lock %s held by %s (%.0f s so far)", path, who, now - start
                )
                last_report = now
            if timeout_s is not None and now - start >= timeout_s:
                raise LockTimeout(path, holder, now - start) from None
            time.sleep(poll_s)
            continue
        if not _same_file(fd, path):  # locked a file a takeover has just unlinked: start over
            os.close(fd)
            continue
        break

    previous = _read_owner(fd)
    if previous is not None:  # released locks are emptied: this owner died holding it
        log.warning("lock %s was left by %s, which died holding it; taking it over", path, previous)
    owner = LockOwner.current()
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(asdict(owner)) + "\n").encode(), 0)
    _HELD[fd] = path
    try:
        yield owner
    finally:
        del _HELD[fd]
        os.ftruncate(fd, 0)  # emptied before unlocking: a record in a free lock means a crash
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
