"""ICBHI-2017 challenge score for respiratory-cycle classification (SPECS §4.5).

``Sp`` = normal cycles predicted normal / all normal cycles; ``Se`` = abnormal cycles predicted
as their *exact* abnormal class / all abnormal cycles; ``score = (Se + Sp) / 2``. All three come
from the confusion matrix, so the metric extends torchmetrics' ``MulticlassConfusionMatrix``
(sum-reduced state) and only overrides ``compute``, as ``MulticlassCohenKappa`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.classification import MulticlassConfusionMatrix
from torchmetrics.functional.classification import multiclass_confusion_matrix
from torchmetrics.utilities.compute import _safe_divide

__all__ = ["GroupedICBHIScore", "ICBHIScore", "icbhi_from_confmat", "icbhi_score"]


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


class GroupedICBHIScore(Metric):
    """ICBHI Se, Sp and score within each of ``groups`` (e.g. the recording device).

    ``update(preds, target, group)``: ``preds`` ``(N, C)`` scores (arg-maxed) or ``(N,)`` labels,
    ``target`` ``(N,)`` labels, ``group`` ``(N,)`` group indices into ``groups``. The state is one
    ``(G, C, C)`` confusion matrix (sum-reduced, so DDP-correct).

    ``compute()`` returns ``{"icbhi_score_<group>", "icbhi_se_<group>", "icbhi_sp_<group>",
    "n_<group>"}`` for every group that received at least one entry.

    Args:
        num_classes: ``C``.
        groups: group names, in index order.
        normal_class: index of the normal class.
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(
        self, num_classes: int, groups: Sequence[str], normal_class: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if not groups:
            raise ValueError("groups is empty")
        self.num_classes = int(num_classes)
        self.groups = tuple(str(g) for g in groups)
        self.normal_class = int(normal_class)
        g, c = len(self.groups), self.num_classes
        self.add_state("confmat", torch.zeros(g, c, c, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor, group: Tensor) -> None:
        """Add ``N`` entries (see the class docstring)."""
        labels = preds.argmax(-1) if preds.ndim == 2 else preds
        labels, target, group = labels.long(), target.long(), group.long()
        if not labels.shape == target.shape == group.shape:
            raise ValueError(
                f"preds, target and group differ in length: {tuple(labels.shape)}, "
                f"{tuple(target.shape)}, {tuple(group.shape)}"
            )
        c = self.num_classes
        flat = (group * c + target) * c + labels
        counts = torch.zeros(len(self.groups) * c * c, dtype=torch.long, device=flat.device)
        # index_add (not bincount) stays deterministic on CUDA
        counts.index_add_(0, flat, torch.ones_like(flat))
        self.confmat += counts.view_as(self.confmat)

    def compute(self) -> dict[str, Tensor]:  # type: ignore[override]
        """Per-group Se / Sp / score and cycle count of the groups that have entries."""
        out: dict[str, Tensor] = {}
        for k, name in enumerate(self.groups):
            cm = self.confmat[k]
            n = cm.sum()
            if n == 0:
                continue
            scores = icbhi_from_confmat(cm, self.normal_class)
            for key, value in scores.items():
                out[f"{key}_{name}"] = value
            out[f"n_{name}"] = n.to(torch.float64)
        return out
