"""Per-recording index agreement (AHI, apnea-minute index) between a method and the reference.

Two entry points:

* :func:`agreement_from_indices` — for tasks that already have one estimated and one reference
  index per recording (e.g. AHI from audio events / total sleep time).
* :class:`IndexAgreement` — accumulates per-unit (minute, frame) binary decisions with their
  recording id, and at ``compute()`` turns them into one index per recording,
  ``index = positive units / (units / units_per_hour)`` (e.g. apnea minutes per hour of
  recording for Apnea-ECG), then calls :func:`agreement_from_indices`.

Reported (SPECS §1.6, §2.5): Pearson r, MAE, ICC(2,1) (two-way random effects, absolute
agreement, single measurement — Shrout & Fleiss 1979, = McGraw & Wong ICC(A,1); ICC(3,1),
consistency, is reported beside it), Bland–Altman bias and 95 % limits of agreement
(``bias ± 1.96·SD`` of the differences, SD with ``ddof=1``), and screening sensitivity,
specificity and accuracy at each cut-off (positive = index ≥ cut-off), with the counts they rest
on and the lower ends of their Wilson 95 % intervals (:func:`wilson_low`). Undefined values (fewer
than two recordings, no reference positives at a cut-off, constant indices) are NaN, so that a
mean over folds with ``nanmean`` skips them rather than counting a fake 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional import pearson_corrcoef
from torchmetrics.utilities.data import dim_zero_cat

__all__ = [
    "IndexAgreement",
    "agreement_from_indices",
    "bland_altman",
    "class_accuracy",
    "icc",
    "per_record_index",
    "wilson_low",
]

_NAN = float("nan")


def _as_float64(x: Tensor | Sequence[float]) -> Tensor:
    # per-recording values are few: compute on the CPU, which also keeps devices from mixing
    return torch.as_tensor(x).detach().cpu().to(dtype=torch.float64).reshape(-1)


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` as float64, NaN where ``den == 0``."""
    num, den = num.to(torch.float64), den.to(torch.float64)
    return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), torch.full_like(num, _NAN))


def wilson_low(successes: Tensor, total: Tensor, z: float = 1.959963984540054) -> Tensor:
    """Lower end of the Wilson score interval of a proportion (95 % for the default ``z``).

    A proportion over few recordings (a sensitivity at AHI 15 over 4 nights) reads 1.000 as
    easily as 0.5; the interval's lower end says how little that means (4 of 4: 0.51).

    Args:
        successes: ``k``, the count of successes.
        total: ``n``, the count of trials.
        z: the normal quantile of the interval (1.96: two-sided 95 %).

    Returns:
        float64 tensor of the lower bound, NaN where ``n == 0``.
    """
    k, n = successes.to(torch.float64), total.to(torch.float64)
    safe_n = torch.where(n > 0, n, 1.0)
    p = k / safe_n
    centre = p + z**2 / (2 * safe_n)
    spread = z * torch.sqrt(p * (1 - p) / safe_n + z**2 / (4 * safe_n**2))
    low = (centre - spread) / (1 + z**2 / safe_n)
    return torch.where(n > 0, low.clamp(min=0.0), torch.full_like(low, _NAN))


def icc(ratings: Tensor, kind: str = "2,1") -> Tensor:
    """Intraclass correlation of ``n`` targets rated by ``k`` raters (Shrout & Fleiss 1979).

    Args:
        ratings: ``(n, k)`` ratings, one row per target (recording), one column per rater.
        kind: ``"2,1"`` (two-way random, absolute agreement, single rater) or ``"3,1"``
            (two-way mixed, consistency, single rater).

    Returns:
        0-d float64 tensor; NaN when ``n < 2`` or the ratings are all identical.
    """
    x = torch.as_tensor(ratings).detach().cpu().to(torch.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"ratings must be (n targets, k >= 2 raters), got {tuple(x.shape)}")
    n, k = x.shape
    if n < 2:
        return torch.tensor(_NAN, dtype=torch.float64)
    grand = x.mean()
    row_mean, col_mean = x.mean(dim=1, keepdim=True), x.mean(dim=0, keepdim=True)
    ms_rows = k * ((row_mean - grand) ** 2).sum() / (n - 1)
    ms_cols = n * ((col_mean - grand) ** 2).sum() / (k - 1)
    ms_err = ((x - row_mean - col_mean + grand) ** 2).sum() / ((n - 1) * (k - 1))
    if kind == "2,1":
        den = ms_rows + (k - 1) * ms_err + k * (ms_cols - ms_err) / n
    elif kind == "3,1":
        den = ms_rows + (k - 1) * ms_err
    else:
        raise ValueError(f"kind must be '2,1' or '3,1', got {kind!r}")
    return _ratio(ms_rows - ms_err, den)


