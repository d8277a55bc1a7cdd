"""Append-only results store (JSON Lines), resumable by run key.

One line per finished run (:class:`RunResult` as a dict). A run key is
``task/model/protocol/fold/seed/config-hash``: a finished key is not re-run unless forced.
Appends take an exclusive lock so concurrent runs never interleave lines.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


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


class ResultsStore:
    """A JSONL file of run results.

    Args:
        path: the ``.jsonl`` file (created on first append).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with open(self.path) as fh:
            for line in fh:
                line = line.strip()
                if line:
                    yield json.loads(line)

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
        """Append one result (locked, flushed and fsynced)."""
        data = row.to_dict() if isinstance(row, RunResult) else dict(row)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(data, sort_keys=True, default=_json_default) + "\n"
        with open(self.path, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
