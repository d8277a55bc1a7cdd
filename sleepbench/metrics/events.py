"""Event-level evaluation of frame-sequence outputs (respiratory events in sleep audio, SPECS §1.5–1.6).

* :func:`frames_to_events` — post-processing of a frame-label sequence into events: median
  filter, run-length encoding of non-background runs, merging of adjacent same-class events
  separated by less than ``merge_gap_s``, dropping of events shorter than ``min_duration_s``
  (the order and rules of the CRNN_OSA ``postprocess.py``).
* :func:`match_events` — greedy one-to-one matching by highest temporal IoU (> 0).
* :class:`EventIoU` — accumulates matching statistics (sums only, so DDP reduction is a sum) and
  reports mean IoU and mean |onset| / |offset| error over matched pairs (seconds) and event
  precision / recall / F1 at IoU ≥ ``iou_threshold``.

Collar-based event F1 lives in :mod:`sleepbench.metrics.event_collar`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import scipy.signal
import torch
from torch import Tensor
from torchmetrics import Metric

__all__ = [
    "EventIoU",
    "EventSpan",
    "event_iou",
    "event_match_stats",
    "frames_to_events",
    "match_events",
    "median_filter_labels",
]


_EPS_S = 1e-6  # tolerance in seconds for duration / gap comparisons


class EventSpan(NamedTuple):
    """One event: ``[onset_s, offset_s)`` in seconds and its integer class ``label``."""

    onset_s: float
    offset_s: float
    label: int


def _as_labels(frame_labels: Tensor | np.ndarray | Sequence[int]) -> np.ndarray:
    if isinstance(frame_labels, Tensor):
        frame_labels = frame_labels.detach().cpu().numpy()
    labels = np.asarray(frame_labels)
    if labels.ndim != 1:
        raise ValueError(f"frame_labels must be 1-D, got shape {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if not np.all(labels == np.round(labels)):
            raise ValueError("frame_labels must hold integer class labels")
    return labels.astype(np.int64)


def median_filter_labels(
    frame_labels: Tensor | np.ndarray | Sequence[int], kernel: int = 5, background: int = 0
) -> np.ndarray:
    """Median-filter a frame-label sequence as the CRNN_OSA code does (``scipy.signal.medfilt``).

    Args:
        frame_labels: ``(T,)`` integer class per frame.
        kernel: odd filter length in frames (1 = no filtering).
        background: the value the ends are padded with (medfilt pads with zeros; the labels are
            shifted so that the padding is the background class whatever its index).

    Returns:
        int64 ``(T,)`` filtered labels.
    """
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"median_kernel must be a positive odd integer, got {kernel}")
    labels = _as_labels(frame_labels)
    if kernel == 1 or labels.size == 0:
        return labels
    shifted = (labels - background).astype(np.float64)
    with warnings.catch_warnings():
        # "kernel_size exceeds volume extent" for sequences shorter than the kernel: the
        # zero (background) padding it announces is the documented behaviour
        warnings.simplefilter("ignore", UserWarning)
        filtered = scipy.signal.medfilt(shifted, kernel)
    return np.rint(filtered).astype(np.int64) + background


def frames_to_events(
    frame_labels: Tensor | np.ndarray | Sequence[int],
    frame_s: float,
    min_duration_s: float = 0.0,
    merge_gap_s: float = 0.0,
    median_kernel: int = 1,
    background: int = 0,
) -> list[EventSpan]:
    """Turn a frame-label sequence into events.

    Args:
        frame_labels: ``(T,)`` integer class per frame.
        frame_s: frame length in seconds (0.08 for the 12.5-Hz audio output).
        min_duration_s: events shorter than this (after merging) are dropped; ``>=`` is kept.
        merge_gap_s: adjacent events (in time order) of the same class whose gap is strictly
            less than this are merged into one.
        median_kernel: odd median-filter length in frames (1 = none); ``scipy.signal.medfilt``,
            i.e. zero (= background) padding at both ends, as upstream.
        background: the label that is not an event.

    Returns:
        Events sorted by onset, as :class:`EventSpan` ``(onset_s, offset_s, label)``.
    """
    if frame_s <= 0:
        raise ValueError(f"frame_s must be > 0, got {frame_s}")
    labels = median_filter_labels(frame_labels, median_kernel, background)
    if labels.size == 0:
        return []
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [labels.size]])
    runs = [(s, e, int(labels[s])) for s, e in zip(starts, ends) if labels[s] != background]

    # work in whole frames so that "gap < 3 s" and "duration >= 10 s" do not flip on float
    # rounding of frame_s multiples; _EPS_S is far below any frame length
    merged: list[list[int]] = []
    for start, end, label in runs:
        if (
            merged
            and merged[-1][2] == label
            and (start - merged[-1][1]) * frame_s < merge_gap_s - _EPS_S
        ):
            merged[-1][1] = end
        else:
            merged.append([int(start), int(end), label])
    return [
        EventSpan(float(start * frame_s), float(end * frame_s), int(label))
        for start, end, label in merged
        if (end - start) * frame_s >= min_duration_s - _EPS_S
    ]


def _as_array(events: Sequence[Sequence[float]]) -> np.ndarray:
    arr = np.asarray([tuple(e)[:3] for e in events], dtype=np.float64).reshape(-1, 3)
    if np.any(arr[:, 1] < arr[:, 0]):
        raise ValueError("every event needs offset_s >= onset_s")
    return arr


def match_events(
    ref: Sequence[Sequence[float]],
    pred: Sequence[Sequence[float]],
    class_agnostic: bool = False,
) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching of reference and predicted events by temporal IoU.

    All (reference, prediction) pairs of the same class (any class if ``class_agnostic``) with
    IoU > 0 are taken in order of decreasing IoU (ties: earlier reference, then earlier
    prediction); a pair is kept when neither event is matched yet (SPECS §1.6 ASSUMPTION).

    Args:
        ref: reference events ``(onset_s, offset_s, label)``.
        pred: predicted events ``(onset_s, offset_s, label)``.
        class_agnostic: ignore the labels when matching.

    Returns:
        ``[(ref_index, pred_index, iou)]`` sorted by ``ref_index``.
    """
    r, p = _as_array(ref), _as_array(pred)
    if len(r) == 0 or len(p) == 0:
        return []
    inter = np.minimum(r[:, None, 1], p[None, :, 1]) - np.maximum(r[:, None, 0], p[None, :, 0])
    inter = np.clip(inter, 0.0, None)
    union = (r[:, None, 1] - r[:, None, 0]) + (p[None, :, 1] - p[None, :, 0]) - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    if not class_agnostic:
        iou[r[:, None, 2] != p[None, :, 2]] = 0.0
    ri, pi = np.nonzero(iou > 0)
    order = np.lexsort((pi, ri, -iou[ri, pi]))
    used_r, used_p = set(), set()
    pairs = []
    for k in order:
        a, b = int(ri[k]), int(pi[k])
        if a not in used_r and b not in used_p:
            used_r.add(a)
            used_p.add(b)
            pairs.append((a, b, float(iou[a, b])))
    return sorted(pairs)


