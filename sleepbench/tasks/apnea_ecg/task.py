"""Registry entry of the apnea_ecg task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sleepbench.registry import Task, TaskSpec


def write_synthetic(root: Path, cfg: DictConfig) -> dict[str, Any]:
    """Synthetic Apnea-ECG records (WFDB + .apn + answer files) per ``cfg.synthetic``."""
    from sleepbench.tasks.apnea_ecg.synth import write_synthetic_apnea_ecg

    s = cfg.synthetic
    return write_synthetic_apnea_ecg(
        Path(root),
        n_released=int(s.n_released),
        n_withheld=int(s.n_withheld),
        minutes=int(s.minutes),
        seed=int(s.seed),
    )


def download(dest: Path | None, offline_from: Path | None) -> dict[str, Any]:
    """PhysioNet Apnea-ECG 1.0.0, verified against its SHA256SUMS.txt."""
    from sleepbench.config import default_data_root
    from sleepbench.download import physionet_download

    return physionet_download(
        "apnea-ecg", "1.0.0", dest or default_data_root("apnea-ecg"), offline_from=offline_from
    )


TASK = Task(
    spec=TaskSpec(
        name="apnea_ecg",
        dataset="apnea-ecg",
        modality="single-lead ECG, 100 Hz, 60-s windows",
        paper="SICSA apnea detection with the ESI ConvNeXt-V2 ECG backbone (psgroup730/SICSA; Yu et al., TMLR 2024)",
        model="ESI-ConvNeXtV2-BiLSTM",
        protocols=("official", "parity"),
        primary_metric="f1",
        headline_metrics=(
            "f1",
            "acc",
            "sens",
            "spec",
            "auroc",
            "mcc",
            "index_pearson_r",
            "class_abc_acc",
        ),
    ),
    datamodule_ref="sleepbench.tasks.apnea_ecg.data:ApneaECGDataModule",
    build_module_ref="sleepbench.tasks.apnea_ecg.module:build_module",
    write_synthetic_ref=write_synthetic,
    download_ref=download,
    export_ref="sleepbench.tasks.apnea_ecg.export:export_spec",
    predict_ref="sleepbench.tasks.apnea_ecg.predict:ApneaECGPredictor",
    extra_runs_ref="sleepbench.tasks.apnea_ecg.peer:run_classical_peer",
)
