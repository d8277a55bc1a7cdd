"""The one window index and map-style dataset every task streams from its cache.

A window is ``(record, x_start, x_stop, y_start, y_stop)``: samples ``[x_start, x_stop)`` along the
last axis of the record's ``x`` dataset and entries ``[y_start, y_stop)`` of its ``y`` dataset.
That covers a minute of ECG with one label, 31 sleep epochs with 31 labels, a whole night with one
label, a 60-s audio window with 750 frame labels, or one respiratory cycle of a clip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from sleepbench.cache.store import CacheStore


@dataclass
class WindowIndex:
    """Parallel int64 arrays, one entry per window."""

    record: np.ndarray
    x_start: np.ndarray
    x_stop: np.ndarray
    y_start: np.ndarray
    y_stop: np.ndarray

    def __post_init__(self) -> None:
        for name in ("record", "x_start", "x_stop", "y_start", "y_stop"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.int64))
        n = len(self.record)
        if any(len(getattr(self, k)) != n for k in ("x_start", "x_stop", "y_start", "y_stop")):
            raise ValueError("WindowIndex arrays differ in length")

    def __len__(self) -> int:
        return len(self.record)

    def subset(self, mask_or_idx: np.ndarray) -> WindowIndex:
        """Windows selected by a boolean mask or integer positions."""
        return WindowIndex(
            self.record[mask_or_idx],
            self.x_start[mask_or_idx],
            self.x_stop[mask_or_idx],
            self.y_start[mask_or_idx],
            self.y_stop[mask_or_idx],
        )

    @staticmethod
    def concat(parts: Iterable[WindowIndex]) -> WindowIndex:
        """Concatenate several indices."""
        parts = list(parts)
        if not parts:
            return WindowIndex(*([np.zeros(0, np.int64)] * 5))
        return WindowIndex(
            *(
                np.concatenate([getattr(p, k) for p in parts])
                for k in ("record", "x_start", "x_stop", "y_start", "y_stop")
            )
        )


def regular_windows(
    record: int,
    n_labels: int,
    samples_per_label: int,
    labels_per_window: int = 1,
    stride_labels: int | None = None,
) -> WindowIndex:
    """Windows of ``labels_per_window`` consecutive labels over one record.

    Args:
        record: record position in the cache store.
        n_labels: number of labels (minutes, epochs, frames) of the record.
        samples_per_label: samples of ``x`` per label (6000 for a 100-Hz minute).
        labels_per_window: labels per window (31 epochs for sleep staging).
        stride_labels: step between window starts, in labels (default: no overlap).

    Returns:
        The windows that fit entirely inside the record.
    """
    stride = stride_labels or labels_per_window
    starts = np.arange(0, n_labels - labels_per_window + 1, stride, dtype=np.int64)
    return WindowIndex(
        record=np.full(len(starts), record),
        x_start=starts * samples_per_label,
        x_stop=(starts + labels_per_window) * samples_per_label,
        y_start=starts,
        y_stop=starts + labels_per_window,
    )


class WindowDataset(Dataset):
    """Map-style dataset over a :class:`WindowIndex` of a :class:`CacheStore`.

    Args:
        store: the cache.
        index: windows to serve.
        transform: optional ``(x: np.ndarray, y: np.ndarray, rng) -> (x, y)`` applied per item
            (augmentation, normalisation); ``rng`` is a per-item numpy Generator.
        extra: names of further per-label datasets to slice like ``y`` (e.g. ``("mask",)``).

    Augmentation draws come from torch's generator (seeded by ``seed_everything(..., workers=True)``
    in the main process and every DataLoader worker), so runs are reproducible and epochs differ.

    Items are dicts: ``x`` float32 tensor ``[..., x_stop - x_start]``, ``y`` tensor (squeezed to a
    scalar for one label), ``record`` int tensor, ``window`` int tensor, plus ``extra`` entries.
    """

    def __init__(
        self,
        store: CacheStore,
        index: WindowIndex,
        transform: Callable[
            [np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]
        ]
        | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        self.store = store
        self.index = index
        self.transform = transform
        self.extra = tuple(extra)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ix = self.index
        rec = int(ix.record[i])
        x = self.store.read(rec, "x", (..., slice(int(ix.x_start[i]), int(ix.x_stop[i]))))
        ysl = slice(int(ix.y_start[i]), int(ix.y_stop[i]))
        y = self.store.read(rec, "y", ysl)
        if self.transform is not None:
            rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,))))
            x, y = self.transform(x, y, rng)
        item = {
            "x": torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32),
            "y": torch.as_tensor(np.asarray(y)).squeeze(0)
            if np.size(y) == 1
            else torch.as_tensor(np.asarray(y)),
            "record": torch.tensor(rec, dtype=torch.long),
            "window": torch.tensor(i, dtype=torch.long),
        }
        for name in self.extra:
            item[name] = torch.as_tensor(self.store.read(rec, name, ysl))
        return item

    def labels(self) -> np.ndarray:
        """Label of every window (first label of multi-label windows), read once; for samplers."""
        out = np.empty(len(self.index), dtype=np.int64)
        for rec in np.unique(self.index.record):
            sel = np.flatnonzero(self.index.record == rec)
            y = self.store.read(int(rec), "y")
            out[sel] = y[self.index.y_start[sel]]
        return out
