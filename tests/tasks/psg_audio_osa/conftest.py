"""A tiny psg_audio_osa cache in the contract's format, and a data module over it.

Used by the module and baseline tests until (and independently of) the task's real data module:
nights of quiet-during-events "breathing" mel spectrograms, rasterised labels, an ROI mask and
the contract's record attrs. Windows are 20 s (250 labels) at a 10-s stride rather than the
contract's 60 / 30 s, to keep CPU tests fast (nothing in the module depends on the length).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pytest
from torch.utils.data import DataLoader

from sleepbench.cache.build import ProcessedRecord, SourceRecord, build_cache
from sleepbench.cache.store import CacheStore
from sleepbench.data.windows import WindowDataset, WindowIndex, regular_windows
from sleepbench.signal.mel import dequantize_db, energy_profile, quantize_db, zscore

LABELS_PER_WINDOW = 250
STRIDE = 125
MEL_PER_LABEL = 8
FRAME_S = 0.08


def fake_night(rec_seed: int, n_labels: int) -> ProcessedRecord:
    """One night: mel dB drops during events (apnea deeper than hypopnea), ROI margins masked."""
    rng = np.random.default_rng(rec_seed)
    y = np.zeros(n_labels, np.int8)
    pos = 200
    while pos < n_labels - 300:
        length = int(rng.integers(140, 300))  # 11-24 s
        y[pos : pos + length] = rng.integers(1, 3)
        pos += length + int(rng.integers(150, 500))
    t = np.arange(n_labels * MEL_PER_LABEL) / 100.0
    breath = -30.0 + 8.0 * np.sin(2 * np.pi * t / 4.0)  # 4-s breathing cycle
    drop = np.repeat(np.array([0.0, 12.0, 30.0])[y], MEL_PER_LABEL)
    level = breath - drop + rng.normal(0, 1.5, t.size)
    mel_db = level[None, :] + rng.normal(0, 3.0, (128, t.size)) - np.linspace(0, 20, 128)[:, None]
    mel_db = np.clip(mel_db - mel_db.max(), -80.0, 0.0)
    mask = np.ones(n_labels, np.uint8)
    mask[:100] = 0
    mask[-150:] = 0
    roi = mask.astype(bool)
    # events with onset inside the ROI, per hour of a TST a little shorter than the ROI
    onsets = np.flatnonzero(np.diff(np.concatenate([[0], (y > 0).astype(int)])) == 1)
    tst_s = 0.9 * roi.sum() * FRAME_S
    n_events = int(roi[onsets].sum())
    return ProcessedRecord(
        arrays={"x": quantize_db(mel_db), "y": y, "mask": mask},
        attrs={
            "duration_s": n_labels * FRAME_S,
            "source_fs_hz": 48000.0,
            "channel": "Mic",
            "roi_start_s": 100 * FRAME_S,
            "roi_end_s": (n_labels - 150) * FRAME_S,
            "tst_s": tst_s,
            "ahi_ref": n_events / (tst_s / 3600.0),
            "severity": 0,
            "n_events": n_events,
            "gaps": "[]",
            "annotations": "APNEA_RML",
        },
    )


def _preprocess(source: SourceRecord, cfg: Any) -> ProcessedRecord:
    return fake_night(int(source.meta["seed"]), int(source.meta["n_labels"]))


def window_transform(x: np.ndarray, y: np.ndarray, rng: np.random.Generator):
    """Contract item: z-scored mel rows + z-scored energy row (no augmentation)."""
    db = dequantize_db(x)
    return np.concatenate([zscore(db), zscore(energy_profile(db))[None]]), y.astype(np.int64)


@dataclass
class FakeSplit:
    train: list[str]
    val: list[str]
    test: list[str]
    leaky: bool = False


class FakeOsaDataModule(pl.LightningDataModule):
    """store / split / train_set / val_set / test_set / provenance, as the task's module expects."""

    def __init__(self, store: CacheStore, split: FakeSplit, batch_size: int = 4) -> None:
        super().__init__()
        self.store, self.split, self.batch_size = store, split, batch_size
        sets = {}
        for stage, ids in (("train", split.train), ("val", split.val), ("test", split.test)):
            index = WindowIndex.concat(
                regular_windows(
                    store.index_of(r),
                    int(store.records[store.index_of(r)].shapes["y"][0]),
                    MEL_PER_LABEL,
                    LABELS_PER_WINDOW,
                    STRIDE,
                )
                for r in ids
            )
            sets[stage] = WindowDataset(store, index, window_transform, extra=("mask",))
        self.train_set, self.val_set, self.test_set = sets["train"], sets["val"], sets["test"]
        self.provenance = {"synthetic": True, "n_records": len(store.records)}

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, batch_size=self.batch_size)


@pytest.fixture(scope="session")
def osa_store(tmp_path_factory: pytest.TempPathFactory) -> CacheStore:
    """Six fake nights of 750-1000 labels (1-1.3 min; 5 to 7 windows)."""
    root = tmp_path_factory.mktemp("osa_cache")
    sources = []
    for i in range(6):
        path = root / f"night{i}.edf"
        path.write_bytes(b"fake")
        sources.append(
            SourceRecord(
                f"n{i}", f"s{i}", (Path(path),), {"seed": i, "n_labels": STRIDE * (6 + i % 3)}
            )
        )
    path = build_cache("psg_audio_osa_test", sources, _preprocess, {}, root, "1", progress=False)
    return CacheStore(path, in_memory=True)


@pytest.fixture()
def osa_dm(osa_store: CacheStore) -> FakeOsaDataModule:
    """Train n0-n2, validate n3, test n4-n5."""
    return FakeOsaDataModule(osa_store, FakeSplit(["n0", "n1", "n2"], ["n3"], ["n4", "n5"]))
