"""Multi-class focal and soft-Dice losses on logits, with class weights and an ignore label.

Inputs follow :func:`torch.nn.functional.cross_entropy`: logits ``[N, C]`` or ``[B, C, *]`` (class
dim 1) and integer targets ``[N]`` or ``[B, *]``. Positions whose target equals ``ignore_index``
never contribute to a loss value or its gradient. Half-precision logits are promoted to float32 so
the losses are safe under autocast.

References
----------
- Focal loss: Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017, arXiv:1708.02002.
- Soft Dice: Milletari et al., "V-Net", 3DV 2016, arXiv:1606.04797.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FocalDiceLoss", "FocalLoss", "SoftDiceLoss"]

Reduction = Literal["mean", "sum", "none"]


def _flatten_logits_target(
    logits: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flatten ``[N, C]`` / ``[B, C, *]`` logits to ``[M, C]`` and targets to ``[M]``."""
    if logits.ndim < 2:
        raise ValueError(f"logits must be [N, C] or [B, C, *], got shape {tuple(logits.shape)}")
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)}; "
            f"expected {expected}"
        )
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise ValueError(f"target must hold integer class indices, got dtype {target.dtype}")
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    n_classes = logits.shape[1]
    return logits.movedim(1, -1).reshape(-1, n_classes), target.reshape(-1)


