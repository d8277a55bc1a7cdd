"""LightningModule of the shhs_spo2 task: cross-entropy, Adam + plateau schedule, severity metrics.

Test metrics (SPECS §3.5), for the SHHS1 test set under ``test/`` and for SHHS2, the second test
set scored on the same model, under ``test/shhs2_`` (same row, same names otherwise):

- ``task_variant: severity4``: overall ``acc``; ``kappa``; one-vs-rest ``sens_/spec_/prec_/f1_``
  per class (``normal``, ``mild``, ``moderate``, ``severe``) and their ``*_macro`` means;
  ``ovr_acc_macro``; ``auroc_<class>`` (one-vs-rest); plus the binary views *collapsed* from the
  4-class probabilities, ``ahi5_*`` and ``ahi15_*`` (``acc sens spec ppv npv f1 mcc auroc``;
  P(AHI >= 5) = P(mild) + P(moderate) + P(severe)).
- ``binary5`` / ``binary15`` (a model *retrained* on binary labels): ``ahi5_*`` / ``ahi15_*``.

The confusion matrices and a per-night table (AHI, target, prediction, probabilities) are saved
as run artifacts. The SHHS2 key prefix is ``test/shhs2_`` rather than a separate ``test_shhs2/``
namespace so that the leaderboard (which reads ``test/<metric>``) and the reference file (bare
metric names, ``shhs2_acc``) line up without special cases.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn
from torchmetrics.aggregation import CatMetric

from sleepbench.metrics import flatten_metric_dict
from sleepbench.metrics.binary import BinaryScreeningMetrics
from sleepbench.metrics.multiclass import make_multiclass_metrics
from sleepbench.metrics.severity import SEVERITY_NAMES, collapse_probs_at_cutoff
from sleepbench.module import BenchModule
from sleepbench.tasks.shhs_spo2.data import TASK_VARIANTS
from sleepbench.tasks.shhs_spo2.network import MSCMambaLSTM

__all__ = ["BINARY_CUTOFFS", "ShhsSpO2Module", "build_module"]

#: AHI cut-off (events/h) -> first severity class counted positive
BINARY_CUTOFFS = {5: 1, 15: 2}
#: test sets: visit number -> metric-name infix
TEST_SETS = {1: "", 2: "shhs2_"}


def _test_metrics(prefix: str, variant: str) -> nn.ModuleDict:
    """All test metrics of one test set (see the module docstring)."""
    _, cutoff_class = TASK_VARIANTS[variant]
    metrics: dict[str, Any] = {}
    if cutoff_class is None:
        metrics["severity"] = make_multiclass_metrics(4, prefix, class_names=SEVERITY_NAMES)
        for ahi in BINARY_CUTOFFS:
            metrics[f"ahi{ahi}"] = BinaryScreeningMetrics(prefix=f"{prefix}ahi{ahi}_")
    else:
        ahi = next(a for a, c in BINARY_CUTOFFS.items() if c == cutoff_class)
        metrics[f"ahi{ahi}"] = BinaryScreeningMetrics(prefix=f"{prefix}ahi{ahi}_")
    return nn.ModuleDict(metrics)


def compute_test_set(metrics: nn.ModuleDict, visit: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Scores (flat ``test/...`` names) and confusion matrices of one test set's updated
    metrics (:func:`_test_metrics`); ``visit`` 1 is SHHS1, 2 SHHS2 (names the matrices).
    The model's test epoch and the ODI peer both report through it."""
    name = "shhs1_test" if visit == 1 else "shhs2"
    scores: dict[str, float] = {}
    confmats: dict[str, Any] = {}
    for key, metric in metrics.items():
        out = metric.compute()
        for k, value in out.items():
            if k.endswith("confmat"):
                labels = SEVERITY_NAMES if key == "severity" else ("neg", "pos")
                confmats[f"{name}/{key}"] = {
                    "labels": list(labels),
                    "rows=target,cols=pred": value.tolist(),
                }
        scores.update(flatten_metric_dict({k: x for k, x in out.items() if "confmat" not in k}))
    return scores, confmats


