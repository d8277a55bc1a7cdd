"""Over-sampling of a training set held in memory: SMOTE (imbalanced-learn) for fixed-size windows.

SMOTE makes new minority-class samples on the segment between a sample and one of its
``k_neighbors`` nearest same-class neighbours, so it needs every training vector at once: it
cannot run inside a lazy :class:`~sleepbench.data.windows.WindowDataset`. :func:`smote_dataset`
therefore reads the (transformed) training windows into RAM once, over-samples their flattened
vectors, and returns an :class:`ArrayWindowDataset` that serves items in the same dict layout, so
DataModules swap it in for ``train_set`` and nothing downstream changes.

Memory: ``N x window`` float32 before and about ``C x majority x window`` after, e.g. 4,700 SHHS
nights x 28,800 samples = 0.5 GB before, ~0.8 GB after. Use it for one-label windows (a whole night,
a clip); for sequences of labels use :class:`~sleepbench.data.samplers.ClassBalancedSampler`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = [
    "ArrayWindowDataset",
    "SmoteReport",
    "materialise",
    "smote_dataset",
    "smote_oversample",
]

log = logging.getLogger(__name__)


class ArrayWindowDataset(Dataset):
    """In-memory windows with the item layout of :class:`~sleepbench.data.windows.WindowDataset`.

    Args:
        x: ``[N, ...]`` float32 windows (already transformed).
        y: ``[N]`` integer labels.
        record: ``[N]`` cache position of each window's record (-1 for synthetic samples).
        window: ``[N]`` position in the source window index (-1 for synthetic samples);
            defaults to ``arange(N)``.

    Items: ``{"x": float32 tensor, "y": int64 scalar tensor, "record": int64, "window": int64}``.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        record: np.ndarray,
        window: np.ndarray | None = None,
    ) -> None:
        n = len(x)
        self.x = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))
        self.y = torch.as_tensor(np.asarray(y, dtype=np.int64))
        self.record = torch.as_tensor(np.asarray(record, dtype=np.int64))
        self.window = torch.as_tensor(
            np.arange(n, dtype=np.int64) if window is None else np.asarray(window, dtype=np.int64)
        )
        if not len(self.y) == len(self.record) == len(self.window) == n:
            raise ValueError("x, y, record and window differ in length")

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "y": self.y[i], "record": self.record[i], "window": self.window[i]}

    def labels(self) -> np.ndarray:
        """Label of every item (for samplers), int64 ``[N]``."""
        return self.y.numpy().copy()


def materialise(dataset: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read every item of a one-label-per-window dataset into arrays.

    Args:
        dataset: yields dicts with ``x`` (any shape, the same for all items), a scalar ``y`` and
            ``record`` (a :class:`~sleepbench.data.windows.WindowDataset` with its transform).

    Returns:
        ``(x [N, ...] float32, y [N] int64, record [N] int64)``.

    Raises:
        ValueError: a window carries more than one label (SMOTE needs one label per vector).
    """
    n = len(dataset)
    if n == 0:
        raise ValueError("cannot materialise an empty dataset")
    first = dataset[0]
    if first["y"].numel() != 1:
        raise ValueError(f"one label per window needed, got y of shape {tuple(first['y'].shape)}")
    x = np.empty((n, *first["x"].shape), dtype=np.float32)
    y = np.empty(n, dtype=np.int64)
    record = np.empty(n, dtype=np.int64)
    for i in range(n):
        item = first if i == 0 else dataset[i]
        x[i] = item["x"].numpy()
        y[i] = int(item["y"])
        record[i] = int(item["record"])
    return x, y, record


@dataclass(frozen=True)
class SmoteReport:
    """What :func:`smote_oversample` did: class counts before/after and the neighbours used."""

    counts_before: dict[int, int]
    counts_after: dict[int, int]
    k_neighbors: int
    method: str


def smote_oversample(
    x: np.ndarray,
    y: np.ndarray,
    k_neighbors: int = 5,
    seed: int = 0,
    sampling_strategy: str | dict[int, int] = "auto",
) -> tuple[np.ndarray, np.ndarray, SmoteReport]:
    """Over-sample the minority classes of ``(x, y)`` with SMOTE (``imblearn.over_sampling.SMOTE``).

    Args:
        x: ``[N, ...]`` samples; flattened to ``[N, D]`` vectors for the neighbour search.
        y: ``[N]`` integer labels.
        k_neighbors: SMOTE's neighbours (5 as the paper's default). Lowered to
            ``smallest class - 1`` when a class is that small; with a class of a single sample,
            SMOTE is impossible and random duplication (``RandomOverSampler``) is used instead.
        seed: random state of the sampler.
        sampling_strategy: imblearn's ``sampling_strategy`` (``"auto"``: every class up to the
            majority count).

    Returns:
        ``(x_res, y_res, report)``: the original samples first, in order, then the new ones;
        ``x_res`` has ``x``'s per-sample shape and float32 dtype.
    """
    from imblearn.over_sampling import SMOTE, RandomOverSampler

    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{x.shape[0]} samples but {y.shape[0]} labels")
    classes, counts = np.unique(y, return_counts=True)
    before = {int(c): int(n) for c, n in zip(classes, counts)}
    flat = x.reshape(len(x), -1)
    if len(classes) < 2:
        log.warning("SMOTE: a single class in the training set, nothing to balance")
        return x.copy(), y.copy(), SmoteReport(before, before, 0, "none")
    k = min(int(k_neighbors), int(counts.min()) - 1)
    if k >= 1:
        if k < k_neighbors:
            log.warning(
                "SMOTE: smallest class has %d samples, k_neighbors %d -> %d",
                counts.min(),
                k_neighbors,
                k,
            )
        sampler = SMOTE(sampling_strategy=sampling_strategy, k_neighbors=k, random_state=seed)
        method = "smote"
    else:
        log.warning("SMOTE: a class has a single sample; random over-sampling instead")
        sampler = RandomOverSampler(sampling_strategy=sampling_strategy, random_state=seed)
        method = "random"
    flat_res, y_res = sampler.fit_resample(flat, y)
    # imblearn stacks the originals first; the record bookkeeping below relies on it
    if not np.array_equal(flat_res[: len(flat)], flat):
        raise RuntimeError("imblearn changed the order of the original samples")
    after = {int(c): int(n) for c, n in zip(*np.unique(y_res, return_counts=True))}
    x_res = flat_res.reshape(len(flat_res), *x.shape[1:]).astype(np.float32, copy=False)
    return x_res, np.asarray(y_res, dtype=np.int64), SmoteReport(before, after, max(k, 0), method)


def smote_dataset(
    dataset: Dataset, k_neighbors: int = 5, seed: int = 0
) -> tuple[ArrayWindowDataset, SmoteReport]:
    """SMOTE-balanced in-memory copy of a one-label-per-window training dataset.

    Args:
        dataset: the training dataset (its transform, e.g. label mapping, is applied on reading).
        k_neighbors: see :func:`smote_oversample`.
        seed: random state.

    Returns:
        ``(ArrayWindowDataset, report)``; synthetic items have ``record = window = -1``.
    """
    x, y, record = materialise(dataset)
    x_res, y_res, report = smote_oversample(x, y, k_neighbors, seed)
    n_new = len(y_res) - len(y)
    record_res = np.concatenate([record, np.full(n_new, -1, dtype=np.int64)])
    window_res = np.concatenate([np.arange(len(y)), np.full(n_new, -1, dtype=np.int64)])
    log.info("SMOTE: %s -> %s (%s)", report.counts_before, report.counts_after, report.method)
    return ArrayWindowDataset(x_res, y_res, record_res, window_res), report