#: Order of the statistics returned by :func:`event_match_stats` (and of EventIoU's states).
_STAT_NAMES = ("n_matched", "iou_sum", "onset_err_sum", "offset_err_sum", "tp", "n_ref", "n_pred")


def event_match_stats(
    ref: Sequence[Sequence[float]],
    pred: Sequence[Sequence[float]],
    iou_threshold: float = 0.5,
    class_agnostic: bool = False,
) -> dict[str, float]:
    """Sufficient statistics of one recording's matching (all additive over recordings).

    Returns:
        ``n_matched`` (pairs with IoU > 0), ``iou_sum``, ``onset_err_sum`` / ``offset_err_sum``
        (sum of absolute boundary differences of matched pairs, s), ``tp`` (matched pairs with
        IoU ≥ ``iou_threshold``), ``n_ref``, ``n_pred``.
    """
    r, p = _as_array(ref), _as_array(pred)
    pairs = match_events(r, p, class_agnostic=class_agnostic)
    a = np.asarray([x[0] for x in pairs], dtype=np.int64)
    b = np.asarray([x[1] for x in pairs], dtype=np.int64)
    iou = np.asarray([x[2] for x in pairs], dtype=np.float64)
    return {
        "n_matched": float(len(pairs)),
        "iou_sum": float(iou.sum()),
        "onset_err_sum": float(np.abs(r[a, 0] - p[b, 0]).sum()) if len(pairs) else 0.0,
        "offset_err_sum": float(np.abs(r[a, 1] - p[b, 1]).sum()) if len(pairs) else 0.0,
        "tp": float((iou >= iou_threshold).sum()),
        "n_ref": float(len(r)),
        "n_pred": float(len(p)),
    }


def _event_compute(stats: dict[str, Tensor]) -> dict[str, Tensor]:
    """Means and rates from the summed statistics (NaN means where nothing was matched)."""
    n, tp = stats["n_matched"], stats["tp"]
    nan = torch.full_like(n, float("nan"))

    def ratio(num: Tensor, den: Tensor, empty: Tensor) -> Tensor:
        return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), empty)

    zero = torch.zeros_like(n)
    return {
        "event_iou": ratio(stats["iou_sum"], n, nan),
        "onset_err_s": ratio(stats["onset_err_sum"], n, nan),
        "offset_err_s": ratio(stats["offset_err_sum"], n, nan),
        "event_precision": ratio(tp, stats["n_pred"], zero),
        "event_recall": ratio(tp, stats["n_ref"], zero),
        "event_f1": ratio(2 * tp, stats["n_ref"] + stats["n_pred"], zero),
    }


def event_iou(
    ref: Sequence[Sequence[float]],
    pred: Sequence[Sequence[float]],
    iou_threshold: float = 0.5,
    class_agnostic: bool = False,
) -> dict[str, Tensor]:
    """Event metrics of one recording (the outputs of :class:`EventIoU`), without state."""
    stats = event_match_stats(ref, pred, iou_threshold, class_agnostic)
    return _event_compute({k: torch.tensor(v, dtype=torch.float64) for k, v in stats.items()})


