"""ROC-AUC that is NaN where it is undefined instead of torchmetrics' silent 0.

torchmetrics returns 0 (with a warning) when the targets hold only one class; sklearn raises. A 0
in a benchmark table reads as "worse than chance", and averaging folds would drag the mean down,
so here an undefined AUROC is NaN (``nanmean`` over folds then skips it). Otherwise the value is
exactly torchmetrics' exact (``thresholds=None``) AUROC, which equals sklearn's ``roc_auc_score``.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor
from torchmetrics.classification import BinaryAUROC, MulticlassAUROC
from torchmetrics.functional.classification import binary_auroc, multiclass_auroc
from torchmetrics.utilities.data import dim_zero_cat

__all__ = [
    "NanBinaryAUROC",
    "NanMulticlassAUROC",
    "binary_auroc_or_nan",
    "multiclass_auroc_or_nan",
]


def _cat_state(state: list[Tensor] | Tensor) -> Tensor:
    """A ``cat`` state as one tensor: a list before synchronisation, a tensor after it."""
    if isinstance(state, list):
        return dim_zero_cat(state) if state else torch.zeros(0, dtype=torch.long)
    return state


def _kept(target: Tensor, ignore_index: int | None) -> Tensor:
    """Targets without the ignored entries (flattened)."""
    target = target.reshape(-1)
    return target if ignore_index is None else target[target != ignore_index]


def _undefined_classes(target: Tensor, num_classes: int) -> Tensor:
    """Bool ``(num_classes,)``: one-vs-rest AUROC undefined (class absent, or nothing else present)."""
    counts = torch.bincount(target.long(), minlength=num_classes)[:num_classes]
    return (counts == 0) | (counts == target.numel())


def binary_auroc_or_nan(preds: Tensor, target: Tensor, ignore_index: int | None = None) -> Tensor:
    """Exact binary ROC-AUC, NaN when the (kept) targets do not hold both classes.

    Args:
        preds: ``(N, ...)`` probabilities in [0, 1] (values outside are taken as logits).
        target: ``(N, ...)`` integer targets in {0, 1} (or ``ignore_index``).
        ignore_index: target value whose entries are dropped.

    Returns:
        0-d float tensor.
    """
    if bool(_undefined_classes(_kept(target, ignore_index), 2).any()):
        return torch.tensor(float("nan"), device=preds.device)
    return binary_auroc(preds, target, thresholds=None, ignore_index=ignore_index)


def multiclass_auroc_or_nan(
    preds: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = None
) -> Tensor:
    """Exact one-vs-rest ROC-AUC per class, NaN for classes where it is undefined.

    Args:
        preds: ``(N, C)`` class probabilities (values outside [0, 1] are soft-maxed as logits).
        target: ``(N,)`` integer class targets in ``[0, C)`` (or ``ignore_index``).
        num_classes: ``C``.
        ignore_index: target value whose entries are dropped.

    Returns:
        ``(C,)`` float tensor.
    """
    undefined = _undefined_classes(_kept(target, ignore_index), num_classes)
    with warnings.catch_warnings():
        # the warning announces exactly the classes we are about to overwrite with NaN
        warnings.simplefilter("ignore", UserWarning)
        per_class = multiclass_auroc(
            preds, target, num_classes, average="none", thresholds=None, ignore_index=ignore_index
        )
    return per_class.masked_fill(undefined.to(per_class.device), float("nan"))


class NanBinaryAUROC(BinaryAUROC):
    """:class:`torchmetrics.classification.BinaryAUROC` (exact) returning NaN when undefined.

    Takes the same ``update(preds, target)`` inputs as ``BinaryAUROC``; ``compute()`` returns a
    0-d tensor, NaN when the accumulated targets hold a single class.
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(self, ignore_index: int | None = None, **kwargs: Any) -> None:
        super().__init__(thresholds=None, ignore_index=ignore_index, **kwargs)

    def compute(self) -> Tensor:
        """AUROC over everything accumulated (and synchronised across processes)."""
        target = _cat_state(self.target)
        if bool(_undefined_classes(target, 2).any()):
            return torch.tensor(float("nan"), device=self.device)
        return super().compute()


class NanMulticlassAUROC(MulticlassAUROC):
    """:class:`torchmetrics.classification.MulticlassAUROC` (exact, one-vs-rest), NaN if undefined.

    ``average=None`` (default) gives the ``(C,)`` per-class values; ``"macro"`` gives the NaN-aware
    mean of the defined classes. Inputs as ``MulticlassAUROC``: ``preds (N, C)``, ``target (N,)``.
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
        super().__init__(
            num_classes=num_classes,
            average="none",
            thresholds=None,
            ignore_index=ignore_index,
            **kwargs,
        )
        self._nan_average = average

    def compute(self) -> Tensor:
        """Per-class (or NaN-aware macro) AUROC over everything accumulated."""
        target = _cat_state(self.target)
        undefined = _undefined_classes(target, self.num_classes)
        if bool(undefined.all()):
            per_class = torch.full((self.num_classes,), float("nan"), device=self.device)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                per_class = super().compute()
            per_class = per_class.masked_fill(undefined.to(per_class.device), float("nan"))
        return per_class.nanmean() if self._nan_average == "macro" else per_class
