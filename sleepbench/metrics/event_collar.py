"""Collar-based event precision / recall / F1 (SPECS §1.6), in the manner of DCASE's ``sed_eval``
event-based metrics: a predicted event matches a reference event of the same class when its onset
lies within a collar and its offset within ``max(collar, 50 % of the reference length)``, with an
optimal one-to-one matching; the collar is seconds rather than DCASE's 200 ms, for 10–120-s
respiratory events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor
from torchmetrics import Metric

from sleepbench.metrics.events import _EPS_S, _as_array

__all__ = ["EventCollarF1", "collar_match_count"]


def collar_match_count(
    ref: Sequence[Sequence[float]],
    pred: Sequence[Sequence[float]],
    collar_s: float = 3.0,
    offset_fraction: float = 0.5,
    class_agnostic: bool = False,
) -> int:
    """Number of reference events matched one-to-one by a predicted event within the collars.

    A (reference, prediction) pair is compatible when both have the same label (any label if
    ``class_agnostic``), ``|onset_ref - onset_pred| <= collar_s`` and ``|offset_ref - offset_pred|
    <= max(collar_s, offset_fraction * (offset_ref - onset_ref))`` (``sed_eval`` event-based rule,
    Mesaros et al., Appl. Sci. 2016). The count is a maximum one-to-one matching of compatible
    pairs (``sed_eval``'s "optimal" matching), found by an assignment on the 0/1 compatibility
    matrix.

    Args:
        ref, pred: events ``(onset_s, offset_s, label)`` of one recording.
        collar_s: onset (and minimum offset) tolerance in seconds.
        offset_fraction: offset tolerance as a fraction of the reference event's length.
        class_agnostic: ignore labels.

    Returns:
        True positives (an int, at most ``min(len(ref), len(pred))``).
    """
    r, p = _as_array(ref), _as_array(pred)
    if len(r) == 0 or len(p) == 0:
        return 0
    off_tol = np.maximum(collar_s, offset_fraction * (r[:, 1] - r[:, 0]))[:, None]
    ok = (np.abs(r[:, None, 0] - p[None, :, 0]) <= collar_s + _EPS_S) & (
        np.abs(r[:, None, 1] - p[None, :, 1]) <= off_tol + _EPS_S
    )
    if not class_agnostic:
        ok &= r[:, None, 2] == p[None, :, 2]
    if not ok.any():
        return 0
    rows, cols = linear_sum_assignment(ok, maximize=True)
    return int(ok[rows, cols].sum())


class EventCollarF1(Metric):
    """Collar-based event precision / recall / F1 over many recordings (DDP: summed counts).

    ``update(pred_events, ref_events)`` takes one recording's event lists
    ``[(onset_s, offset_s, label)]`` as given (post-process them first); ``compute()`` returns
    float64 ``collar_precision``, ``collar_recall`` and ``collar_f1`` (0 when the denominator is
    0) from :func:`collar_match_count` true positives summed over recordings.

    Args:
        collar_s, offset_fraction, class_agnostic: see :func:`collar_match_count`.
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(
        self,
        collar_s: float = 3.0,
        offset_fraction: float = 0.5,
        class_agnostic: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if collar_s < 0 or offset_fraction < 0:
            raise ValueError("collar_s and offset_fraction must be >= 0")
        self.collar_s = float(collar_s)
        self.offset_fraction = float(offset_fraction)
        self.class_agnostic = class_agnostic
        for name in ("tp", "n_ref", "n_pred"):
            self.add_state(
                name, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
            )

    def update(
        self, pred_events: Sequence[Sequence[float]], ref_events: Sequence[Sequence[float]]
    ) -> None:
        """Accumulate one recording's predicted and reference events."""
        tp = collar_match_count(
            ref_events, pred_events, self.collar_s, self.offset_fraction, self.class_agnostic
        )
        self.tp = self.tp + tp
        self.n_ref = self.n_ref + len(ref_events)
        self.n_pred = self.n_pred + len(pred_events)

    def compute(self) -> dict[str, Tensor]:
        """``collar_precision``, ``collar_recall``, ``collar_f1``."""
        zero = torch.zeros_like(self.tp)

        def ratio(num: Tensor, den: Tensor) -> Tensor:
            return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), zero)

        return {
            "collar_precision": ratio(self.tp, self.n_pred),
            "collar_recall": ratio(self.tp, self.n_ref),
            "collar_f1": ratio(2 * self.tp, self.n_ref + self.n_pred),
        }
