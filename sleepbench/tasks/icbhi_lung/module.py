"""LightningModule of the icbhi_lung task: the shared LSRM module plus the ICBHI challenge scores.

Validation and test report the challenge's specificity, sensitivity and score (SPECS §4.5:
``Sp`` = normal cycles predicted normal, ``Se`` = abnormal cycles predicted as their exact class,
score = their mean) next to accuracy and macro-F1; the test adds the score per recording device
(the known nuisance of this database: nearly all Litt3200 recordings sit in the official test
side). The checkpoint is chosen on the validation ICBHI score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from omegaconf import DictConfig

from sleepbench.io.icbhi import CLASSES, DEVICES
from sleepbench.methods.lsrm.frontend import ICBHI_FRONT_END, FrontEndConfig
from sleepbench.methods.lsrm.module import (
    ClipClassifier,
    LSRMModule,
    build_classifier,
    majority_class,
)
from sleepbench.metrics import GroupedICBHIScore, ICBHIScore

__all__ = ["MODEL_NAME", "IcbhiModule", "build_module", "front_end"]

MODEL_NAME = "LSRM (MRINet + HTS-AT)"


def front_end(cfg: DictConfig) -> FrontEndConfig:
    """HTS-AT's front end at the ICBHI rate (SPECS §4.2): 16 kHz, hop 160, fmax 8 kHz."""
    return FrontEndConfig.from_cfg(cfg, ICBHI_FRONT_END)


class IcbhiModule(LSRMModule):
    """LSRM on respiratory cycles; adds ICBHI Se / Sp / score (overall and per device).

    Args:
        net, cfg, init: as :class:`~sleepbench.methods.lsrm.module.LSRMModule`.
        device_of_record: recording device of each cache record (store position order).
        split_notes: the split's notes (patients on both sides of the official list...).
    """

    monitor = "val/icbhi_score"
    monitor_mode = "max"

    def __init__(
        self,
        net: ClipClassifier,
        cfg: DictConfig,
        device_of_record: Sequence[str],
        split_notes: Mapping[str, str] | None = None,
        init: Mapping[str, Any] | None = None,
        majority_class: int | None = None,
    ) -> None:
        clip_s = float(cfg.preprocess.get("cycle_s", 8.0))
        super().__init__(net, cfg, CLASSES, clip_s, init, majority_class)
        self.val_icbhi = ICBHIScore(len(CLASSES))
        self.test_icbhi = ICBHIScore(len(CLASSES))
        known = list(DEVICES) + sorted(set(device_of_record) - set(DEVICES))
        self.devices = tuple(known)
        self.test_by_device = GroupedICBHIScore(len(CLASSES), self.devices)
        self.register_buffer(
            "record_device",
            torch.tensor([known.index(d) for d in device_of_record], dtype=torch.long),
            persistent=False,
        )
        self.split_notes = dict(split_notes or {})

    def update_extras(
        self, stage: str, probs: torch.Tensor, target: torch.Tensor, batch: dict[str, torch.Tensor]
    ) -> None:
        """ICBHI score of ``stage``; on test also per recording device."""
        if stage == "val":
            self.val_icbhi.update(probs, target)
            return
        self.test_icbhi.update(probs, target)
        self.test_by_device.update(probs, target, self.record_device[batch["record"].long()])

    def extra_scores(self, stage: str) -> dict[str, Any]:
        """``<stage>/icbhi_se|sp|score``; on test also ``test/icbhi_score_<device>`` and
        ``test/n_<device>``. The states are reset after computing."""
        if stage == "val":
            out = {f"val/{k}": v for k, v in self.val_icbhi.compute().items()}
            self.val_icbhi.reset()
            return out
        out = {f"test/{k}": v for k, v in self.test_icbhi.compute().items()}
        out.update({f"test/{k}": v for k, v in self.test_by_device.compute().items()})
        self.test_icbhi.reset()
        self.test_by_device.reset()
        return out

    def protocol_tags(self) -> dict[str, Any]:
        """Shared tags plus whether the split is patient-disjoint."""
        tags = super().protocol_tags()
        both = self.split_notes.get("patients_on_both_sides")
        if both and both != "none":
            tags["not_patient_disjoint"] = f"patients {both}"
        if self.split_notes.get("partial"):
            tags["partial_copy"] = self.split_notes["partial"]
        return tags


def build_module(cfg: DictConfig, dm: Any) -> IcbhiModule:
    """The icbhi_lung module for the data module ``dm`` (set up)."""
    net, init = build_classifier(cfg, len(CLASSES), front_end(cfg))
    return IcbhiModule(net, cfg, dm.device_of_record(), dm.split.notes, init, majority_class(dm))
