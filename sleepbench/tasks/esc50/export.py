"""Export spec of the esc50 task: one clip (waveform) in, 50 class logits out."""

from __future__ import annotations

from omegaconf import DictConfig

from sleepbench.deploy.spec import ExportSpec
from sleepbench.methods.lsrm.export import lsrm_export_spec
from sleepbench.tasks.esc50.data import N_CLASSES
from sleepbench.tasks.esc50.module import front_end


def export_spec(cfg: DictConfig) -> ExportSpec:
    """The LSRM classifier, front end included, on ``preprocess.clip_s`` seconds of audio."""
    clip_s = float((cfg.get("preprocess") or {}).get("clip_s", 10.0))
    classes = f"the {N_CLASSES} ESC-50 categories in target order (meta/esc50.csv)"
    return lsrm_export_spec(cfg, N_CLASSES, front_end(cfg), clip_s, classes)
