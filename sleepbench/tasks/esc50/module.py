"""LightningModule of the esc50 task: the shared LSRM module with HTS-AT's ESC-50 front end.

ESC-50 reports accuracy per fold (each ``esc50_5fold`` run is one fold; the leaderboard shows the
mean and spread over folds) and macro-F1; the checkpoint is chosen on the validation accuracy of
source recordings carved out of the training folds.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from sleepbench.methods.lsrm.frontend import ESC50_FRONT_END, FrontEndConfig
from sleepbench.methods.lsrm.module import LSRMModule, build_classifier, majority_class
from sleepbench.tasks.esc50.data import N_CLASSES

__all__ = ["MODEL_NAME", "build_module", "class_names", "front_end"]

MODEL_NAME = "LSRM (MRINet + HTS-AT)"


def front_end(cfg: DictConfig) -> FrontEndConfig:
    """HTS-AT's ESC-50 front end (SPECS §4.2): 32 kHz, window 1024, hop 320, 64 mels 50-14,000 Hz."""
    return FrontEndConfig.from_cfg(cfg, ESC50_FRONT_END)


def class_names(dm: Any) -> list[str]:
    """The 50 category names in target order, from the cached clips (``class_<k>`` if unseen)."""
    names = {int(r.attrs["target"]): str(r.attrs["category"]) for r in dm.store.records}
    return [names.get(k, f"class_{k}") for k in range(N_CLASSES)]


class Esc50Module(LSRMModule):
    """LSRM on ESC-50 clips; tags the official fold of the run."""

    def __init__(self, *args: Any, official_fold: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.official_fold = official_fold

    def protocol_tags(self) -> dict[str, Any]:
        """Shared tags plus the official test fold (``esc50_5fold``) or the non-official tag."""
        tags = super().protocol_tags()
        if self.official_fold:
            tags["test_fold"] = self.official_fold
        elif str(self.cfg.protocol) == "esc50_grouped_holdout":
            tags["non_official"] = True
        return tags


def build_module(cfg: DictConfig, dm: Any) -> Esc50Module:
    """The esc50 module for the data module ``dm`` (set up)."""
    net, init = build_classifier(cfg, N_CLASSES, front_end(cfg))
    clip_s = float(cfg.preprocess.get("clip_s", 10.0))
    return Esc50Module(
        net,
        cfg,
        class_names(dm),
        clip_s,
        init,
        majority_class(dm),
        official_fold=dm.split.notes.get("official_fold"),
    )
