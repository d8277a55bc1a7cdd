"""Registry entry of the sleep_edf task (TinyUStaging on Sleep-EDF, YASA as the peer baseline)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sleepbench.registry import Task, TaskSpec


def write_synthetic(root: Path, cfg: DictConfig) -> dict[str, Any]:
    """Synthetic sleep-cassette nights (PSG EDF + EDF+ hypnogram) per ``cfg.synthetic``."""
    from sleepbench.tasks.sleep_edf.synth import write_synthetic_sleep_edf

    s = cfg.synthetic
    nights = write_synthetic_sleep_edf(
        Path(root),
        n_subjects=int(s.n_subjects),
        nights_per_subject=int(s.nights_per_subject),
        minutes=float(s.minutes),
        seed=int(s.seed),
    )
    return {
        "records": [
            {
                "record_id": n.record_id,
                "subject_id": n.subject_id,
                "night": n.night,
                "n_epochs": n.n_epochs,
                "stage_counts": n.stage_counts,
                "psg": n.psg_path.name,
                "hypnogram": n.hypnogram_path.name,
            }
            for n in nights
        ]
    }


def sleep_edf_wanted(rel: str) -> bool:
    """Files of ``sleep-edfx`` 1.0.0 worth fetching: recordings, hypnograms, subject tables."""
    return rel.endswith((".edf", ".xls")) or rel in ("RECORDS", "RECORDS-v1")


def download(
    dest: Path | None,
    offline_from: Path | None,
    wanted: Callable[[str], bool] = sleep_edf_wanted,
) -> dict[str, Any]:
    """PhysioNet Sleep-EDF Expanded (``sleep-edfx`` 1.0.0, ~8 GB), verified by its SHA256SUMS.txt.

    Args:
        dest: target folder (default ``$SLEEPBENCH_DATA/sleep-edf``).
        offline_from: local folder with the files and ``SHA256SUMS.txt`` to copy from instead.
        wanted: predicate on the database's relative paths (default: every file).

    Returns:
        The :func:`~sleepbench.download.sync_verified` report (kept / fetched / failed).
    """
    from sleepbench.config import default_data_root
    from sleepbench.download import physionet_download

    return physionet_download(
        "sleep-edfx",
        "1.0.0",
        dest or default_data_root("sleep-edf"),
        wanted=wanted,
        offline_from=offline_from,
    )


TASK = Task(
    spec=TaskSpec(
        name="sleep_edf",
        dataset="sleep-edf",
        modality="one EEG (Fpz-Cz or Pz-Oz) + horizontal EOG, 128 Hz, 31 x 30-s epochs",
        paper="TinyUStaging: U-Net with SE and CSJA attention (ljyljy/TinyUStaging); U-Time (Perslev et al., NeurIPS 2019)",
        model="TinyUStaging",
        protocols=(
            "sedf20_5fold",
            "sedf20_20fold",
            "sedf78_5fold",
            "sedf78_10fold",
            "sedfst_5fold",
        ),
        primary_metric="kappa",
        headline_metrics=(
            "kappa",
            "f1_macro",
            "acc",
            "subj_kappa",
            "subj_f1_macro",
            "f1_W",
            "f1_N1",
            "f1_N2",
            "f1_N3",
            "f1_REM",
        ),
    ),
    datamodule_ref="sleepbench.tasks.sleep_edf.data:SleepEDFDataModule",
    build_module_ref="sleepbench.tasks.sleep_edf.module:build_module",
    write_synthetic_ref=write_synthetic,
    extra_runs_ref="sleepbench.tasks.sleep_edf.yasa_baseline:run_yasa",
    download_ref=download,
    export_ref="sleepbench.tasks.sleep_edf.export:export_spec",
    predict_ref="sleepbench.tasks.sleep_edf.predict:SleepEDFPredictor",
)