class ShhsSpO2Module(BenchModule):
    """OSA severity (4 classes) or a binary AHI cut-off from one night of SpO2 (method 002).

    Args:
        net: :class:`~sleepbench.tasks.shhs_spo2.network.MSCMambaLSTM` with 4 or 2 outputs.
        cfg: run config; reads ``task_variant``, ``optim.*``, ``preprocess.n_samples`` /
            ``target_fs_hz`` (the window length for latency per hour).
        record_visit: visit number (1 or 2) of every cached record, by cache position: routes
            each test night to the SHHS1 or the SHHS2 metrics.
        test_sets: visit numbers that have test nights (metrics of absent sets are not logged).
        record_info: optional per cache position ``(record id, AHI)`` for the per-night table.

    The checkpoint with the lowest validation loss is kept ([ASSUMPTION] SPECS §3.4).
    """

    monitor = "val/loss"
    monitor_mode = "min"

    def __init__(
        self,
        net: nn.Module,
        cfg: DictConfig,
        record_visit: np.ndarray,
        test_sets: tuple[int, ...] = (1, 2),
        record_info: list[tuple[str, float]] | None = None,
    ) -> None:
        window_s = float(cfg.preprocess.n_samples) / float(cfg.preprocess.target_fs_hz)
        super().__init__(net, cfg, window_s=window_s)
        self.task_variant = str(cfg.task_variant)
        if self.task_variant not in TASK_VARIANTS:
            raise ValueError(f"task_variant {self.task_variant!r} unknown")
        self.n_outputs, self.cutoff_class = TASK_VARIANTS[self.task_variant]
        self.loss_fn = nn.CrossEntropyLoss()
        # not a checkpointed weight: rebuilt from the cache each run
        self.register_buffer(
            "record_visit", torch.as_tensor(record_visit, dtype=torch.long), persistent=False
        )
        self.test_sets = tuple(test_sets)
        self.record_info = record_info or []
        if self.cutoff_class is None:
            self.val_metrics = make_multiclass_metrics(4, "val/", auroc=False, per_class=False)
        else:
            self.val_metrics = BinaryScreeningMetrics(prefix="val/", confmat=False)
        self.test_metrics = nn.ModuleDict(
            {str(v): _test_metrics(f"test/{TEST_SETS[v]}", self.task_variant) for v in TEST_SETS}
        )
        self.test_units = nn.ModuleDict(
            {
                k: CatMetric()
                for k in ("record", "target", *(f"p{i}" for i in range(self.n_outputs)))
            }
        )

    # ---- optimisation ----------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        """Adam (lr 0.01) with ReduceLROnPlateau on the validation loss (factor 0.5, patience 5,
        floor 1e-4), as the paper."""
        o = self.cfg.optim
        opt = torch.optim.Adam(
            self.net.parameters(), lr=float(o.lr), weight_decay=float(o.weight_decay)
        )
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt,
            mode="min",
            factor=float(o.plateau.factor),
            patience=int(o.plateau.patience),
            min_lr=float(o.plateau.min_lr),
        )
        return {
            "optimizer": opt,
            "lr_scheduler": {"scheduler": sched, "monitor": "val/loss", "interval": "epoch"},
        }

    # ---- steps -----------------------------------------------------------------------------
    def _probs(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.float(), dim=-1)

    def _metric_input(self, probs: torch.Tensor) -> torch.Tensor:
        """Class probabilities for multiclass metrics, P(positive) for binary ones."""
        return probs if self.cutoff_class is None else probs[:, 1]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch["x"])
        y = batch["y"].long()
        loss = self.loss_fn(logits, y)
        self.log(
            "val/loss", loss, on_epoch=True, prog_bar=True, sync_dist=True, batch_size=len(logits)
        )
        self.val_metrics.update(self._metric_input(self._probs(logits)), y)

    def on_validation_epoch_end(self) -> None:
        self.log_dict(flatten_metric_dict(self.val_metrics.compute()))
        self.val_metrics.reset()

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        probs = self._probs(self.timed_forward(batch["x"])).detach()
        y = batch["y"].long()
        visit = self.record_visit[batch["record"]]
        for v in self.test_sets:
            sel = visit == v
            if not bool(sel.any()):
                continue
            self._update_set(self.test_metrics[str(v)], probs[sel], y[sel])
        self.test_units["record"].update(batch["record"].float())
        self.test_units["target"].update(y.float())
        for i in range(self.n_outputs):
            self.test_units[f"p{i}"].update(probs[:, i])

    def _update_set(self, metrics: nn.ModuleDict, probs: torch.Tensor, y: torch.Tensor) -> None:
        if self.cutoff_class is None:
            metrics["severity"].update(probs, y)
            for ahi, cls in BINARY_CUTOFFS.items():
                metrics[f"ahi{ahi}"].update(collapse_probs_at_cutoff(probs, cls), (y >= cls).long())
        else:
            (binary,) = metrics.values()
            binary.update(probs[:, 1], y)

    def on_test_epoch_end(self) -> None:
        scores: dict[str, float] = {}
        confmats: dict[str, Any] = {}
        for v in self.test_sets:
            set_scores, set_confmats = compute_test_set(self.test_metrics[str(v)], v)
            scores.update(set_scores)
            confmats.update(set_confmats)
        self.log_dict(scores)
        self.test_artifacts["confusion_matrix"] = confmats
        self.test_artifacts["per_record"] = self._per_record()
        for metrics in self.test_metrics.values():
            for metric in metrics.values():
                metric.reset()
        for m in self.test_units.values():
            m.reset()

    def _per_record(self) -> list[dict[str, Any]]:
        """One row per test night: id, visit, AHI, target, predicted label, probabilities."""
        units = {k: m.compute().reshape(-1).cpu() for k, m in self.test_units.items()}
        if units["record"].numel() == 0:
            return []
        probs = torch.stack([units[f"p{i}"] for i in range(self.n_outputs)], dim=1)
        rows = []
        for r, t, p in zip(units["record"].long().tolist(), units["target"].long().tolist(), probs):
            rid, ahi = self.record_info[r] if r < len(self.record_info) else (str(r), float("nan"))
            rows.append(
                {
                    "record": rid,
                    "visit": int(self.record_visit[r]),
                    "ahi": ahi,
                    "target": t,
                    "pred": int(p.argmax()),
                    "probs": [round(float(q), 5) for q in p],
                }
            )
        return rows

    def protocol_tags(self) -> dict[str, Any]:
        """Facts that change the numbers: variant, smoothing, balancing, AHI variable, SHHS2 overlap."""
        tags: dict[str, Any] = {
            "task_variant": self.task_variant,
            "binary": "collapsed from 4-class" if self.cutoff_class is None else "retrained",
            "model_variant": str(self.cfg.model.variant),
            "smoothing": str(self.cfg.preprocess.smoothing),
            "balance": str(self.cfg.balance.method),
            "ahi_variable": str(self.cfg.labels.ahi_variable),
        }
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        notes = getattr(getattr(dm, "split", None), "notes", None) or {}
        if "shhs2_overlap_train" in notes:
            tags["shhs2_in_shhs1_train"] = (
                f"{notes['shhs2_overlap_train']}/{notes['shhs2_participants']} participants"
            )
        return tags


def build_network(cfg: DictConfig) -> MSCMambaLSTM:
    """:class:`MSCMambaLSTM` from ``cfg.model`` with the outputs of ``cfg.task_variant``."""
    m = cfg.model
    return MSCMambaLSTM(
        n_outputs=TASK_VARIANTS[str(cfg.task_variant)][0],
        n_times=int(cfg.preprocess.n_samples),
        variant=str(m.variant),
        channels=tuple(int(c) for c in m.channels),
        kernels=tuple(int(k) for k in m.kernels),
        pool=int(m.pool),
        n_mamba=int(m.n_mamba),
        d_state=int(m.d_state),
        d_conv=int(m.d_conv),
        expand=int(m.expand),
        mca_reduction=int(m.mca_reduction),
        lstm_hidden=int(m.lstm_hidden),
        lstm_pool=int(m.lstm_pool),
        dropout=float(m.dropout),
        lstm_layers=int(m.lstm_layers),
        lstm_kernel=int(m.lstm_kernel),
        fusion_hidden=int(m.fusion_hidden),
    )


def build_module(cfg: DictConfig, datamodule: Any) -> ShhsSpO2Module:
    """The module for a set-up :class:`~sleepbench.tasks.shhs_spo2.data.ShhsSpO2DataModule`."""
    store = datamodule.store
    visits = datamodule.record_visit()
    present = {1} if datamodule.split.test else set()
    if datamodule.shhs2_records():
        present.add(2)
    info = [(r.record_id, float(r.attrs["ahi"])) for r in store.records]
    return ShhsSpO2Module(build_network(cfg), cfg, visits, tuple(sorted(present)), info)
