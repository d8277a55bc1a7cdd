"""Binary screening metrics (per-minute apnea, severity cut-offs): Acc, Se, Sp, PPV, NPV, F1, MCC, AUROC.

Every entry is an existing torchmetrics metric; the collection only fixes their names, the
decision threshold and the zero-division convention (a ratio with an empty denominator is 0, as
sklearn's ``zero_division=0``; an undefined AUROC is NaN, see :mod:`sleepbench.metrics.auroc`).
Metrics that share statistics (the stat-score family, the confusion-matrix family) are put in one
compute group by :class:`~torchmetrics.MetricCollection`, so each statistic is accumulated once.
"""

from __future__ import annotations

from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryConfusionMatrix,
    BinaryF1Score,
    BinaryMatthewsCorrCoef,
    BinaryNegativePredictiveValue,
    BinaryPrecision,
    BinaryRecall,
    BinarySpecificity,
)
from torchmetrics.functional.classification import binary_matthews_corrcoef, binary_stat_scores
from torchmetrics.utilities.compute import _safe_divide

from sleepbench.metrics.auroc import NanBinaryAUROC, binary_auroc_or_nan

__all__ = ["BINARY_SCALAR_KEYS", "BinaryScreeningMetrics", "binary_screening_metrics"]

#: Names of the scalar outputs, in report order (the collection adds its prefix).
BINARY_SCALAR_KEYS = ("acc", "sens", "spec", "ppv", "npv", "f1", "mcc", "auroc")


def binary_screening_metrics(
    preds: Tensor, target: Tensor, threshold: float = 0.5, ignore_index: int | None = None
) -> dict[str, Tensor]:
    """All binary screening metrics of one set of predictions, without state.

    Args:
        preds: ``(N, ...)`` probabilities of the positive class in [0, 1] (values outside are
            treated as logits and passed through a sigmoid, as torchmetrics does).
        target: ``(N, ...)`` integer targets in {0, 1} (or ``ignore_index``).
        threshold: a prediction is positive when ``prob > threshold`` (torchmetrics' rule).
        ignore_index: target value whose entries never enter any metric.

    Returns:
        ``{"acc", "sens", "spec", "ppv", "npv", "f1", "mcc", "auroc"}`` -> 0-d float tensors;
        ratios with an empty denominator are 0, AUROC is NaN when only one class is present.
    """
    tp, fp, tn, fn, _ = binary_stat_scores(
        preds, target, threshold=threshold, ignore_index=ignore_index
    ).float()
    return {
        "acc": _safe_divide(tp + tn, tp + fp + tn + fn),
        "sens": _safe_divide(tp, tp + fn),
        "spec": _safe_divide(tn, tn + fp),
        "ppv": _safe_divide(tp, tp + fp),
        "npv": _safe_divide(tn, tn + fn),
        "f1": _safe_divide(2 * tp, 2 * tp + fp + fn),
        "mcc": binary_matthews_corrcoef(
            preds, target, threshold=threshold, ignore_index=ignore_index
        ),
        "auroc": binary_auroc_or_nan(preds, target, ignore_index=ignore_index),
    }


class BinaryScreeningMetrics(MetricCollection):
    """A :class:`~torchmetrics.MetricCollection` of the binary screening metrics.

    ``update(preds, target)`` takes the inputs of :func:`binary_screening_metrics`; ``compute()``
    returns ``{prefix + key: tensor}`` for the keys in :data:`BINARY_SCALAR_KEYS` plus
    ``prefix + "confmat"`` (``(2, 2)`` counts, rows = target, columns = prediction) when
    ``confmat=True``; drop it with :func:`sleepbench.metrics.flatten_metric_dict` before logging.

    Args:
        threshold: probability above which a prediction is positive.
        prefix: prepended to every key (e.g. ``"val/"``).
        ignore_index: target value whose entries never enter any metric.
        confmat: also accumulate the confusion matrix.
    """

    def __init__(
        self,
        threshold: float = 0.5,
        prefix: str | None = None,
        ignore_index: int | None = None,
        confmat: bool = True,
    ) -> None:
        common = {"threshold": threshold, "ignore_index": ignore_index}
        metrics = {
            "acc": BinaryAccuracy(**common),
            "sens": BinaryRecall(**common),
            "spec": BinarySpecificity(**common),
            "ppv": BinaryPrecision(**common),
            "npv": BinaryNegativePredictiveValue(**common),
            "f1": BinaryF1Score(**common),
            "mcc": BinaryMatthewsCorrCoef(**common),
            "auroc": NanBinaryAUROC(ignore_index=ignore_index),
        }
        if confmat:
            metrics["confmat"] = BinaryConfusionMatrix(**common)
        super().__init__(metrics, prefix=prefix)
        self.threshold = threshold
