"""SMOTE over-sampling of an in-memory training set (sleepbench.data.oversample)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from imblearn.over_sampling import SMOTE
from torch.utils.data import Dataset

from sleepbench.data.oversample import (
    ArrayWindowDataset,
    materialise,
    smote_dataset,
    smote_oversample,
)


def _imbalanced(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    counts = {0: 30, 1: 12, 2: 7}
    x = np.concatenate(
        [rng.normal(3.0 * c, 1.0, size=(n, 1, 20)) for c, n in counts.items()]
    ).astype(np.float32)
    y = np.concatenate([np.full(n, c) for c, n in counts.items()])
    return x, y


def test_smote_balances_and_keeps_originals_first() -> None:
    x, y = _imbalanced()
    x_res, y_res, report = smote_oversample(x, y, k_neighbors=5, seed=3)
    assert x_res.shape[1:] == x.shape[1:] and x_res.dtype == np.float32
    assert np.bincount(y_res).tolist() == [30, 30, 30]
    assert report.counts_before == {0: 30, 1: 12, 2: 7} and report.method == "smote"
    np.testing.assert_array_equal(x_res[: len(x)], x)
    np.testing.assert_array_equal(y_res[: len(y)], y)


def test_smote_matches_imblearn_and_interpolates_within_class() -> None:
    x, y = _imbalanced(1)
    x_res, y_res, _ = smote_oversample(x, y, k_neighbors=5, seed=7)
    ref_x, ref_y = SMOTE(k_neighbors=5, random_state=7).fit_resample(x.reshape(len(x), -1), y)
    np.testing.assert_allclose(x_res.reshape(len(x_res), -1), ref_x, rtol=1e-6)
    np.testing.assert_array_equal(y_res, ref_y)
    # a SMOTE sample lies on a segment between two same-class samples: inside the class's box
    for c in np.unique(y):
        new = x_res[len(x) :][y_res[len(x) :] == c]
        own = x[y == c]
        assert np.all(new >= own.min(axis=0) - 1e-5) and np.all(new <= own.max(axis=0) + 1e-5)


def test_small_classes_lower_k_or_fall_back_to_duplication() -> None:
    x, y = _imbalanced()
    keep = np.concatenate([np.flatnonzero(y == 0), np.flatnonzero(y == 1)[:3]])
    _, y_res, report = smote_oversample(x[keep], y[keep], k_neighbors=5)
    assert report.k_neighbors == 2 and report.method == "smote"
    assert np.bincount(y_res).tolist() == [30, 30]
    keep = np.concatenate([np.flatnonzero(y == 0), np.flatnonzero(y == 2)[:1]])
    x_res, y_res, report = smote_oversample(x[keep], y[keep])
    assert report.method == "random" and np.bincount(y_res).tolist() == [30, 0, 30]
    # duplicates of the single sample
    np.testing.assert_array_equal(x_res[y_res == 2][0], x[keep][-1])


class _Windows(Dataset):
    """Items shaped like WindowDataset's."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "x": torch.as_tensor(self.x[i]),
            "y": torch.tensor(int(self.y[i])),
            "record": torch.tensor(100 + i),
            "window": torch.tensor(i),
        }


def test_smote_dataset_serves_windowdataset_items() -> None:
    x, y = _imbalanced()
    ds, report = smote_dataset(_Windows(x, y), k_neighbors=5, seed=0)
    assert isinstance(ds, ArrayWindowDataset) and len(ds) == 90
    item = ds[0]
    assert set(item) == {"x", "y", "record", "window"}
    assert item["x"].shape == (1, 20) and item["x"].dtype == torch.float32
    assert int(item["record"]) == 100 and int(item["y"]) == 0
    assert int(ds[len(x)]["record"]) == -1 and int(ds[len(x)]["window"]) == -1
    np.testing.assert_array_equal(np.bincount(ds.labels()), [30, 30, 30])
    assert report.counts_after == {0: 30, 1: 30, 2: 30}


def test_materialise_rejects_multi_label_windows() -> None:
    class Seq(_Windows):
        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            item = super().__getitem__(i)
            item["y"] = torch.tensor([0, 1])
            return item

    x, y = _imbalanced()
    with pytest.raises(ValueError, match="one label per window"):
        materialise(Seq(x, y))
