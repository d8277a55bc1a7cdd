"""Export spec of the apnea_ecg task: one minute of normalised ECG in, one apnea logit out."""

from __future__ import annotations

from omegaconf import DictConfig

from sleepbench.deploy.spec import ExportSpec
from sleepbench.tasks.apnea_ecg.data import FS_HZ, MINUTE_SAMPLES
from sleepbench.tasks.apnea_ecg.module import build_network


def export_spec(cfg: DictConfig) -> ExportSpec:
    """:class:`~sleepbench.tasks.apnea_ecg.network.ApneaECGNet` from ``cfg.model`` (no ESI
    initialisation: the checkpoint's weights replace it) on ``[B, 1, 6000]`` minutes."""
    return ExportSpec(
        net=build_network(cfg),
        item_shape=(1, MINUTE_SAMPLES),
        item_s=MINUTE_SAMPLES / FS_HZ,
        input_doc=(
            "one minute of single-lead ECG at 100 Hz (mV), normalised with the training set's "
            "robust mean and std"
        ),
        output_doc="apnea logit per minute (sigmoid > 0.5: apnea minute)",
    )
