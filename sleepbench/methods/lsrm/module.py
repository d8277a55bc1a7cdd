"""The LightningModule shared by ``icbhi_lung`` and ``esc50``: waveform -> log-mel -> LSRM -> class.

Training follows SPECS §4.4 (HTS-AT's recipe): focal loss on the softmax of the clip logits with
``gamma`` 2 and ``alpha`` 0.5 for every class; AdamW (betas 0.9/0.999, eps 1e-8, weight decay
0.05) with HTS-AT's warm-up ``LambdaLR`` stepped per epoch
(:func:`~sleepbench.methods.lsrm.schedule.htsat_lr_scale`); gradient clipping 1.0 is the
trainer's ``gradient_clip_val``. The checkpoint is chosen on the validation part (``monitor``),
never on the test side.

A task subclasses :class:`LSRMModule` for its own metrics (:meth:`LSRMModule.update_extras`,
:meth:`LSRMModule.extra_scores`); the
network is built once here (:func:`build_classifier`) from ``cfg.model`` and the task's front end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn
from torchmetrics import MeanMetric, MetricCollection

from sleepbench.config import to_plain
from sleepbench.methods.lsrm.frontend import FrontEndConfig, LogMelFrontEnd, SpecAugment
from sleepbench.methods.lsrm.network import LSRMNet
from sleepbench.methods.lsrm.schedule import htsat_lr_scale
from sleepbench.metrics import flatten_metric_dict, make_multiclass_metrics
from sleepbench.module import BenchModule
from sleepbench.nn.losses import FocalLoss

__all__ = ["ClipClassifier", "LSRMModule", "build_classifier", "majority_class", "model_overrides"]

# config keys of ``model`` that are not LSRMNet keyword arguments
_MODEL_KEYS = {"size", "branches", "time_branch_checkpoint"}


class ClipClassifier(nn.Module):
    """Waveform in, clip logits out: :class:`LogMelFrontEnd` ->
    :class:`~sleepbench.methods.lsrm.network.LSRMNet` (with :class:`SpecAugment` after its bn0,
    training only).

    Args:
        frontend: waveform ``[B, samples]`` -> log-mel ``[B, 1, frames, mels]``.
        net: log-mel -> logits ``[B, C]``.
        spec_augment: time/frequency stripes (identity in eval mode), or ``None``.
    """

    def __init__(
        self, frontend: nn.Module, net: LSRMNet, spec_augment: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.frontend = frontend
        self.spec_augment = spec_augment if spec_augment is not None else nn.Identity()
        self.net = net

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``[B, samples]`` float32 at the front end's rate -> logits ``[B, C]``.

        SpecAugment runs inside the network, after its BatchNorm over the mel bins (as HTS-AT):
        a stripe of zeros then means "average level", not 0 dB.
        """
        return self.net(self.frontend(wave), augment=self.spec_augment)

    @property
    def time_branch(self) -> nn.Module | None:
        """The HTS-AT branch (for checkpoint loading), or ``None`` without one."""
        return getattr(self.net, "time_branch", None)


