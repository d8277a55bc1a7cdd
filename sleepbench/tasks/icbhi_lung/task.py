"""Registry entry of the icbhi_lung task (method 003, LSRM, on ICBHI 2017 respiratory cycles, with
the HTS-AT time branch alone as the peer row)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sleepbench.registry import Task, TaskSpec


def write_synthetic(root: Path, cfg: DictConfig) -> dict[str, Any]:
    """Synthetic ICBHI recordings, cycle files and metadata per ``cfg.synthetic``; a manifest."""
    from sleepbench.config import to_plain
    from sleepbench.tasks.icbhi_lung.synth import write_synthetic

    return write_synthetic(Path(root), to_plain(cfg.get("synthetic") or {}))


def download(dest: Path | None, offline_from: Path | None) -> dict[str, Any]:
    """Explain where ICBHI 2017 is published; with ``offline_from``, copy and verify a local copy."""
    from sleepbench.tasks.icbhi_lung.download import download_icbhi

    return download_icbhi(dest, offline_from)


TASK = Task(
    spec=TaskSpec(
        name="icbhi_lung",
        dataset="icbhi",
        modality="lung sounds (respiratory cycles, 16 kHz, 8 s, 64-mel log spectrogram)",
        paper="Lung Sound Recognition Method Based on Multi-Resolution Interlaced Net and Time-Frequency Feature Enhancement (JasYY6/LSRM, on HTS-AT)",
        model="LSRM (MRINet + HTS-AT)",
        protocols=("icbhi_official", "icbhi_patient_folds"),
        primary_metric="icbhi_score",
        headline_metrics=(
            "icbhi_score",
            "icbhi_se",
            "icbhi_sp",
            "acc",
            "f1_macro",
            "icbhi_score_Litt3200",
            "icbhi_score_Meditron",
            "icbhi_score_AKGC417L",
            "icbhi_score_LittC2SE",
        ),
    ),
    datamodule_ref="sleepbench.tasks.icbhi_lung.data:IcbhiDataModule",
    build_module_ref="sleepbench.tasks.icbhi_lung.module:build_module",
    write_synthetic_ref=write_synthetic,
    extra_runs_ref="sleepbench.methods.lsrm.peer:run_peers",
    download_ref=download,
    export_ref="sleepbench.tasks.icbhi_lung.export:export_spec",
    predict_ref="sleepbench.tasks.icbhi_lung.predict:IcbhiPredictor",
)
