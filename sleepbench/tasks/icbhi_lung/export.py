"""Export spec of the icbhi_lung task: one respiratory cycle (waveform) in, 4 class logits out."""

from __future__ import annotations

from omegaconf import DictConfig

from sleepbench.deploy.spec import ExportSpec
from sleepbench.io.icbhi import CLASSES
from sleepbench.methods.lsrm.export import lsrm_export_spec
from sleepbench.tasks.icbhi_lung.module import front_end


def export_spec(cfg: DictConfig) -> ExportSpec:
    """The LSRM classifier, front end included, on ``preprocess.cycle_s`` seconds of audio."""
    clip_s = float((cfg.get("preprocess") or {}).get("cycle_s", 8.0))
    return lsrm_export_spec(cfg, len(CLASSES), front_end(cfg), clip_s, ", ".join(CLASSES))