def bland_altman(pred: Tensor, ref: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Bland–Altman bias and 95 % limits of agreement of ``pred - ref``.

    Args:
        pred: ``(n,)`` estimated values.
        ref: ``(n,)`` reference values.

    Returns:
        ``(bias, lower, upper)`` float64 0-d tensors: mean difference and ``bias ∓ 1.96·SD``
        (SD with ``ddof=1``; limits are NaN for ``n < 2``, everything NaN for ``n == 0``).
    """
    diff = _as_float64(pred) - _as_float64(ref)
    if diff.numel() == 0:
        nan = torch.tensor(_NAN, dtype=torch.float64)
        return nan, nan, nan
    bias = diff.mean()
    sd = diff.std(correction=1) if diff.numel() > 1 else torch.tensor(_NAN, dtype=torch.float64)
    return bias, bias - 1.96 * sd, bias + 1.96 * sd


def class_accuracy(pred_classes: Tensor, ref_classes: Tensor) -> Tensor:
    """Fraction of recordings whose predicted class equals the reference class.

    Args:
        pred_classes: ``(n,)`` class of each recording from the estimated index (any labels).
        ref_classes: ``(n,)`` class from the reference index.

    Returns:
        0-d float64 tensor (NaN for ``n == 0``).
    """
    p = torch.as_tensor(pred_classes).detach().cpu().reshape(-1)
    r = torch.as_tensor(ref_classes).detach().cpu().reshape(-1)
    if p.shape != r.shape:
        raise ValueError(f"pred_classes {tuple(p.shape)} and ref_classes {tuple(r.shape)} differ")
    return _ratio((p == r).sum(), torch.tensor(p.numel()))


def agreement_from_indices(
    pred_idx: Tensor | Sequence[float],
    ref_idx: Tensor | Sequence[float],
    cutoffs: Sequence[float] = (5.0, 15.0, 30.0),
    classify: Callable[[Tensor], Tensor] | None = None,
) -> dict[str, Tensor]:
    """Agreement between estimated and reference per-recording indices (events or minutes / h).

    Args:
        pred_idx: ``(n,)`` estimated index per recording.
        ref_idx: ``(n,)`` reference index per recording (same order).
        cutoffs: screening cut-offs; at each, positive = index ≥ cut-off.
        classify: optional map from indices to classes (e.g. :func:`ahi_to_severity`, or an
            Apnea-ECG A/B/C rule); adds ``class_acc`` = :func:`class_accuracy` of the two.

    Returns:
        float64 0-d CPU tensors: ``n_records``, ``pearson_r``, ``mae``, ``icc`` (ICC(2,1)),
        ``icc_consistency`` (ICC(3,1)), ``ba_bias``, ``ba_loa_low``, ``ba_loa_high`` and for each
        cut-off ``c`` ``se@c``, ``sp@c``, ``acc@c``, the reference positives and negatives
        ``n_pos@c`` / ``n_neg@c`` and the Wilson 95 % lower bounds ``se_low@c`` / ``sp_low@c``
        (``c`` formatted with ``:g``, e.g. ``se@5``).
    """
    pred, ref = _as_float64(pred_idx), _as_float64(ref_idx)
    if pred.shape != ref.shape:
        raise ValueError(f"pred_idx {tuple(pred.shape)} and ref_idx {tuple(ref.shape)} differ")
    if not (torch.isfinite(pred).all() and torch.isfinite(ref).all()):
        raise ValueError("indices must be finite (a recording with 0 hours gives inf/NaN)")
    n = pred.numel()
    nan = torch.tensor(_NAN, dtype=torch.float64)
    out: dict[str, Tensor] = {"n_records": torch.tensor(float(n), dtype=torch.float64)}
    out["pearson_r"] = pearson_corrcoef(pred, ref) if n >= 2 else nan
    out["mae"] = (pred - ref).abs().mean() if n else nan
    ratings = torch.stack([pred, ref], dim=1)
    out["icc"] = icc(ratings, "2,1")
    out["icc_consistency"] = icc(ratings, "3,1")
    out["ba_bias"], out["ba_loa_low"], out["ba_loa_high"] = bland_altman(pred, ref)
    for c in cutoffs:
        pos_p, pos_r = pred >= c, ref >= c
        tp, tn = (pos_p & pos_r).sum(), (~pos_p & ~pos_r).sum()
        n_pos, n_neg = pos_r.sum(), (~pos_r).sum()
        out[f"se@{c:g}"] = _ratio(tp, n_pos)
        out[f"sp@{c:g}"] = _ratio(tn, n_neg)
        out[f"acc@{c:g}"] = _ratio((pos_p == pos_r).sum(), torch.tensor(n))
        out[f"n_pos@{c:g}"] = n_pos.to(torch.float64)
        out[f"n_neg@{c:g}"] = n_neg.to(torch.float64)
        out[f"se_low@{c:g}"] = wilson_low(tp, n_pos)
        out[f"sp_low@{c:g}"] = wilson_low(tn, n_neg)
    if classify is not None:
        out["class_acc"] = class_accuracy(classify(pred), classify(ref))
    return out


def per_record_index(
    record_id: Tensor, pred: Tensor, target: Tensor, units_per_hour: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Group per-unit binary decisions by recording and turn them into indices per hour.

    Args:
        record_id: ``(N,)`` integer recording id of each unit.
        pred: ``(N,)`` predicted 0/1 per unit.
        target: ``(N,)`` reference 0/1 per unit.
        units_per_hour: units in one hour (60 for minutes, 45000 for 80-ms frames).

    Returns:
        ``(ids, pred_index, ref_index, hours)``: sorted unique ids and, per id, the float64
        indices (positive units per hour) and the recording length in hours.
    """
    ids, inverse = torch.unique(record_id, return_inverse=True)
    n_units = torch.bincount(inverse, minlength=ids.numel()).to(torch.float64)
    # per-record sums by index_add_, not bincount(weights=...): the latter has no deterministic
    # CUDA kernel and raises under trainer.deterministic=true, after a whole training run
    zeros = torch.zeros(ids.numel(), dtype=torch.float64, device=inverse.device)
    pred_pos = zeros.index_add(0, inverse, pred.to(torch.float64))
    ref_pos = zeros.index_add(0, inverse, target.to(torch.float64))
    hours = n_units / units_per_hour
    return ids, pred_pos / hours, ref_pos / hours, hours


class IndexAgreement(Metric):
    """Per-recording index agreement from per-unit (minute / frame) binary decisions.

    ``update(record_id, preds, target, position=None)``:

    * ``record_id``: integer recording id per unit, same shape as ``preds`` or a scalar (one
      recording per call). Ids must be global (the same recording has the same id on every
      process), so a recording split across processes is merged correctly.
    * ``preds``: probabilities (float; positive when ``> threshold``, torchmetrics' rule) or 0/1.
    * ``target``: reference 0/1 per unit.
    * ``position``: optional unit index inside its recording (e.g. minute number). When given for
      every update, duplicated (record, position) units — e.g. the padding a
      ``DistributedSampler`` adds so every process gets equal batches — are counted once.

    ``compute()`` returns :func:`agreement_from_indices` of the per-recording indices;
    :meth:`compute_indices` returns the indices themselves (for plots and result files).

    Args:
        units_per_hour: units per hour of recording (60 for per-minute labels).
        cutoffs: screening cut-offs on the index (positive = index ≥ cut-off).
        threshold: probability above which a unit is positive.
        classify: optional index -> class map for :func:`class_accuracy`.
    """

    higher_is_better = None  # a mix of scores (r, ICC, Se/Sp) and errors (MAE, bias)
    is_differentiable = False
    full_state_update = False

    record_id: list[Tensor]
    position: list[Tensor]
    pred: list[Tensor]
    target: list[Tensor]

    def __init__(
        self,
        units_per_hour: float = 60.0,
        cutoffs: Sequence[float] = (5.0, 15.0, 30.0),
        threshold: float = 0.5,
        classify: Callable[[Tensor], Tensor] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if units_per_hour <= 0:
            raise ValueError(f"units_per_hour must be > 0, got {units_per_hour}")
        self.units_per_hour = float(units_per_hour)
        self.cutoffs = tuple(float(c) for c in cutoffs)
        self.threshold = float(threshold)
        self.classify = classify
        for name in ("record_id", "position", "pred", "target"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(
        self, record_id: Tensor | int, preds: Tensor, target: Tensor, position: Tensor | None = None
    ) -> None:
        """Accumulate one batch of units (see the class docstring for the inputs)."""
        preds, target = preds.reshape(-1), target.reshape(-1)
        if preds.shape != target.shape:
            raise ValueError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} differ")
        rec = torch.as_tensor(record_id, device=preds.device)
        if rec.is_floating_point():
            raise ValueError("record_id must be an integer tensor")
        rec = rec.expand_as(preds) if rec.ndim == 0 else rec.reshape(-1)
        if rec.shape != preds.shape:
            raise ValueError(f"record_id {tuple(rec.shape)} does not match preds {preds.shape}")
        pred01 = preds > self.threshold if preds.is_floating_point() else preds
        if not bool(((pred01 == 0) | (pred01 == 1)).all()):
            raise ValueError("integer preds must be 0/1")
        if not bool(((target == 0) | (target == 1)).all()):
            raise ValueError("target must be 0/1")
        if position is None:
            pos = torch.full_like(rec, -1, dtype=torch.long)
        else:
            pos = torch.as_tensor(position, device=preds.device).long().reshape(-1)
            if pos.shape != preds.shape or bool((pos < 0).any()):
                raise ValueError("position must be non-negative, one per unit")
        self.record_id.append(rec.long())
        self.position.append(pos)
        self.pred.append(pred01.to(torch.uint8))
        self.target.append(target.to(torch.uint8))

    def _units(self) -> tuple[Tensor, Tensor, Tensor]:
        """All units (deduplicated by position when positions were given)."""
        if isinstance(self.record_id, list) and not self.record_id:
            empty = torch.zeros(0, dtype=torch.long, device=self.device)
            return empty, empty, empty
        # list states before synchronisation, tensors after it; dim_zero_cat takes both
        rec, pos = dim_zero_cat(self.record_id), dim_zero_cat(self.position)
        pred, target = dim_zero_cat(self.pred), dim_zero_cat(self.target)
        has_pos = pos >= 0
        if bool(has_pos.any()):
            if not bool(has_pos.all()):
                raise ValueError("position was given for some updates but not for others")
            keys, inverse = torch.unique(torch.stack([rec, pos], dim=1), dim=0, return_inverse=True)
            order = torch.arange(inverse.numel(), device=inverse.device)
            first = torch.full((keys.shape[0],), inverse.numel(), device=inverse.device)
            first = first.scatter_reduce(0, inverse, order, reduce="amin")
            rec, pred, target = rec[first], pred[first], target[first]
        return rec, pred, target

    def compute_indices(self) -> dict[str, Tensor]:
        """Per-recording values: ``record_id``, ``pred_index``, ``ref_index``, ``hours``.

        Synchronises the states across processes first (as ``compute()`` does), so every process
        gets the indices of all recordings.
        """
        if self._is_synced:  # called from inside compute(), which has already synchronised
            return self._indices()
        with self.sync_context(dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync):
            return self._indices()

    def _indices(self) -> dict[str, Tensor]:
        ids, pred_idx, ref_idx, hours = per_record_index(*self._units(), self.units_per_hour)
        return {"record_id": ids, "pred_index": pred_idx, "ref_index": ref_idx, "hours": hours}

    def compute(self) -> dict[str, Tensor]:
        """Agreement of the per-recording indices (keys of :func:`agreement_from_indices`)."""
        idx = self.compute_indices()
        return agreement_from_indices(
            idx["pred_index"], idx["ref_index"], self.cutoffs, self.classify
        )
