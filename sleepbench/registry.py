"""The task registry: one line per task, each naming a package under ``sleepbench.tasks``.

A task package holds ``task.py`` with a module-level ``TASK`` (a :class:`Task`), plus
``config.yaml`` (defaults) and ``reference.yaml`` (the paper's numbers). Adding a task means adding
its folder and one line to :data:`TASK_PACKAGES`; nothing else changes.

``task.py`` names its heavy parts (DataModule, module factory, synthetic writer) by import path
(``"package.module:attribute"``), so listing tasks, reading configs and drawing the leaderboard
never import torch or Lightning.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from sleepbench.data.datamodule import CachedDataModule
    from sleepbench.deploy.spec import ExportSpec
    from sleepbench.module import BenchModule

# name -> package. Registering a task is one line here.
TASK_PACKAGES: dict[str, str] = {
    "apnea_ecg": "sleepbench.tasks.apnea_ecg",
    "shhs_spo2": "sleepbench.tasks.shhs_spo2",
    "sleep_edf": "sleepbench.tasks.sleep_edf",
    "psg_audio_osa": "sleepbench.tasks.psg_audio_osa",
    "icbhi_lung": "sleepbench.tasks.icbhi_lung",
    "esc50": "sleepbench.tasks.esc50",
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
        primary_metric: the leaderboard's headline metric key (``"f1"``, without ``test/``).
        headline_metrics: metric keys shown in the task's leaderboard table.
    """

    name: str
    dataset: str
    modality: str
    paper: str
    model: str
    protocols: tuple[str, ...]
    primary_metric: str
    headline_metrics: tuple[str, ...] = ()

    @property
    def data_card(self) -> str:
        """Repository path of the dataset's data card (``data_cards/apnea_ecg.md``)."""
        return f"data_cards/{self.dataset.replace('-', '_')}.md"


def resolve(ref: Any) -> Any:
    """Import ``"package.module:attribute"``; any other value is returned as it is."""
    if isinstance(ref, str) and ":" in ref:
        module, _, attr = ref.partition(":")
        return getattr(importlib.import_module(module), attr)
    return ref


@dataclass(frozen=True)
class Task:
    """A registered task: its spec plus the factories the trainer calls.

    Each factory is given as an object or as an import path ``"package.module:attribute"``
    (resolved on first use).

    Args:
        spec: the task's :class:`TaskSpec`.
        datamodule: the task's :class:`~sleepbench.data.datamodule.CachedDataModule` subclass
            (called as ``datamodule(cfg)``; its ``list_sources`` tells whether data exist).
        build_module: ``(cfg, datamodule) -> BenchModule``.
        write_synthetic: ``(root: Path, cfg) -> manifest dict``; writes a small dataset in the
            real file format under ``root``.
        extra_runs: optional ``(cfg, datamodule, result, run_dir) -> list[result rows]`` for peer baselines
            evaluated on the same test data (e.g. YASA for sleep staging).
        download: optional ``(dest or None, offline_from or None) -> report`` fetching the dataset.
        export: ``(cfg) -> ExportSpec``: the network as ``build_module`` puts it in ``module.net``
            (without pre-trained initialisation) and the shape of one input item, for
            ``sleepbench export`` / ``predict`` / ``serve`` (required: the registry test checks
            it; conventionally ``sleepbench.tasks.<name>.export:export_spec``).
        predict: ``(DeployedModel) -> Predictor``: reads one recording in its real format and
            interprets the network's output, for ``sleepbench predict`` / ``serve`` (required:
            conventionally ``sleepbench.tasks.<name>.predict:<Name>Predictor``).
        package: the task's package (set by :func:`get_task`).
    """

    spec: TaskSpec
    datamodule_ref: Any
    build_module_ref: Any
    write_synthetic_ref: Any
    extra_runs_ref: Any = None
    download_ref: Any = None
    export_ref: Any = None
    predict_ref: Any = None
    package: str = ""

    @property
    def datamodule(self) -> type[CachedDataModule]:
        """The DataModule class."""
        return resolve(self.datamodule_ref)

    @property
    def build_module(self) -> Callable[[DictConfig, CachedDataModule], BenchModule]:
        """The LightningModule factory."""
        return resolve(self.build_module_ref)

    @property
    def write_synthetic(self) -> Callable[[Path, DictConfig], dict[str, Any]]:
        """The synthetic-data writer."""
        return resolve(self.write_synthetic_ref)

    @property
    def extra_runs(self) -> Callable[..., list[dict[str, Any]]] | None:
        """Peer-baseline runner, if any."""
        return resolve(self.extra_runs_ref)

    @property
    def download(self) -> Callable[[Path | None, Path | None], Any] | None:
        """Dataset downloader, if any."""
        return resolve(self.download_ref)

    @property
    def export_spec(self) -> Callable[[DictConfig], ExportSpec] | None:
        """Network and input of deployment (see :class:`~sleepbench.deploy.spec.ExportSpec`)."""
        return resolve(self.export_ref)

    @property
    def predictor(self) -> Callable[..., Any] | None:
        """The predictor class (see :class:`~sleepbench.deploy.predict.Predictor`)."""
        return resolve(self.predict_ref)

    @property
    def folder(self) -> Path:
        """Folder of the task package (holds ``config.yaml`` and ``reference.yaml``)."""
        return task_folder(self.spec.name)


def task_names() -> list[str]:
    """All registered task names, in registry order."""
    return list(TASK_PACKAGES)


def _package(name: str) -> str:
    if name not in TASK_PACKAGES:
        raise KeyError(f"unknown task {name!r}; registered: {', '.join(TASK_PACKAGES)}")
    return TASK_PACKAGES[name]


def task_folder(name: str) -> Path:
    """Folder of task ``name``'s package, found without importing it."""
    spec = importlib.util.find_spec(_package(name))
    if spec is None or not spec.submodule_search_locations:
        raise KeyError(f"task package {_package(name)} not found")
    return Path(next(iter(spec.submodule_search_locations)))


def get_task(name: str) -> Task:
    """Import and return the registered task ``name``.

    Raises:
        KeyError: ``name`` is not registered (the message lists the registered names).
    """
    package = _package(name)
    task: Task = importlib.import_module(f"{package}.task").TASK
    if task.spec.name != name:
        raise RuntimeError(
            f"{package}.task.TASK is named {task.spec.name!r}, registry says {name!r}"
        )
    object.__setattr__(task, "package", package)
    return task


def get_spec(name: str) -> TaskSpec:
    """The :class:`TaskSpec` of task ``name``."""
    return get_task(name).spec
