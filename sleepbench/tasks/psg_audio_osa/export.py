"""Export spec of the psg_audio_osa task: a 60-s window of log-mel + energy in, per-frame event
logits out."""

from __future__ import annotations

from omegaconf import DictConfig

from sleepbench.deploy.spec import ExportSpec
from sleepbench.signal.mel import FRAMES_PER_S, N_MELS
from sleepbench.tasks.psg_audio_osa.data import LABELS_PER_WINDOW, MEL_PER_LABEL
from sleepbench.tasks.psg_audio_osa.module import build_network


def export_spec(cfg: DictConfig) -> ExportSpec:
    """:class:`~sleepbench.tasks.psg_audio_osa.network.DualStreamCRNN` at ``model.size`` on one
    60-s window (the BiLSTM runs over its fixed 750 frames)."""
    frames = LABELS_PER_WINDOW * MEL_PER_LABEL
    return ExportSpec(
        net=build_network(cfg),
        item_shape=(N_MELS + 1, frames),
        item_s=frames / FRAMES_PER_S,
        input_doc=(
            f"one 60-s window at {FRAMES_PER_S} frames/s of the 16-kHz audio: rows "
            f"0-{N_MELS - 1} its log-mel dB z-scored in the window, row {N_MELS} its energy "
            "profile (mean dB over the bins) z-scored in the window"
        ),
        output_doc="logits per 80-ms frame (frames x classes), classes normal, hypopnea, apnea",
    )
