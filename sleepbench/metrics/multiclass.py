"""Multiclass metrics (sleep stages, SpO2 severity, lung sounds) and a flattener for logging.

Macro averages follow SPECS §6: the unweighted mean over *all* ``num_classes`` classes, a class
absent from both targets and predictions counting as 0 — sklearn with ``labels=range(C)`` and
``zero_division=0``. (torchmetrics' own ``average="macro"`` silently drops such classes, which
would make folds with a missing class incomparable.) Everything else is torchmetrics as is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassCohenKappa,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
    MulticlassSpecificity,
    MulticlassStatScores,
)
from torchmetrics.utilities.compute import _safe_divide
from torchmetrics.wrappers import ClasswiseWrapper

from sleepbench.metrics.auroc import NanMulticlassAUROC

__all__ = [
    "MacroF1Score",
    "MacroPrecision",
    "MacroRecall",
    "MacroSpecificity",
    "OneVsRestAccuracy",
    "flatten_metric_dict",
    "make_multiclass_metrics",
]


class _AllClassMean:
    """Mixin: compute the per-class values (``average=None``) and average them over all classes."""

    def __init__(self, num_classes: int, ignore_index: int | None = None, **kwargs: Any) -> None:
        super().__init__(  # type: ignore[call-arg]
            num_classes=num_classes, average=None, ignore_index=ignore_index, **kwargs
        )

    def compute(self) -> Tensor:
        """Unweighted mean over all ``num_classes`` per-class values."""
        return super().compute().mean()  # type: ignore[misc]


class MacroF1Score(_AllClassMean, MulticlassF1Score):
    """Macro-F1 over all classes (sklearn ``f1_score(average="macro", labels=range(C))``)."""


class MacroRecall(_AllClassMean, MulticlassRecall):
    """Mean one-vs-rest sensitivity (recall) over all classes."""


class MacroPrecision(_AllClassMean, MulticlassPrecision):
    """Mean one-vs-rest precision over all classes."""


class MacroSpecificity(_AllClassMean, MulticlassSpecificity):
    """Mean one-vs-rest specificity over all classes."""


class OneVsRestAccuracy(MulticlassStatScores):
    """One-vs-rest accuracy ``(TP + TN) / N`` per class, ``(C,)``; ``average="macro"`` for the mean.

    Not the usual overall accuracy (that is ``MulticlassAccuracy(average="micro")``): each class is
    scored as its own binary problem, as SPECS §3.5 reports for the severity classes.
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(
        self,
        num_classes: int,
        average: str | None = None,
        ignore_index: int | None = None,
        **kwargs: Any,
    ) -> None:
        if average not in (None, "none", "macro"):
            raise ValueError(f"average must be None or 'macro', got {average!r}")
        super().__init__(num_classes=num_classes, average=None, ignore_index=ignore_index, **kwargs)
        self._ovr_average = average

    def compute(self) -> Tensor:
        """Per-class (or mean) one-vs-rest accuracy."""
        tp, fp, tn, fn = self._final_state()
        per_class = _safe_divide(tp + tn, tp + fp + tn + fn)
        return per_class.mean() if self._ovr_average == "macro" else per_class


def make_multiclass_metrics(
    num_classes: int,
    prefix: str = "",
    ignore_index: int | None = None,
    class_names: Sequence[str] | None = None,
    auroc: bool = True,
    per_class: bool = True,
) -> MetricCollection:
    """Build the standard multiclass metric set.

    ``update(preds, target)``: ``preds`` ``(N, C)`` class probabilities (or logits; needed for
    AUROC) or, with ``auroc=False``, ``(N,)`` predicted labels; ``target`` ``(N,)`` integer labels
    in ``[0, C)``. Entries whose target equals ``ignore_index`` never enter any metric.

    Keys of ``compute()`` (after ``prefix``): ``acc`` (overall), ``f1_macro``, ``kappa`` (Cohen,
    unweighted), ``sens_macro`` / ``spec_macro`` / ``prec_macro`` / ``ovr_acc_macro`` (one-vs-rest
    means), ``confmat`` (``(C, C)`` counts, rows = target — drop it with
    :func:`flatten_metric_dict` before logging), and per class ``<name>`` (``class_names`` or the
    index): ``f1_<name>``, ``sens_<name>``, ``spec_<name>``, ``prec_<name>`` when ``per_class``
    and ``auroc_<name>`` (one-vs-rest, NaN when undefined) when ``auroc``.

    Args:
        num_classes: number of classes ``C``.
        prefix: prepended to every key, e.g. ``"test/"``.
        ignore_index: target value to skip (may lie outside ``[0, C)``, e.g. -1 or ``C``).
        class_names: ``C`` names used in the per-class keys.
        auroc: include the per-class AUROC (requires probability ``preds``).
        per_class: include per-class F1, sensitivity, specificity and precision.

    Returns:
        A :class:`~torchmetrics.MetricCollection` (compute groups share the statistics).
    """
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names given for {num_classes} classes")
    labels = list(class_names) if class_names is not None else None
    common = {"num_classes": num_classes, "ignore_index": ignore_index}
    metrics: dict[str, Metric] = {
        "acc": MulticlassAccuracy(average="micro", **common),
        "f1_macro": MacroF1Score(**common),
        "kappa": MulticlassCohenKappa(**common),
        "sens_macro": MacroRecall(**common),
        "spec_macro": MacroSpecificity(**common),
        "prec_macro": MacroPrecision(**common),
        "ovr_acc_macro": OneVsRestAccuracy(average="macro", **common),
        "confmat": MulticlassConfusionMatrix(**common),
    }
    if per_class:
        for key, cls in (
            ("f1", MulticlassF1Score),
            ("sens", MulticlassRecall),
            ("spec", MulticlassSpecificity),
            ("prec", MulticlassPrecision),
        ):
            metrics[f"{key}_per_class"] = ClasswiseWrapper(
                cls(average=None, **common), labels=labels, prefix=f"{key}_"
            )
    if auroc:
        metrics["auroc_per_class"] = ClasswiseWrapper(
            NanMulticlassAUROC(**common), labels=labels, prefix="auroc_"
        )
    return MetricCollection(metrics, prefix=prefix or None)


def flatten_metric_dict(
    d: Mapping[str, Any], class_names: Sequence[str] | None = None
) -> dict[str, float]:
    """Turn a metric-output dict into ``{name: float}`` ready for loggers and result files.

    0-d tensors and numbers become floats; 1-D tensors become one scalar per element, named
    ``<key>_<class name>`` (``class_names``) or ``<key>_<index>``; nested dicts are flattened with
    their own keys; tensors of two or more dimensions (confusion matrices) are dropped.

    Args:
        d: e.g. the output of ``MetricCollection.compute()``.
        class_names: names for the elements of 1-D tensors (must match their length).

    Returns:
        A new flat dict of Python floats.
    """
    out: dict[str, float] = {}
    for key, value in d.items():
        if isinstance(value, Mapping):
            out.update(flatten_metric_dict(value, class_names))
        elif isinstance(value, Tensor):
            if value.ndim == 0:
                out[key] = float(value)
            elif value.ndim == 1:
                if class_names is not None and len(class_names) != value.numel():
                    raise ValueError(
                        f"{key}: {value.numel()} values but {len(class_names)} class names"
                    )
                names = class_names if class_names is not None else range(value.numel())
                out.update({f"{key}_{n}": float(v) for n, v in zip(names, value.tolist())})
        elif isinstance(value, (int, float)):
            out[key] = float(value)
        else:
            raise TypeError(f"{key}: cannot flatten a value of type {type(value).__name__}")
    return out
