"""ICBHI-2017 challenge score for respiratory-cycle classification (SPECS §4.5).

``Sp`` = normal cycles predicted normal / all normal cycles; ``Se`` = abnormal cycles predicted
as their *exact* abnormal class / all abnormal cycles; ``score = (Se + Sp) / 2``. All three come
from the confusion matrix, so the metric extends torchmetrics' ``MulticlassConfusionMatrix``
(sum-reduced state) and only overrides ``compute``, as ``MulticlassCohenKappa`` does.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics.classification import MulticlassConfusionMatrix
from torchmetrics.functional.classification import multiclass_confusion_matrix
from torchmetrics.utilities.compute import _safe_divide

__all__ = ["ICBHIScore", "icbhi_from_confmat", "icbhi_score"]


def icbhi_from_confmat(confmat: Tensor, normal_class: int = 0) -> dict[str, Tensor]:
    """ICBHI sensitivity, specificity and score from a confusion matrix.

    Args:
        confmat: ``(C, C)`` counts, rows = target, columns = prediction.
        normal_class: index of the normal class.

    Returns:
        ``{"icbhi_se", "icbhi_sp", "icbhi_score"}`` -> 0-d float tensors; a rate with no cycles
        in its denominator is 0 (torchmetrics' zero-division convention).
    """
    if confmat.ndim != 2 or confmat.shape[0] != confmat.shape[1]:
        raise ValueError(f"confmat must be square (C, C), got {tuple(confmat.shape)}")
    if not 0 <= normal_class < confmat.shape[0]:
        raise ValueError(f"normal_class {normal_class} outside [0, {confmat.shape[0]})")
    cm = confmat.to(torch.float64)
    abnormal = torch.ones(cm.shape[0], dtype=torch.bool, device=cm.device)
    abnormal[normal_class] = False
    sp = _safe_divide(cm[normal_class, normal_class], cm[normal_class].sum())
    se = _safe_divide(cm.diagonal()[abnormal].sum(), cm[abnormal].sum())
    return {"icbhi_se": se, "icbhi_sp": sp, "icbhi_score": (se + sp) / 2}


def icbhi_score(
    preds: Tensor,
    target: Tensor,
    num_classes: int | None = None,
    normal_class: int = 0,
    ignore_index: int | None = None,
) -> dict[str, Tensor]:
    """ICBHI Se, Sp and score of one set of predictions, without state.

    Args:
        preds: ``(N, C)`` class scores (arg-maxed) or ``(N,)`` predicted labels.
        target: ``(N,)`` integer labels.
        num_classes: ``C``; taken from ``preds`` when they are ``(N, C)`` scores.
        normal_class: index of the normal class (0 for normal/crackle/wheeze/both).
        ignore_index: target value whose entries are skipped.

    Returns:
        See :func:`icbhi_from_confmat`.
    """
    if num_classes is None:
        if preds.ndim != 2:
            raise ValueError("num_classes is needed when preds are labels")
        num_classes = preds.shape[1]
    cm = multiclass_confusion_matrix(preds, target, num_classes, ignore_index=ignore_index)
    return icbhi_from_confmat(cm, normal_class)


class ICBHIScore(MulticlassConfusionMatrix):
    """Stateful ICBHI score; ``update(preds, target)`` as ``MulticlassConfusionMatrix``.

    ``compute()`` returns ``{"icbhi_se", "icbhi_sp", "icbhi_score"}`` (see
    :func:`icbhi_from_confmat`).

    Args:
        num_classes: number of classes.
        normal_class: index of the normal class.
        ignore_index: target value whose entries are skipped.
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(
        self,
        num_classes: int,
        normal_class: int = 0,
        ignore_index: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_classes=num_classes, ignore_index=ignore_index, **kwargs)
        if not 0 <= normal_class < num_classes:
            raise ValueError(f"normal_class {normal_class} outside [0, {num_classes})")
        self.normal_class = normal_class

    def compute(self) -> dict[str, Tensor]:  # type: ignore[override]
        """ICBHI Se, Sp and score of the accumulated confusion matrix."""
        return icbhi_from_confmat(self.confmat, self.normal_class)
