"""Registry entry of the psg_audio_osa task (dual-stream CRNN on PSG-Audio sleep audio, with a
training-free acoustic envelope peer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sleepbench.registry import Task, TaskSpec


def write_synthetic(root: Path, cfg: DictConfig) -> dict[str, Any]:
    """Synthetic PSG-Audio nights (EDF parts + RML) per ``cfg.synthetic``; a manifest dict."""
    from sleepbench.tasks.psg_audio_osa.synth import write_synthetic

    return write_synthetic(Path(root), cfg)


def download(dest: Path | None, offline_from: Path | None) -> dict[str, Any]:
    """Explain where PSG-Audio is published; with ``offline_from``, copy and verify a local copy."""
    from sleepbench.tasks.psg_audio_osa.download import download_psg_audio

    return download_psg_audio(dest, offline_from)


TASK = Task(
    spec=TaskSpec(
        name="psg_audio_osa",
        dataset="psg-audio",
        modality="overnight sleep audio (Mic channel, 16 kHz log-mel + energy), 60-s windows, 80-ms frames",
        paper="Fine-grained and lightweight OSA detection: CRNN for temporal localisation of respiratory events in sleep audio (Diagnostics 2026; EntXuCCMU/CRNN_OSA)",
        model="DualStreamCRNN",
        protocols=("psga_5fold", "psga_holdout"),
        primary_metric="f1_macro",
        headline_metrics=(
            "f1_macro",
            "event_iou",
            "event_f1",
            "agn_event_f1",
            "collar_f1",
            "ahi_pearson_r",
            "ahi_mae",
            "ahi_icc",
            "ahi_severity_kappa",
            "ahi_se@15",
            "ahi_sp@15",
            # Wilson 95 % lower bounds: Se / Sp at 15 rest on a handful of nights per fold
            "ahi_se_low@15",
            "ahi_sp_low@15",
        ),
    ),
    datamodule_ref="sleepbench.tasks.psg_audio_osa.data:PsgAudioDataModule",
    build_module_ref="sleepbench.tasks.psg_audio_osa.module:build_module",
    write_synthetic_ref=write_synthetic,
    extra_runs_ref="sleepbench.tasks.psg_audio_osa.baseline:run_acoustic_baseline",
    download_ref=download,
    export_ref="sleepbench.tasks.psg_audio_osa.export:export_spec",
    predict_ref="sleepbench.tasks.psg_audio_osa.predict:PsgAudioPredictor",
)
