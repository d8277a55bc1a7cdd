"""Severity grades from an oxygen desaturation index: hard cut-offs, softened class
probabilities, and cut-offs fitted on training nights (the ODI peer's grading,
:mod:`sleepbench.tasks.shhs_spo2.peer`)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

__all__ = ["fit_cutoffs", "grade", "odi_probs"]

#: weight of the ordinal-logistic part of the class probabilities (< 0.5: argmax = hard grade)
_SOFT = 0.1
#: its scale, in log(1 + events/h)
_SOFT_SCALE = 0.3
#: most candidate values per cut-off in the exhaustive search
_MAX_CANDIDATES = 120


def grade(scores: np.ndarray, cutoffs: Sequence[float]) -> np.ndarray:
    """Class of each score: the number of cut-offs it reaches (``score >= cut-off``)."""
    s = np.asarray(scores, dtype=np.float64)
    return (s[:, None] >= np.asarray(cutoffs, dtype=np.float64)[None, :]).sum(axis=1)


def odi_probs(scores: np.ndarray, cutoffs: Sequence[float]) -> np.ndarray:
    """Class probabilities ``[n, len(cutoffs) + 1]`` whose argmax is :func:`grade`.

    ``(1 - w) * onehot(grade) + w * ordinal``, where the ordinal part has
    ``P(class >= j + 1) = sigmoid((log1p(score) - log1p(cutoffs[j])) / 0.3)`` and ``w = 0.1``.
    Every ``P(class >= j)`` then rises strictly with the score, so an AUROC of a collapsed
    probability is the AUROC of the score itself.
    """
    s = np.log1p(np.maximum(np.asarray(scores, dtype=np.float64), 0.0))
    c = np.log1p(np.maximum(np.asarray(cutoffs, dtype=np.float64), 0.0))
    ge = 1.0 / (1.0 + np.exp(-(s[:, None] - c[None, :]) / _SOFT_SCALE))  # P(class >= j + 1)
    ones = np.ones((s.size, 1))
    cum = np.concatenate([ones, ge, 0.0 * ones], axis=1)
    ordinal = cum[:, :-1] - cum[:, 1:]
    onehot = np.eye(len(c) + 1)[grade(scores, cutoffs)]
    return (1.0 - _SOFT) * onehot + _SOFT * ordinal


def _confusion_scores(conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and Cohen's kappa of confusion matrices ``[..., true, pred]``."""
    n = conf.sum(axis=(-2, -1))
    po = np.trace(conf, axis1=-2, axis2=-1) / n
    pe = (conf.sum(axis=-1) * conf.sum(axis=-2)).sum(axis=-1) / n**2
    kappa = np.divide(po - pe, 1.0 - pe, out=np.zeros_like(po), where=pe < 1.0)
    return po, kappa


def fit_cutoffs(
    scores: np.ndarray, labels: np.ndarray, n_classes: int = 4, metric: str = "acc"
) -> tuple[tuple[float, ...], float, float]:
    """Monotone cut-offs on ``scores`` that best reproduce ``labels`` (classes 0..n-1).

    Candidates are the midpoints between consecutive distinct scores plus one value below and
    one above them all (at most 120, else quantiles); every non-decreasing choice of
    ``n_classes - 1`` candidates is scored exactly from per-class cumulative counts.

    Args:
        scores: one score per night (ODI, events/h).
        labels: reference classes.
        n_classes: number of classes (4, or 2 for a binary variant).
        metric: ``acc`` (ties broken by kappa) or ``kappa`` (ties broken by accuracy).

    Returns:
        ``(cut-offs, training accuracy, training kappa)``; among equal scores, the first
        combination in candidate order.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if s.size == 0:
        raise ValueError("no training scores to fit cut-offs on")
    u = np.unique(s)
    inner = (u[1:] + u[:-1]) / 2.0
    if inner.size > _MAX_CANDIDATES - 2:
        inner = np.unique(np.quantile(s, np.linspace(0.0, 1.0, _MAX_CANDIDATES)[1:-1]))
    cand = np.concatenate([[max(u[0] - 1.0, 0.0) if u[0] > 0 else -1.0], inner, [u[-1] + 1.0]])
    # below[k, j]: nights of class k with score < cand[j]
    below = np.stack(
        [np.searchsorted(np.sort(s[y == k]), cand, side="left") for k in range(n_classes)]
    )
    total = np.bincount(y, minlength=n_classes)[:n_classes]
    combos = np.array(
        list(itertools.combinations_with_replacement(range(cand.size), n_classes - 1)),
        dtype=np.int64,
    )
    # cumulative counts per class at each cut-off: [combo, class, cut]
    cum = below[:, combos].transpose(1, 0, 2)
    edges = np.concatenate(
        [
            np.zeros_like(cum[..., :1]),
            cum,
            np.broadcast_to(total[None, :, None], cum[..., :1].shape),
        ],
        axis=-1,
    )
    conf = np.diff(edges, axis=-1).astype(np.float64)  # [combo, true, pred]
    acc, kappa = _confusion_scores(conf)
    first, second = (acc, kappa) if metric == "acc" else (kappa, acc)
    best = int(np.lexsort((-second.round(12), -first.round(12)))[0])
    cuts = tuple(float(round(cand[j], 4)) for j in combos[best])
    return cuts, float(acc[best]), float(kappa[best])
