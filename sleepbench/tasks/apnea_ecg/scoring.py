"""Test metrics of per-minute apnea detection, shared by the model's test epoch and its peers.

:class:`MinuteScoring` holds the metric objects (DDP-aware torchmetrics states): the binary
screening metrics of the minutes (``test/acc``, ``test/f1``, ``test/auroc``...), the per-record
apnea index agreement (``test/index_pearson_r``, ``test/index_mae``, screening at the
``metrics.index_cutoffs``...) and the minutes themselves for the A/B/C record class
(``test/class_abc_acc``). The module updates it batch by batch; a peer that has all its test
minutes at once calls :func:`score_minutes`, which fills a fresh one in one update on the CPU,
never synchronised (in a distributed run the peer scores on rank 0 alone, after the other ranks
have left: a synchronising metric would wait for them for ever). Both report through :meth:`MinuteScoring.compute`, so the names and the arithmetic are the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torchmetrics import Metric
from torchmetrics.aggregation import CatMetric

from sleepbench.io.apnea_ecg_labels import apnea_class
from sleepbench.metrics import flatten_metric_dict
from sleepbench.metrics.agreement import IndexAgreement, class_accuracy
from sleepbench.metrics.binary import BinaryScreeningMetrics

__all__ = ["CLASS_CODE", "MinuteScoring", "score_minutes"]

CLASS_CODE = {"A": 0, "B": 1, "C": 2}


def _not_distributed() -> bool:
    return False


class MinuteScoring(nn.Module):
    """Test metric objects of per-minute apnea detection.

    Args:
        index_cutoffs: apnea-index screening cut-offs (events per hour), ``metrics.index_cutoffs``.
        local: score this process's minutes only, never synchronising across processes.
    """

    def __init__(self, index_cutoffs: Sequence[float], local: bool = False) -> None:
        super().__init__()
        self.screening = BinaryScreeningMetrics(prefix="test/")
        self.index = IndexAgreement(units_per_hour=60.0, cutoffs=tuple(index_cutoffs))
        self.units = nn.ModuleDict({k: CatMetric() for k in ("record", "minute", "pred", "target")})
        if local:
            for m in self.modules():
                if isinstance(m, Metric):  # what torchmetrics asks before it gathers states
                    m.distributed_available_fn = _not_distributed

    def update(
        self, probs: torch.Tensor, target: torch.Tensor, record: torch.Tensor, minute: torch.Tensor
    ) -> None:
        """Accumulate minutes.

        Args:
            probs: ``(N,)`` float apnea probability per minute (apnea when ``> 0.5``).
            target: ``(N,)`` reference 0/1 (long).
            record: ``(N,)`` integer record id (the cache position: global across processes).
            minute: ``(N,)`` minute index inside its record.
        """
        self.screening.update(probs, target)
        self.index.update(record, probs, target, position=minute)
        for key, value in (
            ("record", record),
            ("minute", minute),
            ("pred", probs > 0.5),
            ("target", target),
        ):
            self.units[key].update(value.float())

    def compute(
        self, record_names: Sequence[str] | None = None
    ) -> tuple[dict[str, float], list[dict[str, Any]], torch.Tensor | None]:
        """Scores of everything accumulated (synchronised across processes by the metrics).

        Args:
            record_names: record id (``"x01"``) of each record position, for the per-record
                table; positions are used as they are when omitted.

        Returns:
            ``(scores, per_record, confmat)``: flat ``test/...`` floats; one dict per record
            with ``record``, ``pred_index`` and ``ref_index`` (apnea minutes per hour) and
            ``hours``; the ``(2, 2)`` minute confusion matrix (rows = target, columns =
            prediction) or None.
        """
        computed = self.screening.compute()
        scores = flatten_metric_dict(computed)
        confmat = computed.get("test/confmat")
        if confmat is not None and confmat.sum() > 0:
            # the bar to beat: always predicting the majority class
            prevalence = float(confmat[1].sum() / confmat.sum())
            scores["test/prevalence"] = prevalence
            scores["test/majority_acc"] = max(prevalence, 1.0 - prevalence)
        # balanced accuracy: 0.5 for the majority-class predictor whatever the prevalence
        scores["test/bal_acc"] = 0.5 * (scores["test/sens"] + scores["test/spec"])
        index = self.index.compute()
        scores.update({f"test/index_{k}": float(v) for k, v in index.items()})
        scores["test/class_abc_acc"] = self._class_accuracy()
        indices = self.index.compute_indices()
        per_record = [
            {
                "record": record_names[int(r)] if record_names is not None else int(r),
                "pred_index": float(p),
                "ref_index": float(q),
                "hours": float(h),
            }
            for r, p, q, h in zip(
                indices["record_id"], indices["pred_index"], indices["ref_index"], indices["hours"]
            )
        ]
        return scores, per_record, confmat

    def _class_accuracy(self) -> float:
        """A/B/C class of each test record from predicted vs reference minutes (database rule)."""
        units = {k: m.compute().reshape(-1).long().cpu() for k, m in self.units.items()}
        if units["record"].numel() == 0:
            return float("nan")
        pred_cls, ref_cls = [], []
        for rec in torch.unique(units["record"]):
            sel = units["record"] == rec
            order = torch.argsort(units["minute"][sel])  # ranks return minutes interleaved
            pred = ["A" if v else "N" for v in units["pred"][sel][order].tolist()]
            ref = ["A" if v else "N" for v in units["target"][sel][order].tolist()]
            pred_cls.append(CLASS_CODE[apnea_class(pred)])
            ref_cls.append(CLASS_CODE[apnea_class(ref)])
        return float(class_accuracy(torch.tensor(pred_cls), torch.tensor(ref_cls)))

    def reset(self) -> None:
        """Forget everything accumulated (after each test epoch)."""
        self.screening.reset()
        self.index.reset()
        for m in self.units.values():
            m.reset()


def score_minutes(
    probs: np.ndarray,
    target: np.ndarray,
    record: np.ndarray,
    minute: np.ndarray,
    index_cutoffs: Sequence[float],
    record_names: Sequence[str] | None = None,
) -> tuple[dict[str, float], list[dict[str, Any]], torch.Tensor | None]:
    """Score a complete set of test minutes with the model's metrics (fresh objects, CPU, this
    process only).

    Args:
        probs: ``(N,)`` apnea probability per minute.
        target: ``(N,)`` reference 0/1.
        record: ``(N,)`` record position (cache index).
        minute: ``(N,)`` minute inside the record.
        index_cutoffs: apnea-index screening cut-offs (events per hour).
        record_names: record id of each record position (for the per-record table).

    Returns:
        What :meth:`MinuteScoring.compute` returns.
    """
    scoring = MinuteScoring(index_cutoffs, local=True)
    scoring.update(
        torch.as_tensor(np.asarray(probs), dtype=torch.float32).reshape(-1),
        torch.as_tensor(np.asarray(target), dtype=torch.long).reshape(-1),
        torch.as_tensor(np.asarray(record), dtype=torch.long).reshape(-1),
        torch.as_tensor(np.asarray(minute), dtype=torch.long).reshape(-1),
    )
    return scoring.compute(record_names)
