"""What a person watching a run sees: a bar on a terminal, a few readable lines in a log file.

* :func:`progress_bar_wanted` resolves ``trainer.enable_progress_bar`` (``auto``: a bar only when
  stderr is a terminal; Lightning's bar writes thousands of lines into a log file).
* :class:`EpochSummary` prints one line per epoch instead (epoch, train loss, validation
  metrics, time).
* :func:`heartbeat` reports a long file-writing step (the synthetic set) while it runs, so that a
  run does not sit silent for tens of seconds.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback

log = logging.getLogger("sleepbench")

__all__ = ["EpochSummary", "heartbeat", "progress_bar_wanted"]


def progress_bar_wanted(setting: Any) -> bool:
    """Whether to show Lightning's progress bar.

    Args:
        setting: ``trainer.enable_progress_bar``: ``True`` / ``False`` force it; ``"auto"`` (or
            ``None``) means "only when stderr is a terminal".

    Returns:
        True to show the bar; False to print :class:`EpochSummary` lines instead.
    """
    if isinstance(setting, bool):
        return setting
    if setting is None or str(setting).lower() == "auto":
        return sys.stderr.isatty()
    raise ValueError(f"trainer.enable_progress_bar must be auto, true or false, got {setting!r}")


def _fmt(value: float) -> str:
    return f"{value:.4g}"


class EpochSummary(Callback):
    """Prints one log line per training epoch (used when there is no progress bar).

    The line holds the epoch (1-based, of ``max_epochs``), the epoch's mean training loss
    (``train/loss_epoch``), every ``val/*`` scalar logged in that epoch and the epoch's wall time
    in seconds, e.g. ``epoch 3/8  train/loss 0.412  val/loss 0.398  val/f1 0.71  (12.4 s)``.
    Printed on global rank 0 only.
    """

    def __init__(self) -> None:
        self._t0 = 0.0

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        # runs after the epoch's validation loop, so the val/ metrics are this epoch's
        if not trainer.is_global_zero:
            return
        parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"]
        metrics = trainer.callback_metrics
        loss = metrics.get("train/loss_epoch", metrics.get("train/loss"))
        if loss is not None:
            parts.append(f"train/loss {_fmt(float(loss))}")
        for key in sorted(metrics):
            if key.startswith("val/"):
                value = metrics[key]
                if getattr(value, "numel", lambda: 1)() == 1:
                    parts.append(f"{key} {_fmt(float(value))}")
        parts.append(f"({time.perf_counter() - self._t0:.1f} s)")
        log.info("  ".join(parts))


def _count_files(folder: Path) -> tuple[int, int]:
    """(files, bytes) under ``folder`` (missing files, e.g. renamed meanwhile, are skipped)."""
    n = size = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                n += 1
                size += path.stat().st_size
        except OSError:
            continue
    return n, size


@contextmanager
def heartbeat(folder: Path, what: str, every_s: float = 5.0) -> Iterator[None]:
    """Log ``what`` before, every ``every_s`` seconds during (files and MB written under
    ``folder`` so far), and after (the time taken) the block it wraps.

    Args:
        folder: folder the block writes into (watched, never modified).
        what: description for the log lines (``"writing the synthetic apnea-ecg set"``).
        every_s: seconds between progress lines.
    """
    log.info("%s in %s ...", what, folder)
    t0 = time.perf_counter()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            n, size = _count_files(folder)
            log.info(
                "  ... %s: %d files, %.1f MB so far (%.0f s)",
                what,
                n,
                size / 1e6,
                time.perf_counter() - t0,
            )

    thread = threading.Thread(target=beat, name="sleepbench-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
    n, size = _count_files(folder)
    log.info("%s: done, %d files, %.1f MB in %.1f s", what, n, size / 1e6, time.perf_counter() - t0)