def model_overrides(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``cfg.model`` entries other than size / branches / checkpoint: LSRMNet size overrides
    (``nblocks``, ``base_channels``, ``embed_dim``, ``depths``...), ``None`` values dropped."""
    plain = to_plain(model_cfg) if isinstance(model_cfg, DictConfig) else dict(model_cfg)
    out = {}
    for key, value in plain.items():
        if key in _MODEL_KEYS or value is None:
            continue
        out[key] = tuple(value) if isinstance(value, list) else value
    return out


def build_classifier(
    cfg: DictConfig, n_classes: int, frontend_cfg: FrontEndConfig
) -> tuple[ClipClassifier, dict[str, Any]]:
    """The task's network from ``cfg.model`` / ``cfg.augment``, with the optional HTS-AT init.

    Args:
        cfg: run config; reads ``model.size``, ``model.branches``,
            ``model.time_branch_checkpoint`` (path or null), further ``model.*`` size overrides,
            ``augment.spec_augment`` (bool) and ``augment.time_width``/``time_stripes``/
            ``freq_width``/``freq_stripes``.
        n_classes: output classes.
        frontend_cfg: the task's front end.

    Returns:
        ``(classifier, init)``: ``init`` says how the time branch started (``{"init":
        "scratch"}`` or the checkpoint loader's report with ``init`` = ``"audioset-htsat"``).
    """
    model = cfg.model
    net = LSRMNet(
        n_classes,
        size=str(model.get("size", "paper")),
        branches=str(model.get("branches", "both")),
        n_mels=frontend_cfg.n_mels,
        **model_overrides(model),
    )
    aug = cfg.get("augment") or {}
    spec_augment = None
    if bool(aug.get("spec_augment", True)):
        spec_augment = SpecAugment(
            time_width=int(aug.get("time_width", 64)),
            time_stripes=int(aug.get("time_stripes", 2)),
            freq_width=int(aug.get("freq_width", 8)),
            freq_stripes=int(aug.get("freq_stripes", 2)),
        )
    classifier = ClipClassifier(LogMelFrontEnd(frontend_cfg), net, spec_augment)
    init: dict[str, Any] = {"init": "scratch"}
    ckpt = model.get("time_branch_checkpoint")
    if ckpt:
        from sleepbench.methods.lsrm.checkpoint import load_htsat_checkpoint

        if classifier.time_branch is None:
            raise ValueError(
                "model.time_branch_checkpoint is set but model.branches="
                f"{model.get('branches')!r} has no time branch"
            )
        report = load_htsat_checkpoint(net, Path(str(ckpt)))
        init = {"init": "audioset-htsat", **report}
    return classifier, init


def majority_class(dm: Any) -> int | None:
    """Most frequent class of ``dm``'s training windows (``None`` without a training set)."""
    train = getattr(dm, "train_set", None)
    if train is None or len(train) == 0:
        return None
    return int(np.bincount(train.labels()).argmax())


class LSRMModule(BenchModule):
    """Clip classification with the LSRM network (method 003).

    Args:
        net: a :class:`ClipClassifier`.
        cfg: run config; reads ``loss.gamma``, ``loss.alpha``, ``optim.lr``, ``optim.betas``,
            ``optim.eps``, ``optim.weight_decay``, ``optim.lr_rate``, ``optim.milestones``.
        class_names: names of the classes, in label order.
        clip_s: seconds of signal per clip (for the inference time per hour).
        init: how the time branch was initialised (carried into the result tags).
        majority_class: the training part's most frequent class; ``test/majority_acc`` is the
            accuracy of always predicting it (the bar a model must clear).

    Batches: ``x`` ``[B, samples]`` float32 waveforms, ``y`` ``[B]`` labels, ``record`` ``[B]``.
    """

    monitor = "val/acc"
    monitor_mode = "max"

    def __init__(
        self,
        net: ClipClassifier,
        cfg: DictConfig,
        class_names: Sequence[str],
        clip_s: float,
        init: Mapping[str, Any] | None = None,
        majority_class: int | None = None,
    ) -> None:
        super().__init__(net, cfg, window_s=clip_s)
        self.majority_class = majority_class
        self.test_majority = MeanMetric()
        self.class_names = tuple(class_names)
        self.n_classes = len(self.class_names)
        loss = cfg.get("loss") or {}
        alpha = float(loss.get("alpha", 0.5))
        # SPECS §4.4: the float-alpha constructor gives every class the weight alpha
        self.loss_fn = FocalLoss(
            gamma=float(loss.get("gamma", 2.0)), weight=[alpha] * self.n_classes
        )
        self.init = dict(init or {"init": "scratch"})
        self.val_metrics = self._metrics("val/")
        self.test_metrics = self._metrics("test/")

    def _metrics(self, prefix: str) -> MetricCollection:
        return make_multiclass_metrics(
            self.n_classes,
            prefix,
            class_names=self.class_names,
            auroc=False,
            per_class=self.n_classes <= 10,
        )

    # ---- steps -------------------------------------------------------------------------------
    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch["x"])
        y = batch["y"].long()
        self.log("val/loss", self.loss_fn(logits, y), prog_bar=True, batch_size=len(y))
        probs = logits.float().softmax(-1)
        self.val_metrics.update(probs, y)
        self.update_extras("val", probs, y, batch)

    def on_validation_epoch_end(self) -> None:
        scores = flatten_metric_dict({**self.val_metrics.compute(), **self.extra_scores("val")})
        self.log_dict(scores, prog_bar=False)
        self.val_metrics.reset()

    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        self.test_metrics.reset()

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self.timed_forward(batch["x"])
        probs = logits.float().softmax(-1)
        y = batch["y"].long()
        self.test_metrics.update(probs, y)
        if self.majority_class is not None:
            self.test_majority.update((y == self.majority_class).float())
        self.update_extras("test", probs, y, batch)

    def update_extras(
        self, stage: str, probs: torch.Tensor, target: torch.Tensor, batch: dict[str, torch.Tensor]
    ) -> None:
        """Hook for task-specific metrics of ``stage`` (``"val"`` / ``"test"``); none by default."""

    def extra_scores(self, stage: str) -> dict[str, Any]:
        """Task-specific scores of ``stage`` (keys with the ``stage/`` prefix), computed and reset
        at the end of the epoch; none by default."""
        return {}

    def on_test_epoch_end(self) -> None:
        computed = self.test_metrics.compute()
        confmat = computed.get("test/confmat")
        scores = {**computed, **self.extra_scores("test")}
        if self.majority_class is not None:
            scores["test/majority_acc"] = self.test_majority.compute()
            self.test_majority.reset()
        self.log_dict(flatten_metric_dict(scores))  # the confusion matrix (2-D) is dropped
        if confmat is not None:
            self.test_artifacts["confusion_matrix"] = {
                "classes": list(self.class_names),
                "rows_are": "reference",
                "counts": confmat.long().cpu().tolist(),
            }
        self.test_metrics.reset()

    # ---- optimisation ------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW + HTS-AT's warm-up LambdaLR (per epoch)."""
        optim = self.cfg.optim
        opt = torch.optim.AdamW(
            self.parameters(),
            lr=float(optim.lr),
            betas=tuple(float(b) for b in optim.get("betas", (0.9, 0.999))),
            eps=float(optim.get("eps", 1e-8)),
            weight_decay=float(optim.get("weight_decay", 0.05)),
        )
        rates = tuple(float(r) for r in optim.get("lr_rate", (0.02, 0.05, 0.1)))
        milestones = tuple(int(m) for m in optim.get("milestones", (10, 20, 30)))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda epoch: htsat_lr_scale(epoch, rates, milestones)
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    def protocol_tags(self) -> dict[str, Any]:
        """Branches, size and the time branch's initialisation (pre-training source)."""
        model = self.cfg.model
        tags = {
            "branches": str(model.get("branches", "both")),
            "size": str(model.get("size", "paper")),
            "pretraining": self.init.get("init", "scratch"),
        }
        if self.init.get("source"):
            tags["pretraining"] += f" ({Path(str(self.init['source'])).name})"
        return tags
