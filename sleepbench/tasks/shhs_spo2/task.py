"""Registry entry of the shhs_spo2 task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sleepbench.registry import Task, TaskSpec


def write_synthetic(root: Path, cfg: DictConfig) -> dict[str, Any]:
    """Synthetic SHHS nights in NSRR's layout per ``cfg.synthetic``; returns the manifest."""
    from sleepbench.tasks.shhs_spo2.synth import write_synthetic_shhs

    s = cfg.synthetic
    records = write_synthetic_shhs(
        Path(root),
        n_subjects=int(s.n_subjects),
        visits=tuple(s.visits),
        hours=float(s.hours),
        seed=int(s.seed),
    )
    return {
        "records": [
            {
                "record_id": r.record_id,
                "visit": r.visit,
                "nsrrid": r.nsrrid,
                "ahi_a0h3a": r.ahi_a0h3a,
                "ahi_a0h4": r.ahi_a0h4,
                "severity": r.severity,
            }
            for r in records
        ]
    }


def download(dest: Path | None, offline_from: Path | None) -> dict[str, Any]:
    """Explain NSRR access; with ``NSRR_TOKEN`` set, fetch the SHHS files the task reads."""
    from sleepbench.tasks.shhs_spo2.download import download_shhs

    return download_shhs(dest, offline_from)


TASK = Task(
    spec=TaskSpec(
        name="shhs_spo2",
        dataset="shhs",
        modality="overnight SpO2, 1 Hz, first 8 h (28,800 samples)",
        paper=(
            "MSC-Mamba-LSTM with OSA-aware adaptive smoothing for OSA severity grading "
            "(Applied Sciences 15(24), 12990, 2025)"
        ),
        model="MSC-Mamba-LSTM",
        protocols=("shhs1_holdout",),
        primary_metric="acc",
        headline_metrics=(
            "acc",
            "kappa",
            "f1_macro",
            "sens_macro",
            "spec_macro",
            "prec_macro",
            "ahi5_auroc",
            "ahi15_auroc",
            "shhs2_acc",
            "shhs2_kappa",
            "shhs2_f1_macro",
        ),
    ),
    datamodule_ref="sleepbench.tasks.shhs_spo2.data:ShhsSpO2DataModule",
    build_module_ref="sleepbench.tasks.shhs_spo2.module:build_module",
    write_synthetic_ref=write_synthetic,
    download_ref=download,
    export_ref="sleepbench.tasks.shhs_spo2.export:export_spec",
    predict_ref="sleepbench.tasks.shhs_spo2.predict:ShhsSpO2Predictor",
    extra_runs_ref="sleepbench.tasks.shhs_spo2.peer:run_odi_peer",
)
