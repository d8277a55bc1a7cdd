"""Night-level evaluation of the psg_audio_osa task, shared by the CRNN and the acoustic baseline.

Pipeline (SPECS §1.5–1.6): frame labels of a whole night (the CRNN's window softmax averaged per
80-ms frame by :class:`~.stitching.NightStitcher`, or the baseline's thresholded envelope) -> frames outside
the ROI / recorded audio set to background -> median filter (5 frames) -> events (merge
same-class gaps < 3 s, drop events < 10 s) -> three levels of metrics:

* frames: per-class precision / recall / F1, macro-F1, accuracy, κ on ROI-valid frames of the
  median-filtered sequence (:func:`~sleepbench.metrics.make_multiclass_metrics`);
* events: one-to-one IoU matching, mean IoU, onset / offset errors (s), event precision /
  recall / F1 at IoU ≥ 0.5, class-aware and class-agnostic (``agn_`` keys), and a collar-based
  event F1 (:class:`~sleepbench.metrics.event_collar.EventCollarF1`);
* nights: AHI = events / total sleep time (h) against the reference AHI of the cache (events
  with onset in the ROI per hour of TST), Pearson r, MAE, ICC, Bland–Altman, Se/Sp/accuracy at
  AHI 5/15/30, severity accuracy and 4-class severity κ.

:func:`evaluate_segments` computes all of it from per-night (or, in the ``parity`` mode, per-window)
frame labels. It runs on every rank with the full, already synchronised data, so its metric
objects do not synchronise again (:func:`_local`). Reference events are the run-length encoded
reference frame labels (``y`` of the cache) inside the mask, without post-processing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.functional.classification import multiclass_cohen_kappa, multiclass_f1_score

from sleepbench.metrics import flatten_metric_dict, make_multiclass_metrics
from sleepbench.metrics.agreement import agreement_from_indices
from sleepbench.metrics.event_collar import EventCollarF1
from sleepbench.metrics.events import (
    EventIoU,
    EventSpan,
    frames_to_events,
    median_filter_labels,
)
from sleepbench.metrics.severity import SEVERITY_CUTOFFS, ahi_to_severity

__all__ = [
    "CLASS_NAMES",
    "FRAME_S",
    "Evaluation",
    "NightInfo",
    "PostProcessing",
    "Segment",
    "evaluate_segments",
    "evaluation_tags",
    "night_info",
    "night_segments",
    "parity_segments",
    "validation_scores",
]

CLASS_NAMES: tuple[str, ...] = ("normal", "hypopnea", "apnea")
N_CLASSES = len(CLASS_NAMES)
#: seconds per output frame (8 mel frames of 10 ms)
FRAME_S = 0.08


@dataclass(frozen=True)
class PostProcessing:
    """Post-processing and matching settings (config block ``eval``; SPECS §1.5 defaults)."""

    median_kernel: int = 5
    merge_gap_s: float = 3.0
    min_duration_s: float = 10.0
    iou_threshold: float = 0.5
    collar_s: float = 3.0
    ahi_cutoffs: tuple[float, ...] = SEVERITY_CUTOFFS
    frame_s: float = FRAME_S

    @classmethod
    def from_cfg(cls, cfg: Any) -> PostProcessing:
        """Settings from ``cfg.eval`` (missing keys keep their defaults)."""
        e = cfg.get("eval") or {}
        d = cls()
        return cls(
            median_kernel=int(e.get("median_kernel", d.median_kernel)),
            merge_gap_s=float(e.get("merge_gap_s", d.merge_gap_s)),
            min_duration_s=float(e.get("min_duration_s", d.min_duration_s)),
            iou_threshold=float(e.get("iou_threshold", d.iou_threshold)),
            collar_s=float(e.get("collar_s", d.collar_s)),
            ahi_cutoffs=tuple(float(c) for c in e.get("ahi_cutoffs", d.ahi_cutoffs)),
        )

    def events(self, filtered: np.ndarray) -> list[EventSpan]:
        """Events of already median-filtered frame labels (merge, then drop short ones)."""
        return frames_to_events(
            filtered, self.frame_s, min_duration_s=self.min_duration_s, merge_gap_s=self.merge_gap_s
        )

    def apply(self, pred: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, list[EventSpan]]:
        """Frame labels -> median-filtered labels and events, as every night is scored.

        Frames outside ``mask`` (the ROI / recorded audio) are background before any
        post-processing, so no event starts, ends or is counted there.

        Args:
            pred: ``(n,)`` predicted class per 80-ms frame.
            mask: ``(n,)`` True where the frame counts.

        Returns:
            ``(filtered, events)``: int64 ``(n,)`` labels after the median filter, and the
            events (merged, short ones dropped; times in s from the sequence's start).
        """
        masked = np.where(np.asarray(mask, dtype=bool), np.asarray(pred, dtype=np.int64), 0)
        filtered = median_filter_labels(masked, self.median_kernel)
        return filtered, self.events(filtered)


@dataclass
class Segment:
    """Frame labels of one stretch that is post-processed as a whole: a night, or a window.

    ``pred`` (predicted), ``target`` (reference) and ``mask`` (True = scored) are ``(n,)`` arrays
    over 80-ms frames; ``offset_s`` is the segment's start in the night (for event times).
    """

    record_id: str
    pred: np.ndarray
    target: np.ndarray
    mask: np.ndarray
    offset_s: float = 0.0


@dataclass(frozen=True)
class NightInfo:
    """Per-night facts of the AHI: ``ahi_hours`` (denominator, h) and the reference ``ahi_ref``."""

    record_id: str
    subject_id: str
    ahi_hours: float
    ahi_ref: float


@dataclass
class Evaluation:
    """Output of :func:`evaluate_segments`.

    ``scores``: flat ``{prefix + name: float}``; ``per_night``: one row per night (AHI,
    severity, event counts); ``events``: record id -> ``{"predicted", "reference"}`` lists of
    ``[onset_s, offset_s, label]`` in night time.
    """

    scores: dict[str, float]
    per_night: list[dict[str, Any]]
    events: dict[str, dict[str, list[list[float]]]]


def _local(metric: Metric | MetricCollection) -> Metric | MetricCollection:
    """Switch off cross-process synchronisation: the inputs are already gathered on every rank."""
    for m in metric.modules():
        if isinstance(m, Metric):
            m.sync_on_compute = False
            m._to_sync = False
    return metric


def _scalars(values: Mapping[str, Tensor], prefix: str) -> dict[str, float]:
    return {f"{prefix}{k}": float(v) for k, v in values.items()}


def evaluate_segments(
    segments: Sequence[Segment],
    nights: Mapping[str, NightInfo],
    post: PostProcessing,
    prefix: str = "test/",
    median_frames: bool = True,
) -> Evaluation:
    """Every reported metric of a set of post-processed segments (see the module docstring).

    Args:
        segments: frame labels; several segments of one night (``parity``: one per window) add
            their events to that night's AHI.
        nights: record id -> :class:`NightInfo` for every record in ``segments``.
        post: post-processing and matching settings.
        prefix: key prefix.
        median_frames: score frames after the median filter (night mode, SPECS §1.6) or before
            it (``parity``: the seed's ``evaluate.py`` reports raw frame predictions).

    Returns:
        An :class:`Evaluation`. Keys (after ``prefix``): frame ``acc``, ``f1_macro``, ``kappa``,
        ``{f1,prec,sens,spec}_{normal,hypopnea,apnea}`` and their ``*_macro``; events
        ``event_iou``, ``onset_err_s``, ``offset_err_s``, ``event_{precision,recall,f1}``,
        ``collar_{precision,recall,f1}`` and the same with ``agn_`` (class-agnostic); nights
        ``ahi_{pearson_r,mae,icc,icc_consistency,ba_bias,ba_loa_low,ba_loa_high}``,
        ``ahi_{se,sp,acc}@{5,15,30}``, ``ahi_class_acc`` (severity accuracy),
        ``ahi_severity_kappa``, ``ahi_n_records``; counts ``n_frames_scored``, ``n_nights``,
        ``n_ref_events``, ``n_pred_events``.
    """
    frames = _local(make_multiclass_metrics(N_CLASSES, "", class_names=CLASS_NAMES, auroc=False))
    event_metrics = {
        "": _local(EventIoU(iou_threshold=post.iou_threshold)),
        "agn_": _local(EventIoU(iou_threshold=post.iou_threshold, class_agnostic=True)),
    }
    collar_metrics = {
        "": _local(EventCollarF1(post.collar_s)),
        "agn_": _local(EventCollarF1(post.collar_s, class_agnostic=True)),
    }
    counts = {rid: 0 for rid in nights}
    events: dict[str, dict[str, list[list[float]]]] = {}
    n_frames = n_ref = 0
    for seg in segments:
        mask = np.asarray(seg.mask, dtype=bool)
        pred = np.where(mask, np.asarray(seg.pred, dtype=np.int64), 0)
        target = np.where(mask, np.asarray(seg.target, dtype=np.int64), 0)
        filtered, pred_ev = post.apply(pred, mask)
        scored = filtered if median_frames else pred
        if mask.any():
            frames.update(torch.from_numpy(scored[mask]), torch.from_numpy(target[mask]))
        ref_ev = frames_to_events(target, post.frame_s)
        for m in (*event_metrics.values(), *collar_metrics.values()):
            m.update(pred_ev, ref_ev)
        counts[seg.record_id] += len(pred_ev)
        n_frames += int(mask.sum())
        n_ref += len(ref_ev)
        night = events.setdefault(seg.record_id, {"predicted": [], "reference": []})
        for key, evs in (("predicted", pred_ev), ("reference", ref_ev)):
            night[key].extend(
                [e.onset_s + seg.offset_s, e.offset_s + seg.offset_s, e.label] for e in evs
            )

    scores: dict[str, float] = {}
    if n_frames:
        out = frames.compute()
        out.pop("confmat")
        scores.update(flatten_metric_dict({f"{prefix}{k}": v for k, v in out.items()}))
    for tag, m in event_metrics.items():
        scores.update(_scalars(m.compute(), f"{prefix}{tag}"))
    for tag, m in collar_metrics.items():
        scores.update(_scalars(m.compute(), f"{prefix}{tag}"))

    per_night, ahi_pred, ahi_ref = [], [], []
    for rid, info in nights.items():
        ahi = counts[rid] / info.ahi_hours if info.ahi_hours > 0 else float("nan")
        row = {
            "record": rid,
            "subject": info.subject_id,
            "ahi_hours": info.ahi_hours,
            "ahi_pred": ahi,
            "ahi_ref": info.ahi_ref,
            "n_pred_events": counts[rid],
            "n_ref_events": len(events.get(rid, {}).get("reference", [])),
        }
        if np.isfinite(ahi) and np.isfinite(info.ahi_ref):
            row["severity_pred"] = int(ahi_to_severity(ahi))
            row["severity_ref"] = int(ahi_to_severity(info.ahi_ref))
            ahi_pred.append(ahi)
            ahi_ref.append(info.ahi_ref)
        per_night.append(row)
    agreement = agreement_from_indices(
        ahi_pred, ahi_ref, post.ahi_cutoffs, classify=ahi_to_severity
    )
    scores.update(_scalars(agreement, f"{prefix}ahi_"))
    scores[f"{prefix}ahi_severity_kappa"] = severity_kappa(ahi_pred, ahi_ref)
    scores[f"{prefix}n_frames_scored"] = float(n_frames)
    scores[f"{prefix}n_nights"] = float(len(nights))
    scores[f"{prefix}n_ref_events"] = float(n_ref)
    scores[f"{prefix}n_pred_events"] = float(sum(counts.values()))
    return Evaluation(scores, per_night, events)


def severity_kappa(ahi_pred: Sequence[float], ahi_ref: Sequence[float]) -> float:
    """Cohen's κ (unweighted) of the 4 severity classes of two AHI lists; NaN below 2 nights."""
    if len(ahi_pred) < 2:
        return float("nan")
    pred = ahi_to_severity(torch.as_tensor(ahi_pred, dtype=torch.float64))
    ref = ahi_to_severity(torch.as_tensor(ahi_ref, dtype=torch.float64))
    return float(multiclass_cohen_kappa(pred, ref, num_classes=len(SEVERITY_CUTOFFS) + 1))


def validation_scores(
    pred: Tensor, target: Tensor, median_kernel: int = 5, prefix: str = "val/"
) -> dict[str, float]:
    """The seed's validation macro-F1 (SPECS §1.4) from window predictions in window order.

    The scored frames of all windows are concatenated (window order), the predictions median
    filtered *over that concatenation* (``scipy.signal.medfilt``, kernel ``median_kernel``) and
    F1 computed per class; ``f1_macro`` is their mean over all 3 classes (sklearn with
    ``labels=[0, 1, 2]``, ``zero_division=0``).

    Args:
        pred: ``[N, L]`` predicted frame labels.
        target: ``[N, L]`` reference labels, -1 where unscored.
        median_kernel: median filter length (odd, frames).
        prefix: key prefix.

    Returns:
        ``{prefix + "f1_macro", prefix + "f1_<class>"...}``; NaN when no frame is scored.
    """
    valid = target >= 0
    if not bool(valid.any()):
        return {f"{prefix}f1_macro": float("nan")}
    flat_pred = torch.from_numpy(median_filter_labels(pred[valid].numpy(), median_kernel))
    per_class = multiclass_f1_score(
        flat_pred, target[valid], num_classes=N_CLASSES, average=None, zero_division=0
    )
    out = {f"{prefix}f1_macro": float(per_class.mean())}
    out |= {f"{prefix}f1_{n}": float(v) for n, v in zip(CLASS_NAMES, per_class)}
    return out


# ---- segments from the cache, and the row's protocol tags --------------------------------------
def evaluation_tags(mode: str, post: PostProcessing) -> dict[str, Any]:
    """Tags of the evaluation protocol (the CRNN and the baseline rows alike)."""
    if mode == "parity":
        how = (
            "parity: window by window as the seed's evaluate.py (overlapping windows double count)"
        )
        ahi = "events of all windows / scored hours of the windows"
    else:
        how = "night: softmax averaged over overlapping windows per 80-ms frame, whole-night post-processing"
        ahi = "events / total sleep time inside the ROI (RML user staging)"
    return {
        "eval": how,
        "ahi": ahi,
        "post_processing": (
            f"median {post.median_kernel} frames, merge same-class gaps < {post.merge_gap_s:g} s, "
            f"drop events < {post.min_duration_s:g} s"
        ),
        "event_matching": (
            f"one-to-one by IoU, TP at IoU >= {post.iou_threshold:g}; "
            f"collar {post.collar_s:g} s (offset max(collar, 50 % of length))"
        ),
    }


def night_info(store: Any, rec: int, ahi_hours: float | None = None) -> NightInfo:
    """:class:`NightInfo` of cached record ``rec`` (``ahi_hours`` default: ``tst_s`` in hours)."""
    r = store.records[rec]
    hours = float(r.attrs.get("tst_s", 0.0)) / 3600.0 if ahi_hours is None else ahi_hours
    return NightInfo(r.record_id, r.subject_id, hours, float(r.attrs.get("ahi_ref", float("nan"))))


def night_segments(
    store: Any, night_probs: dict[int, torch.Tensor]
) -> tuple[list[Segment], dict[str, NightInfo]]:
    """One segment per night from stitched probabilities (record position -> ``[n, C]``).

    Predictions are the argmax of the mean softmax; frames no window covered are not scored.
    """
    segments, nights = [], {}
    for rec, probs in sorted(night_probs.items()):
        covered = torch.isfinite(probs).all(dim=1).numpy()
        pred = torch.nan_to_num(probs).argmax(dim=1).numpy()
        y = store.read(rec, "y").astype(np.int64)
        mask = store.read(rec, "mask").astype(bool) & covered
        info = night_info(store, rec)
        segments.append(Segment(info.record_id, pred, y, mask))
        nights[info.record_id] = info
    return segments, nights


def parity_segments(
    store: Any, index: Any, window: np.ndarray, pred: np.ndarray, target: np.ndarray
) -> tuple[list[Segment], dict[str, NightInfo]]:
    """One segment per test window, its scored frames only (the seed's ``evaluate.py``).

    Args:
        store: the cache.
        index: the test window index.
        window: ``[N]`` window positions in ``index``.
        pred: ``[N, L]`` predicted frame labels.
        target: ``[N, L]`` reference labels, -1 where not scored.
    """
    segments, scored = [], {}
    for w, p, t in zip(np.asarray(window).tolist(), np.asarray(pred), np.asarray(target)):
        valid = t >= 0
        rec = int(index.record[w])
        rid = store.records[rec].record_id
        segments.append(
            Segment(
                rid, p[valid], t[valid], np.ones(int(valid.sum()), bool), index.y_start[w] * FRAME_S
            )
        )
        scored[rec] = scored.get(rec, 0) + int(valid.sum())
    nights = {
        store.records[rec].record_id: night_info(store, rec, n * FRAME_S / 3600.0)
        for rec, n in sorted(scored.items())
    }
    return segments, nights
