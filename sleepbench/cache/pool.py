"""Process pools whose workers die with the process that started them.

A worker that outlives a killed build (``kill -9`` of the main process) would keep preprocessing
for nobody, and whatever descriptors it inherited stay open. Each worker therefore asks the Linux
kernel to SIGKILL it when its parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread
polls ``os.getppid()`` and kills the worker once it has been re-parented.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _set_parent_death_signal() -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int, poll_s: float) -> None:
    while os.getppid() == parent_pid:
        time.sleep(poll_s)
    os.kill(os.getpid(), signal.SIGKILL)


def die_with_parent(parent_pid: int, poll_s: float = 0.5) -> None:
    """Make this process die as soon as ``parent_pid`` (its parent) does.

    Args:
        parent_pid: the parent's PID as the parent saw it before forking.
        poll_s: polling period of the portable fallback (non-Linux).
    """
    if not _set_parent_death_signal():
        threading.Thread(target=_watch_parent, args=(parent_pid, poll_s), daemon=True).start()
    # the parent may have died before the death signal was armed: then nobody will send it
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGKILL)


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A started pool of ``workers`` processes that die with this one.

    Forked where the platform allows (fast start, the task's code is already imported). The
    workers are running when this returns, so files this process opens afterwards (the cache
    being written) are not inherited by them. The kernel's death signal follows the *thread*
    that forked a worker: call this from the thread that uses the pool until its shutdown.
    """
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=die_with_parent, initargs=(os.getpid(),)
    )
    # ProcessPoolExecutor starts every forked worker on its first task; spawned ones may start
    # later, but spawned children inherit no descriptors anyway
    pool.submit(os.getpid).result()
    return pool
