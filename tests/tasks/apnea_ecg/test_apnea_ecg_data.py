"""apnea_ecg data pipeline: sources, cache, protocols, windows, normalisation, bad records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb
from omegaconf import DictConfig

from sleepbench.config import load_config
from sleepbench.data.splits import LeakageError
from sleepbench.tasks.apnea_ecg.data import MINUTE_SAMPLES, ApneaECGDataModule, ECGTransform
from sleepbench.tasks.apnea_ecg.synth import write_synthetic_apnea_ecg


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("apnea")
    write_synthetic_apnea_ecg(root, n_released=5, n_withheld=3, minutes=30, seed=3)
    return root


def _cfg(root: Path, tmp: Path, *extra: str) -> DictConfig:
    cfg = load_config(
        "apnea_ecg",
        [
            f"data.root={root}",
            f"data.cache_dir={tmp / 'cache'}",
            f"output.splits_dir={tmp / 'splits'}",
            "data.build_workers=1",
            "trainer.enable_progress_bar=false",
            "split.val_records=1",
            *extra,
        ],
    )
    return cfg


def test_official_protocol(synth_root: Path, tmp_path: Path) -> None:
    dm = ApneaECGDataModule(_cfg(synth_root, tmp_path))
    dm.setup("fit")
    split = dm.split
    assert set(split.test) == {"x01", "x02", "x03"}
    assert len(split.val) == 1 and len(split.train) == 4
    assert not split.leaky and not set(split.train) & set(split.val)
    # one window per labelled minute, aligned on minute boundaries (the corrected alignment)
    idx = dm.test_set.index
    assert len(idx) == 3 * 30
    assert np.array_equal(idx.x_start, idx.y_start * MINUTE_SAMPLES)
    item = dm.test_set[5]
    assert item["x"].shape == (1, MINUTE_SAMPLES) and item["y"].ndim == 0
    # labels in the cache are the .apn / event-2-answers labels
    rec = dm.store.index_of("a01")
    ann = wfdb.rdann(str(synth_root / "a01"), "apn")
    assert dm.store.read(rec, "y").tolist() == [1 if s == "A" else 0 for s in ann.symbol]
    assert Path(dm.provenance["split_file"]).exists()


def test_parity_protocol_is_leaky_and_misaligned(synth_root: Path, tmp_path: Path) -> None:
    dm = ApneaECGDataModule(_cfg(synth_root, tmp_path, "protocol=parity"))
    dm.setup("fit")
    assert dm.split.leaky and dm.provenance["leaky"]
    idx = dm.train_set.index
    # upstream: label i attached to the window starting at sample 3000 i
    assert np.array_equal(idx.x_start, idx.y_start * (MINUTE_SAMPLES // 2))
    n = len(dm.train_set) + len(dm.val_set) + len(dm.test_set)
    assert abs(len(dm.train_set) / n - 0.7) < 0.02 and abs(len(dm.test_set) / n - 0.2) < 0.02
    # windows are split, not records: the same record appears in train and test
    assert set(dm.train_set.index.record) & set(dm.test_set.index.record)


def test_normalisation_and_augmentation() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0.3, 2.0, size=(1, MINUTE_SAMPLES)).astype(np.float32)
    x[0, :10] = np.nan
    out, _ = ECGTransform(0.3, 2.0, augment=False)(x, np.zeros(1), rng)
    assert np.isfinite(out).all() and abs(float(out[0, 10:].mean())) < 0.05
    aug, _ = ECGTransform(0.3, 2.0, augment=True, p=1.0)(x, np.zeros(1), np.random.default_rng(1))
    assert aug.shape == x.shape and not np.allclose(aug, out)


def test_bad_record_is_skipped_with_reason(synth_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    for f in synth_root.iterdir():
        (root / f.name).write_bytes(f.read_bytes())
    dat = root / "a02.dat"
    dat.write_bytes(dat.read_bytes()[: dat.stat().st_size // 3])  # truncated signal file
    (root / "b01.apn").unlink()  # a training record without labels
    dm = ApneaECGDataModule(_cfg(root, tmp_path))
    dm.setup("fit")
    skipped = dict(dm.store.skipped)
    assert set(skipped) == {"a02", "b01"}
    assert "a02.dat" in skipped["a02"] and "b01" in skipped["b01"]
    assert "a02" not in dm.split.train + dm.split.val
    assert dm.provenance["skipped"]


def test_stored_split_with_leak_is_rejected(synth_root: Path, tmp_path: Path) -> None:
    dm = ApneaECGDataModule(_cfg(synth_root, tmp_path))
    dm.setup("fit")
    path = Path(dm.provenance["split_file"])
    split = dm.split
    split.test = [*split.test, split.train[0]]  # crafted: a training subject also tested
    split.save(path)
    with pytest.raises(LeakageError):
        ApneaECGDataModule(_cfg(synth_root, tmp_path)).setup("fit")
