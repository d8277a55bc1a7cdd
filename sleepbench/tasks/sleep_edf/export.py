"""Export spec of the sleep_edf task: a sequence of 30-s epochs of EEG + EOG in, stage logits
per epoch out."""

from __future__ import annotations

from omegaconf import DictConfig

from sleepbench.deploy.spec import ExportSpec
from sleepbench.tasks.sleep_edf.data import CLASS_NAMES, EPOCH_S
from sleepbench.tasks.sleep_edf.module import build_network


def export_spec(cfg: DictConfig) -> ExportSpec:
    """:class:`~sleepbench.tasks.sleep_edf.network.TinyUStaging` on ``data.seq_epochs`` epochs at
    ``preprocess.fs_hz`` (the sequence length is fixed in the export)."""
    fs = float(cfg.preprocess.fs_hz)
    n_epochs = int(cfg.data.seq_epochs)
    return ExportSpec(
        net=build_network(cfg),
        item_shape=(2, n_epochs * round(EPOCH_S * fs)),
        item_s=n_epochs * EPOCH_S,
        input_doc=(
            f"{n_epochs} consecutive 30-s epochs at {fs:g} Hz of one EEG derivation (Fpz-Cz or "
            "Pz-Oz) and the horizontal EOG, in that channel order, each robust-scaled over the "
            "night ((x - median) / IQR)"
        ),
        output_doc="stage logits (classes x epochs), classes " + ", ".join(CLASS_NAMES),
    )
