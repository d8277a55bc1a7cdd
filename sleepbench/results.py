"""Append-only results store (JSON Lines), resumable by run key.

One line per finished run (:class:`RunResult` as a dict). A run key is
``task/model/protocol/fold/seed/config-hash``: a finished key is not re-run unless forced.

Nothing stored is ever lost or poisoned by one bad write:

- an append is one ``write`` of a whole line under an exclusive lock, flushed and fsynced, so
  concurrent runs never interleave lines;
- a line left torn by a crash or a full disk is skipped (and reported) when reading, and the next
  append starts on a new line instead of being glued onto it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import platform
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """Everything one finished run reports.

    Args:
        task, model, protocol, fold, seed, config_hash: the run key parts.
        metrics: test metric name -> value (validation metrics under ``val/``).
        reference: the paper's numbers for the same protocol (from ``reference.yaml``).
        protocol_tags: facts that change published numbers (split, channels, pretraining...).
        data: provenance — synthetic or real, record/subject counts, skipped records.
        n_params, n_trainable_params: model size.
        timings: ``train_s``, ``test_s``, ``inference_ms_per_hour``.
        hardware: device, precision, devices, strategy.
        git_sha: code version.
        config: the resolved config.
        created: ISO timestamp.
    """

    task: str
    model: str
    protocol: str
    fold: int
    seed: int
    config_hash: str
    metrics: dict[str, float]
    reference: dict[str, Any] = field(default_factory=dict)
    protocol_tags: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    n_params: int = 0
    n_trainable_params: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)
    git_sha: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    created: str = ""

    @property
    def key(self) -> str:
        """The run key."""
        return run_key(self.task, self.model, self.protocol, self.fold, self.seed, self.config_hash)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict with ``key`` included."""
        d = asdict(self)
        d["key"] = self.key
        return d


def run_key(task: str, model: str, protocol: str, fold: int, seed: int, config_hash: str) -> str:
    """``task/model/protocol/fold/seed/config_hash``."""
    return f"{task}/{model}/{protocol}/fold{fold}/seed{seed}/{config_hash}"


@dataclass(frozen=True)
class BadLine:
    """A line of the results file that is not a result row.

    Args:
        line_no: 1-based line number.
        reason: why it was skipped (``"torn or invalid JSON: ..."``, ``"no 'key' field"``).
    """

    line_no: int
    reason: str


class ResultsStore:
    """A JSONL file of run results.

    Args:
        path: the ``.jsonl`` file (created on first append).

    Iterating yields the valid rows in file order; lines that are not a JSON object with a
    ``key`` (a torn last line, say) are skipped, logged once per read and listed by
    :meth:`bad_lines`.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rows, bad = self._read()
        for problem in bad:
            log.warning("%s line %d skipped: %s", self.path, problem.line_no, problem.reason)
        yield from rows

    def bad_lines(self) -> list[BadLine]:
        """Lines that are not result rows (torn writes, foreign text), with their reasons."""
        return self._read()[1]

    def _read(self) -> tuple[list[dict[str, Any]], list[BadLine]]:
        if not self.path.exists():
            return [], []
        rows: list[dict[str, Any]] = []
        bad: list[BadLine] = []
        # bytes, decoded per line: a torn multi-byte character spoils one line, not the file
        with open(self.path, "rb") as fh:
            for line_no, raw in enumerate(fh, start=1):
                text = raw.decode("utf-8", errors="replace").strip()
                if not text:
                    continue
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as err:
                    bad.append(BadLine(line_no, f"torn or invalid JSON ({err.msg})"))
                    continue
                if not isinstance(row, dict) or "key" not in row:
                    bad.append(BadLine(line_no, "not a result row (no 'key' field)"))
                    continue
                rows.append(row)
        return rows, bad

    def keys(self) -> set[str]:
        """Keys of all stored runs."""
        return {row["key"] for row in self}

    def get(self, key: str) -> dict[str, Any] | None:
        """The latest stored row with ``key``, or None."""
        found = None
        for row in self:
            if row["key"] == key:
                found = row
        return found

    def append(self, row: RunResult | dict[str, Any]) -> None:
        """Append one result as one whole line: locked, written at once, fsynced.

        If the file's last line was torn (no final newline), the row starts on a new line so
        that it is not glued onto the broken one.
        """
        data = row.to_dict() if isinstance(row, RunResult) else dict(row)
        if "key" not in data:
            raise ValueError("a result row needs a 'key'")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(data, sort_keys=True, default=_json_default) + "\n").encode()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line
            _write_all(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is out (one call for any line of ordinary size)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def peer_result(
    result: RunResult | dict[str, Any],
    *,
    model: str,
    metrics: dict[str, float],
    protocol_tags: dict[str, Any],
    data: dict[str, Any],
    reference_note: str,
    train_s: float,
    test_s: float,
    hours: float,
    n_params: int = 0,
    hardware: dict[str, Any] | None = None,
) -> RunResult:
    """The row of a peer baseline scored on exactly the test units of the model's ``result``.

    It shares the model row's run key parts (task, protocol, fold, seed, config hash), code
    version and config, so the leaderboard shows the two side by side.

    Args:
        result: the model's row (a :class:`RunResult` or its dict).
        model: the peer's name (``"YASA"``, ``"AcousticEnvelope"``).
        metrics: its test metrics (``test/...``).
        protocol_tags: facts about how the peer ran (pretraining, fitted thresholds...).
        data: provenance of the test data (the data module's, plus anything peer-specific).
        reference_note: what the peer's published numbers are (usually "none").
        train_s, test_s: seconds spent fitting and scoring.
        hours: hours of signal scored (for ``inference_ms_per_hour``).
        n_params: fitted parameters (0 for a pretrained or rule-based peer).
        hardware: where it ran (default: this CPU).

    Returns:
        The peer's :class:`RunResult`.
    """

    def get(key: str) -> Any:
        return result[key] if isinstance(result, dict) else getattr(result, key)

    return RunResult(
        task=get("task"),
        model=model,
        protocol=get("protocol"),
        fold=int(get("fold")),
        seed=int(get("seed")),
        config_hash=get("config_hash"),
        metrics=metrics,
        reference={"note": reference_note, "metrics": {}},
        protocol_tags=protocol_tags,
        data=data,
        n_params=n_params,
        n_trainable_params=n_params,
        timings={
            "train_s": round(train_s, 3),
            "test_s": round(test_s, 3),
            "inference_ms_per_hour": 1000.0 * test_s / hours if hours else float("nan"),
        },
        hardware=hardware
        or {"accelerator": "cpu", "cpu": platform.processor() or platform.machine()},
        git_sha=get("git_sha"),
        config=get("config"),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