def _valid_and_safe_target(
    target: torch.Tensor, ignore_index: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask of non-ignored positions and a target with ignored entries replaced by class 0.

    The replacement only keeps ``gather``/``one_hot`` in range; those positions are masked out.
    """
    if ignore_index is None:
        return torch.ones_like(target, dtype=torch.bool), target
    valid = target != ignore_index
    return valid, torch.where(valid, target, torch.zeros_like(target))


def _class_weight(weight: Sequence[float] | torch.Tensor | None) -> torch.Tensor | None:
    """Class weights as a 1-D float tensor (registered as a buffer so it follows ``.to()``)."""
    if weight is None:
        return None
    tensor = torch.as_tensor(weight, dtype=torch.float32).flatten()
    if (tensor < 0).any():
        raise ValueError(f"class weights must be non-negative, got {tensor.tolist()}")
    return tensor


class FocalLoss(nn.Module):
    """Multi-class focal loss from logits, ``FL = -w_y (1 - p_y)^gamma log p_y``.

    Parameters
    ----------
    gamma:
        Focusing parameter (>= 0); ``gamma = 0`` gives (class-weighted) cross-entropy.
    weight:
        Per-class weights ``w_c`` of length C, or ``None`` for all ones.
    ignore_index:
        Target value whose positions are excluded, or ``None``.
    reduction:
        ``"mean"`` over the non-ignored positions, ``"sum"``, or ``"none"`` (per-position loss in
        the target's shape, zero at ignored positions). Note that ``"mean"`` divides by the number
        of valid positions, not by the sum of their class weights as ``F.cross_entropy`` does.
        When every position is ignored, ``"mean"`` returns 0 (not NaN).
    pt_from_weighted_ce:
        If ``True``, reproduce the audio-CRNN code (SPECS §1.4): ``ce_w = w_y * CE``,
        ``p_t = exp(-ce_w)`` and ``FL = (1 - p_t)^gamma * ce_w``, i.e. the modulating factor is
        computed from the *weighted* cross-entropy. Identical to the standard form when
        ``weight`` is ``None``.
    """

    def __init__(
        self,
        gamma: float = 2.0,
        weight: Sequence[float] | torch.Tensor | None = None,
        ignore_index: int | None = None,
        reduction: Reduction = "mean",
        pt_from_weighted_ce: bool = False,
    ) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.gamma = float(gamma)
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.pt_from_weighted_ce = pt_from_weighted_ce
        self.weight: torch.Tensor | None
        self.register_buffer("weight", _class_weight(weight))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of ``logits`` ``[N, C]``/``[B, C, *]`` against class indices ``[N]``/``[B, *]``."""
        flat_logits, flat_target = _flatten_logits_target(logits, target)
        n_classes = flat_logits.shape[1]
        if self.weight is not None and self.weight.numel() != n_classes:
            raise ValueError(f"{self.weight.numel()} class weights for {n_classes} classes")
        valid, safe_target = _valid_and_safe_target(flat_target, self.ignore_index)

        log_pt = F.log_softmax(flat_logits, dim=1).gather(1, safe_target[:, None]).squeeze(1)
        ce = -log_pt
        class_weight = (
            self.weight.to(ce.dtype)[safe_target]
            if self.weight is not None
            else torch.ones_like(ce)
        )
        if self.pt_from_weighted_ce:
            weighted_ce = class_weight * ce
            modulation = (1.0 - torch.exp(-weighted_ce)).clamp_min(0.0) ** self.gamma
            per_position = modulation * weighted_ce
        else:
            modulation = (1.0 - log_pt.exp()).clamp_min(0.0) ** self.gamma
            per_position = class_weight * modulation * ce
        per_position = torch.where(valid, per_position, torch.zeros_like(per_position))

        if self.reduction == "none":
            return per_position.reshape(target.shape)
        total = per_position.sum()
        if self.reduction == "sum":
            return total
        return total / valid.sum().clamp_min(1)


class SoftDiceLoss(nn.Module):
    """Soft multi-class Dice loss on softmax probabilities, ``1 - weighted mean_c Dice_c``.

    Probabilities ``p`` and one-hot targets ``g`` are pooled over every non-ignored position of the
    batch (all samples and time steps together); per class
    ``Dice_c = (2 sum p_c g_c + eps) / (sum p_c + sum g_c + eps)``. The loss averages ``Dice_c``
    over the selected classes, weighted by ``weight`` when given.

    Parameters
    ----------
    num_classes:
        Number of classes C (the logits' dim 1 must match).
    weight:
        Per-class weights of length C for the average over classes, or ``None`` for equal weights.
    ignore_index:
        Target value whose positions are excluded, or ``None``.
    foreground_only:
        Class indices to average over (e.g. ``(1, 2)`` to skip background class 0), or ``None``
        for all classes.
    eps:
        Smoothing added to numerator and denominator; a class absent from both prediction and
        target scores Dice 1.
    """

    def __init__(
        self,
        num_classes: int,
        weight: Sequence[float] | torch.Tensor | None = None,
        ignore_index: int | None = None,
        foreground_only: Sequence[int] | None = None,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.eps = float(eps)
        class_weight = _class_weight(weight)
        if class_weight is not None and class_weight.numel() != num_classes:
            raise ValueError(f"{class_weight.numel()} class weights for {num_classes} classes")
        classes = list(range(num_classes)) if foreground_only is None else list(foreground_only)
        if not classes or any(not 0 <= c < num_classes for c in classes):
            raise ValueError(f"foreground_only must list classes in [0, {num_classes}): {classes}")
        self.weight: torch.Tensor | None
        self.classes: torch.Tensor
        self.register_buffer("weight", class_weight)
        self.register_buffer("classes", torch.tensor(classes, dtype=torch.long), persistent=False)

    def per_class_dice(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Soft Dice of every class, shape ``[C]``, pooled over all non-ignored positions."""
        flat_logits, flat_target = _flatten_logits_target(logits, target)
        if flat_logits.shape[1] != self.num_classes:
            raise ValueError(
                f"logits have {flat_logits.shape[1]} classes, expected {self.num_classes}"
            )
        valid, safe_target = _valid_and_safe_target(flat_target, self.ignore_index)
        mask = valid[:, None].to(flat_logits.dtype)
        probs = F.softmax(flat_logits, dim=1) * mask
        one_hot = F.one_hot(safe_target, self.num_classes).to(flat_logits.dtype) * mask
        intersection = (probs * one_hot).sum(dim=0)
        denominator = probs.sum(dim=0) + one_hot.sum(dim=0)
        return (2.0 * intersection + self.eps) / (denominator + self.eps)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar loss in [0, 1] of ``logits`` ``[N, C]``/``[B, C, *]`` against ``[N]``/``[B, *]``."""
        dice = self.per_class_dice(logits, target)[self.classes]
        if self.weight is None:
            return 1.0 - dice.mean()
        class_weight = self.weight.to(dice.dtype)[self.classes]
        return 1.0 - (class_weight * dice).sum() / class_weight.sum().clamp_min(1e-12)


class FocalDiceLoss(nn.Module):
    """Sum of a focal and a soft-Dice loss: ``focal(x, y) + dice_weight * dice(x, y)``.

    Parameters
    ----------
    focal:
        A :class:`FocalLoss` with a scalar reduction (``"mean"`` or ``"sum"``).
    dice:
        A :class:`SoftDiceLoss`.
    dice_weight:
        Multiplier of the Dice term (0.5 for the audio CRNN, 1.0 for TinyUStaging).
    """

    def __init__(self, focal: FocalLoss, dice: SoftDiceLoss, dice_weight: float = 1.0) -> None:
        super().__init__()
        if focal.reduction == "none":
            raise ValueError("the focal term of FocalDiceLoss needs a scalar reduction")
        self.focal = focal
        self.dice = dice
        self.dice_weight = float(dice_weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar combined loss of ``logits`` ``[N, C]``/``[B, C, *]`` against the targets."""
        return self.focal(logits, target) + self.dice_weight * self.dice(logits, target)
