"""Export spec of the shhs_spo2 task: one preprocessed SpO2 night in, severity logits out."""

from __future__ import annotations

from omegaconf import DictConfig

from sleepbench.deploy.spec import ExportSpec
from sleepbench.tasks.shhs_spo2.module import build_network

#: ``task_variant`` -> its classes in output order
CLASSES = {
    "severity4": "normal (AHI < 5), mild, moderate, severe (AHI >= 30)",
    "binary5": "AHI < 5, AHI >= 5",
    "binary15": "AHI < 15, AHI >= 15",
}


def export_spec(cfg: DictConfig) -> ExportSpec:
    """:class:`~sleepbench.tasks.shhs_spo2.network.MSCMambaLSTM` on ``preprocess.n_samples``
    samples at ``preprocess.target_fs_hz``. The Mamba scan is unrolled over that fixed length."""
    n_samples = int(cfg.preprocess.n_samples)
    fs = float(cfg.preprocess.target_fs_hz)
    return ExportSpec(
        net=build_network(cfg),
        item_shape=(1, n_samples),
        item_s=n_samples / fs,
        input_doc=(
            f"one night of SpO2 at {fs:g} Hz, first {n_samples} samples (artefacts interpolated, "
            "smoothed, min-max scaled to [0, 1], zero-padded)"
        ),
        output_doc=(
            f"class logits of task variant {cfg.task_variant}, classes "
            + CLASSES.get(str(cfg.task_variant), "as its TASK_VARIANTS entry")
        ),
    )
