"""The task registry: one line per task, each naming a package under ``sleepbench.tasks``.

A task package holds ``task.py`` with a module-level ``TASK`` (a :class:`Task`), plus
``config.yaml`` (defaults) and ``reference.yaml`` (the paper's numbers). Adding a task means adding
its folder and one line to :data:`TASK_PACKAGES`; nothing else changes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported lazily: `sleepbench list` must not pay for torch/lightning
    from omegaconf import DictConfig

    from sleepbench.data.datamodule import CachedDataModule
    from sleepbench.module import BenchModule

# name -> package. Registering a task is one line here.
TASK_PACKAGES: dict[str, str] = {
    "apnea_ecg": "sleepbench.tasks.apnea_ecg",
}


@dataclass(frozen=True)
class TaskSpec:
    """What a task is, as shown by ``sleepbench list`` and carried into every result row.

    Args:
        name: registry key (``"apnea_ecg"``).
        dataset: dataset folder name under ``$SLEEPBENCH_DATA`` and data-card stem.
        modality: signal(s) used (``"ECG (1 lead, 100 Hz)"``).
        paper: short citation of the method.
        model: model name used in result rows (``"ESI-ConvNeXtV2-BiLSTM"``).
        protocols: protocol names the task supports; the first is the default.
        primary_metric: the leaderboard's headline metric key (``"test/f1"``).
        headline_metrics: metric keys shown in the cross-task leaderboard.
    """

    name: str
    dataset: str
    modality: str
    paper: str
    model: str
    protocols: tuple[str, ...]
    primary_metric: str
    headline_metrics: tuple[str, ...] = ()


@dataclass(frozen=True)
class Task:
    """A registered task: its spec plus the factories the trainer calls.

    Args:
        spec: the task's :class:`TaskSpec`.
        datamodule: the task's :class:`~sleepbench.data.datamodule.CachedDataModule` subclass
            (called as ``datamodule(cfg)``; its ``list_sources`` tells whether data exist).
        build_module: ``(cfg, datamodule) -> LightningModule``.
        write_synthetic: ``(root: Path, cfg) -> manifest dict``; writes a small dataset in the
            real file format under ``root``.
        extra_runs: optional ``(cfg, datamodule, result) -> list[result rows]`` for peer baselines
            evaluated on the same test data (e.g. YASA for sleep staging).
        download: optional ``(dest or None, offline_from or None) -> report`` fetching the dataset.
    """

    spec: TaskSpec
    datamodule: type[CachedDataModule]
    build_module: Callable[[DictConfig, CachedDataModule], BenchModule]
    write_synthetic: Callable[[Path, DictConfig], dict[str, Any]]
    extra_runs: Callable[..., list[dict[str, Any]]] | None = None
    download: Callable[[Path | None, Path | None], Any] | None = None
    package: str = field(default="")

    @property
    def folder(self) -> Path:
        """Folder of the task package (holds ``config.yaml`` and ``reference.yaml``)."""
        return Path(importlib.import_module(self.package).__file__).parent


def task_names() -> list[str]:
    """All registered task names, in registry order."""
    return list(TASK_PACKAGES)


def get_task(name: str) -> Task:
    """Import and return the registered task ``name``.

    Raises:
        KeyError: ``name`` is not registered (the message lists the registered names).
    """
    if name not in TASK_PACKAGES:
        raise KeyError(f"unknown task {name!r}; registered: {', '.join(TASK_PACKAGES)}")
    package = TASK_PACKAGES[name]
    task: Task = importlib.import_module(f"{package}.task").TASK
    if task.spec.name != name:
        raise RuntimeError(
            f"{package}.task.TASK is named {task.spec.name!r}, registry says {name!r}"
        )
    object.__setattr__(task, "package", package)
    return task
