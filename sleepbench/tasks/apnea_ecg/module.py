"""LightningModule of the apnea_ecg task: BCE training, gradual unfreezing, clinical metrics.

The test metrics are :class:`~sleepbench.tasks.apnea_ecg.scoring.MinuteScoring`, which the
classical peer (:mod:`sleepbench.tasks.apnea_ecg.peer`) scores through as well."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from lightning.pytorch.utilities.types import LRSchedulerConfig
from omegaconf import DictConfig
from torch import nn

from sleepbench.metrics import flatten_metric_dict
from sleepbench.metrics.binary import BinaryScreeningMetrics
from sleepbench.module import BenchModule
from sleepbench.tasks.apnea_ecg.network import ApneaECGNet, load_esi_checkpoint
from sleepbench.tasks.apnea_ecg.scoring import CLASS_CODE, MinuteScoring

__all__ = ["CLASS_CODE", "ApneaECGModule", "build_module", "build_network", "stage_names"]


class ApneaECGModule(BenchModule):
    """Per-minute apnea detection (method 001).

    Args:
        net: :class:`ApneaECGNet`.
        cfg: run config; reads ``optim.*`` and ``model.unfreeze``.
        pretrained: what initialised the backbone (``"esi:<file>"`` or ``"random-init"``).

    Gradual unfreezing (SPECS §2.4): the backbone starts frozen; at each epoch listed in
    ``model.unfreeze.epochs`` the stages in ``model.unfreeze.stages`` join the optimiser and a new
    AdamW (``optim.unfreeze_lr``) is created with a fresh cosine scheduler attached to it (upstream
    forgot to re-attach the scheduler; the intended behaviour is reproduced).

    Freezing is done by optimiser membership, not ``requires_grad``: DDP registers the parameters
    that need gradients once, when it wraps the model, so parameters unfrozen later would never be
    all-reduced and ranks would drift apart. Frozen parameters get gradients (the lead projection
    before the backbone needs the backward pass through it anyway) but are never stepped.
    """

    monitor = "val/loss"  # upstream keeps the checkpoint with the lowest validation loss
    monitor_mode = "min"

    def __init__(self, net: ApneaECGNet, cfg: DictConfig, pretrained: str = "random-init") -> None:
        super().__init__(net, cfg, window_s=60.0)
        self.pretrained = pretrained
        self.loss_fn = nn.BCEWithLogitsLoss()  # upstream: no pos_weight
        self.val_metrics = BinaryScreeningMetrics(prefix="val/", confmat=False)
        self.test_scoring = MinuteScoring(tuple(cfg.metrics.index_cutoffs))
        self.unfreeze_schedule: dict[int, list[int]] = {
            int(e): list(s) for e, s in zip(cfg.model.unfreeze.epochs, cfg.model.unfreeze.stages)
        }
        self.unfrozen: list[int] = (
            [] if cfg.model.unfreeze.enabled else list(range(len(net.backbone.stages)))
        )

    # ---- parameters ------------------------------------------------------------------------
    def optimised_parameters(self) -> list[nn.Parameter]:
        """Lead projection + head + the unfrozen backbone stages (upstream's name rule)."""
        prefixes = tuple(f"backbone.stages.{i}." for i in self.unfrozen)
        out = []
        for name, p in self.net.named_parameters():
            if not p.requires_grad:  # ESI's unused classifier head
                continue
            if not name.startswith("backbone.") or name.startswith(prefixes):
                out.append(p)
        return out

    def n_params(self) -> tuple[int, int]:
        """(total, currently optimised) parameter counts."""
        total = sum(p.numel() for p in self.net.parameters())
        return total, sum(p.numel() for p in self.optimised_parameters())

    def _optimizer(self, lr: float) -> tuple[torch.optim.Optimizer, Any]:
        o = self.cfg.optim
        opt = torch.optim.AdamW(
            self.optimised_parameters(), lr=lr, weight_decay=float(o.weight_decay)
        )
        sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            opt, T_0=int(o.t0), T_mult=int(o.t_mult), eta_min=float(o.eta_min)
        )
        return opt, sched

    def configure_optimizers(self) -> dict[str, Any]:
        opt, sched = self._optimizer(float(self.cfg.optim.lr))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    def on_train_epoch_start(self) -> None:
        stages = self.unfreeze_schedule.get(self.current_epoch)
        if not self.cfg.model.unfreeze.enabled or stages is None:
            return
        self.unfrozen = sorted(set(self.unfrozen) | set(stages))
        opt, sched = self._optimizer(float(self.cfg.optim.unfreeze_lr))
        # the strategy's setter re-wraps the optimiser (LightningOptimizer) for this trainer
        self.trainer.strategy.optimizers = [opt]
        self.trainer.strategy.lr_scheduler_configs = [LRSchedulerConfig(sched, interval="epoch")]
        self.log("unfrozen_stages", float(len(self.unfrozen)), rank_zero_only=True)

    # ---- steps -----------------------------------------------------------------------------
    def loss_target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """BCE compares logits with float 0/1 targets."""
        return batch["y"].float()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch["x"])
        loss = self.loss_fn(logits, batch["y"].float())
        self.log(
            "val/loss", loss, on_epoch=True, prog_bar=True, sync_dist=True, batch_size=len(logits)
        )
        self.val_metrics.update(torch.sigmoid(logits.float()), batch["y"].long())

    def on_validation_epoch_end(self) -> None:
        self.log_dict(flatten_metric_dict(self.val_metrics.compute()))
        self.val_metrics.reset()

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        probs = torch.sigmoid(self.timed_forward(batch["x"]).float())
        self.test_scoring.update(probs, batch["y"].long(), batch["record"], self._minute_of(batch))

    def _minute_of(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        index = self.trainer.datamodule.test_set.index
        return torch.as_tensor(
            index.y_start[batch["window"].cpu().numpy()], device=batch["x"].device
        )

    def on_test_epoch_end(self) -> None:
        store = self.trainer.datamodule.store
        scores, per_record, confmat = self.test_scoring.compute(
            [r.record_id for r in store.records]
        )
        self.log_dict(scores)
        self.test_artifacts["per_record"] = per_record
        if confmat is not None:
            self.test_artifacts["confusion_matrix"] = {"rows=target,cols=pred": confmat.tolist()}
        self.test_scoring.reset()

    def protocol_tags(self) -> dict[str, Any]:
        """Facts that change the numbers: backbone initialisation, model size, minute alignment."""
        return {
            "backbone": self.pretrained,
            "size": self.cfg.model.size,
            "head_input": self.cfg.model.head_input,
            "alignment": "upstream-misaligned" if self.cfg.protocol == "parity" else "corrected",
        }


def build_network(cfg: DictConfig) -> ApneaECGNet:
    """:class:`ApneaECGNet` from ``cfg.model``, randomly initialised."""
    return ApneaECGNet(
        size=str(cfg.model.size),
        drop_path_rate=float(cfg.model.drop_path_rate),
        head_input=str(cfg.model.head_input),
    )


def build_module(cfg: DictConfig, datamodule: Any) -> ApneaECGModule:
    """Network from ``cfg.model`` (+ ESI weights when ``model.backbone_checkpoint`` is set)."""
    net = build_network(cfg)
    pretrained = "random-init"
    if cfg.model.get("backbone_checkpoint"):
        report = load_esi_checkpoint(net, cfg.model.backbone_checkpoint)
        pretrained = f"esi:{report.get('loaded', 0)} tensors"
    return ApneaECGModule(net, cfg, pretrained)


def stage_names(net: ApneaECGNet, stages: Sequence[int]) -> list[str]:
    """Backbone parameter names that unfreezing ``stages`` adds (for tests and logs)."""
    prefixes = tuple(f"backbone.stages.{i}." for i in stages)
    return [n for n, _ in net.named_parameters() if n.startswith(prefixes)]
