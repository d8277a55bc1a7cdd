"""Registry entry of the esc50 task (method 003's second benchmark: ESC-50 environmental sounds,
with the HTS-AT time branch alone as the peer row)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sleepbench.registry import Task, TaskSpec


def write_synthetic(root: Path, cfg: DictConfig) -> dict[str, Any]:
    """Synthetic ESC-50 clips and ``meta/esc50.csv`` per ``cfg.synthetic``; a manifest."""
    from sleepbench.config import to_plain
    from sleepbench.tasks.esc50.synth import write_synthetic

    return write_synthetic(Path(root), to_plain(cfg.get("synthetic") or {}))


def download(dest: Path | None, offline_from: Path | None, fetch: bool = False) -> dict[str, Any]:
    """Explain where ESC-50 is published; with ``offline_from``, copy and verify a local copy;
    with ``fetch``, download the archive over HTTP and verify it."""
    from sleepbench.tasks.esc50.download import download_esc50

    return download_esc50(dest, offline_from, fetch=fetch)


TASK = Task(
    spec=TaskSpec(
        name="esc50",
        dataset="esc50",
        modality="environmental sound clips (5 s, 32 kHz, padded to 10 s, 64-mel log spectrogram)",
        paper="Lung Sound Recognition Method Based on Multi-Resolution Interlaced Net and Time-Frequency Feature Enhancement (JasYY6/LSRM), ESC-50 benchmark",
        model="LSRM (MRINet + HTS-AT)",
        protocols=("esc50_5fold", "esc50_grouped_holdout"),
        primary_metric="acc",
        headline_metrics=("acc", "f1_macro"),
    ),
    datamodule_ref="sleepbench.tasks.esc50.data:Esc50DataModule",
    build_module_ref="sleepbench.tasks.esc50.module:build_module",
    write_synthetic_ref=write_synthetic,
    extra_runs_ref="sleepbench.methods.lsrm.peer:run_peers",
    download_ref=download,
    export_ref="sleepbench.tasks.esc50.export:export_spec",
    predict_ref="sleepbench.tasks.esc50.predict:Esc50Predictor",
)
