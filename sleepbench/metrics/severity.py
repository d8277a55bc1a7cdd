"""OSA severity classes from the AHI and binary views of severity predictions (SPECS §3).

Classes by AHI (events/h): 0 normal < 5 ≤ 1 mild < 15 ≤ 2 moderate < 30 ≤ 3 severe; a value
equal to a cut-off belongs to the higher class (positive = AHI ≥ cut-off).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "SEVERITY_CUTOFFS",
    "SEVERITY_NAMES",
    "ahi_to_severity",
    "collapse_probs_at_cutoff",
    "collapse_target_at_cutoff",
]

#: AHI cut-offs (events/h) between normal, mild, moderate and severe.
SEVERITY_CUTOFFS = (5.0, 15.0, 30.0)
#: Class names in index order.
SEVERITY_NAMES = ("normal", "mild", "moderate", "severe")


def ahi_to_severity(
    ahi: float | np.ndarray | Tensor, cutoffs: Sequence[float] = SEVERITY_CUTOFFS
) -> int | np.ndarray | Tensor:
    """Severity class index of an AHI: the number of cut-offs that are ≤ the AHI.

    Args:
        ahi: AHI in events/h — a number, a numpy array or a tensor.
        cutoffs: increasing cut-offs (events/h).

    Returns:
        The class index in ``[0, len(cutoffs)]``: an ``int`` for a number, else an int64 array
        or tensor of the input's shape.
    """
    bounds = np.asarray(cutoffs, dtype=np.float64)
    if bounds.ndim != 1 or np.any(np.diff(bounds) <= 0):
        raise ValueError(f"cutoffs must be strictly increasing, got {list(cutoffs)}")
    if isinstance(ahi, Tensor):
        if torch.isnan(ahi).any():
            raise ValueError("AHI contains NaN")
        edges = torch.as_tensor(bounds, dtype=torch.float64, device=ahi.device)
        return torch.bucketize(ahi.to(torch.float64), edges, right=True)
    arr = np.asarray(ahi, dtype=np.float64)
    if np.isnan(arr).any():
        raise ValueError("AHI contains NaN")
    cls = np.searchsorted(bounds, arr, side="right").astype(np.int64)
    return int(cls) if np.ndim(ahi) == 0 else cls


def collapse_probs_at_cutoff(probs: Tensor, cutoff_class: int) -> Tensor:
    """Probability of "AHI ≥ cut-off" from severity-class probabilities.

    Args:
        probs: ``(..., C)`` class probabilities (softmax output) in severity order.
        cutoff_class: first class counted positive (1 for AHI ≥ 5, 2 for ≥ 15, 3 for ≥ 30).

    Returns:
        ``(...)`` sum of the probabilities of classes ``>= cutoff_class``.
    """
    if not 1 <= cutoff_class < probs.shape[-1]:
        raise ValueError(f"cutoff_class must be in [1, {probs.shape[-1]}), got {cutoff_class}")
    return probs[..., cutoff_class:].sum(dim=-1)


def collapse_target_at_cutoff(target: Tensor, cutoff_class: int) -> Tensor:
    """Binary target ``class >= cutoff_class`` (int64) from severity-class targets ``(...)``."""
    return (target >= cutoff_class).long()
