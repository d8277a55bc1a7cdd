"""Evaluation windows that score every label of a record exactly once.

Sequence-to-sequence models (31 sleep epochs in, 31 stages out) are evaluated on fixed-length
windows, but a night is rarely a whole number of windows long. :func:`covering_windows` tiles a
record with non-overlapping windows and adds one window aligned to the record's end, so every
label is inside at least one window; :func:`first_new_label` then says, for each window, from
which position on its labels are not already covered by an earlier window of the same record.
Scoring only those positions counts each label exactly once (the first prediction wins), which
keeps pooled metrics streaming and exact under distributed evaluation.
"""

from __future__ import annotations

import numpy as np

from sleepbench.data.windows import WindowIndex, regular_windows

__all__ = ["covering_windows", "first_new_label"]


def covering_windows(
    record: int, n_labels: int, samples_per_label: int, labels_per_window: int
) -> WindowIndex:
    """Windows of ``labels_per_window`` labels covering all ``n_labels`` labels of one record.

    Starts are ``0, L, 2L, ...`` and, when ``n_labels`` is not a multiple of ``L``, a last
    start ``n_labels - L`` (that window overlaps its predecessor).

    Args:
        record: record position in the cache store.
        n_labels: labels (epochs) of the record.
        samples_per_label: samples of ``x`` per label (3840 for a 30-s epoch at 128 Hz).
        labels_per_window: labels per window ``L``.

    Returns:
        The windows; empty when the record is shorter than one window.
    """
    if labels_per_window < 1:
        raise ValueError(f"labels_per_window must be >= 1, got {labels_per_window}")
    tiles = regular_windows(record, n_labels, samples_per_label, labels_per_window)
    if len(tiles) == 0 or n_labels % labels_per_window == 0:
        return tiles
    last = n_labels - labels_per_window  # end-aligned window over the remainder
    tail = WindowIndex(
        [record], [last * samples_per_label], [n_labels * samples_per_label], [last], [n_labels]
    )
    return WindowIndex.concat([tiles, tail])


def first_new_label(index: WindowIndex) -> np.ndarray:
    """Per window, the offset (from ``y_start``) of its first label no earlier window covers.

    "Earlier" means a smaller ``y_start`` in the same record (ties: lower position in the
    index). Positions ``>= offset`` of a window are new; a window whose labels are all covered
    already gets ``offset = y_stop - y_start``.

    Args:
        index: any window index (overlapping or not, records in any order).

    Returns:
        int64 array, one offset per window.
    """
    out = np.zeros(len(index), dtype=np.int64)
    for rec in np.unique(index.record):
        pos = np.flatnonzero(index.record == rec)
        pos = pos[np.lexsort((pos, index.y_start[pos]))]
        covered = np.iinfo(np.int64).min
        for p in pos:
            start, stop = int(index.y_start[p]), int(index.y_stop[p])
            out[p] = min(max(covered - start, 0), stop - start)
            covered = max(covered, stop)
    return out