class EventIoU(Metric):
    """Event-level IoU, boundary errors and precision / recall / F1 over many recordings.

    Two ways to feed it:

    * ``update(preds, target)``: integer frame labels, ``(T,)`` for one sequence or ``(B, T)``
      for ``B`` independent sequences. Predictions are post-processed with
      :func:`frames_to_events` (``median_kernel``, ``merge_gap_s``, ``min_duration_s``); the
      reference is only run-length encoded (reference events are already scored events). Frames
      whose target equals ``ignore_index`` are set to background in both before conversion.
      Feed whole stitched nights; per-window sequences cut events at window borders.
    * ``update(pred_events, ref_events)`` (or ``update_events``): event lists
      ``[(onset_s, offset_s, label)]`` of one recording, used as given — e.g. a whole night
      stitched and post-processed by the task.

    ``compute()`` returns ``event_iou`` (mean IoU of matched pairs), ``onset_err_s`` and
    ``offset_err_s`` (mean absolute boundary error of matched pairs, s; all three NaN when nothing
    is matched) and ``event_precision`` / ``event_recall`` / ``event_f1`` (pairs with IoU ≥
    ``iou_threshold`` count as true positives; 0 when the denominator is 0), as float64.

    Args:
        frame_s: frame length in seconds (for frame inputs).
        median_kernel, merge_gap_s, min_duration_s: prediction post-processing (SPECS §1.5 uses
            5, 3.0, 10.0).
        iou_threshold: IoU from which a matched pair is a true positive.
        class_agnostic: match events regardless of class.
        background: the non-event label.
        ignore_index: target value of frames outside the scored region.
    """

    higher_is_better = None  # IoU / F1 up, boundary errors down
    is_differentiable = False
    full_state_update = False

    def __init__(
        self,
        frame_s: float = 0.08,
        median_kernel: int = 1,
        merge_gap_s: float = 0.0,
        min_duration_s: float = 0.0,
        iou_threshold: float = 0.5,
        class_agnostic: bool = False,
        background: int = 0,
        ignore_index: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.frame_s = float(frame_s)
        self.median_kernel = int(median_kernel)
        self.merge_gap_s = float(merge_gap_s)
        self.min_duration_s = float(min_duration_s)
        self.iou_threshold = float(iou_threshold)
        self.class_agnostic = class_agnostic
        self.background = background
        self.ignore_index = ignore_index
        for name in _STAT_NAMES:
            self.add_state(
                name, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
            )

    def update(
        self,
        preds: Tensor | Sequence[Sequence[float]],
        target: Tensor | Sequence[Sequence[float]],
    ) -> None:
        """Accumulate frame labels ``(T,)`` / ``(B, T)``, or one recording's event lists."""
        if not isinstance(preds, Tensor) and not isinstance(target, Tensor):
            self._accumulate(preds, target)
            return
        if not isinstance(preds, Tensor) or not isinstance(target, Tensor):
            raise TypeError("preds and target must both be frame tensors or both event lists")
        if preds.shape != target.shape or preds.ndim not in (1, 2):
            raise ValueError(
                f"preds {tuple(preds.shape)} and target {tuple(target.shape)} must both be (T,) "
                "or (B, T) frame labels"
            )
        preds = preds.detach().cpu().reshape(-1, preds.shape[-1])
        target = target.detach().cpu().reshape(-1, target.shape[-1])
        if self.ignore_index is not None:
            ignored = target == self.ignore_index
            preds = preds.masked_fill(ignored, self.background)
            target = target.masked_fill(ignored, self.background)
        for p, t in zip(preds, target):
            pred_events = frames_to_events(
                p,
                self.frame_s,
                min_duration_s=self.min_duration_s,
                merge_gap_s=self.merge_gap_s,
                median_kernel=self.median_kernel,
                background=self.background,
            )
            self._accumulate(
                pred_events, frames_to_events(t, self.frame_s, background=self.background)
            )

    def update_events(
        self, pred_events: Sequence[Sequence[float]], ref_events: Sequence[Sequence[float]]
    ) -> None:
        """Accumulate one recording's predicted and reference ``(onset_s, offset_s, label)``.

        Same as ``update(pred_events, ref_events)``; events are used as given (no post-processing).
        """
        self.update(pred_events, ref_events)

    def _accumulate(
        self, pred_events: Sequence[Sequence[float]], ref_events: Sequence[Sequence[float]]
    ) -> None:
        stats = event_match_stats(ref_events, pred_events, self.iou_threshold, self.class_agnostic)
        for name in _STAT_NAMES:
            setattr(self, name, getattr(self, name) + stats[name])

    def compute(self) -> dict[str, Tensor]:
        """Mean IoU, boundary errors (s) and event precision / recall / F1."""
        return _event_compute({name: getattr(self, name) for name in _STAT_NAMES})
