"""sleep_edf data pipeline: labels, trimming, preprocessing against mne, bad PSGs, folds, windows,
sampling, transform and the verified download."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from scipy.signal import resample_poly

from sleepbench.cache.store import CacheStore
from sleepbench.config import load_config, to_plain
from sleepbench.data.windows import WindowDataset
from sleepbench.errors import RecordingError
from sleepbench.io.edf import read_edf
from sleepbench.io.edf_write import write_edf
from sleepbench.io.sleep_edf_labels import read_hypnogram
from sleepbench.recording import Signal
from sleepbench.tasks.sleep_edf.data import (
    CLASS_NAMES,
    IGNORE,
    SleepEDFDataModule,
    StagingTransform,
    match_hypnogram,
    parse_protocol,
    preprocess_night,
    protocol_records,
    sleep_span,
    stage_labels,
)
from sleepbench.tasks.sleep_edf.synth import write_synthetic_sleep_edf
from sleepbench.tasks.sleep_edf.task import download, sleep_edf_wanted


# ---- labels on the real hypnogram --------------------------------------------------------------
@pytest.mark.samples
def test_real_hypnogram_labels_trimming_and_overhang(samples_dir: Path) -> None:
    stages = read_hypnogram(samples_dir / "sleep_edf" / "SC4001EC-Hypnogram.edf")
    y = stage_labels(stages)
    # W 1997, REM 125, N1 58, N2 250, N3 (R&K 3 + 4) 220, '?' 230 -> ignored, in upstream order
    assert Counter(y.tolist()) == {0: 1997, 1: 125, 2: 58, 3: 250, 4: 220, IGNORE: 230}
    assert [CLASS_NAMES[i] for i in (0, 1, 2, 3, 4)] == ["W", "REM", "N1", "N2", "N3"]

    # the real PSG SC4001E0 is 79,500 s = 2650 epochs; the hypnogram's trailing '?' run is cut
    matched = match_hypnogram(stages, 2650, max_overhang_epochs=0, source=Path("h"))
    assert len(matched) == 2650 and matched == stages[:2650]
    # a PSG ending 50 epochs early leaves 50 scored epochs past its end: truncated
    with pytest.raises(RecordingError, match="50 epochs past the end"):
        match_hypnogram(stages, 2600, max_overhang_epochs=2, source=Path("h"))

    # ±30 min around sleep: first sleep epoch 1021, last 1741 -> [961, 1802), 841 epochs
    start, stop = sleep_span(matched, margin_epochs=60)
    sleep = np.flatnonzero(np.isin(y[:2650], [1, 2, 3, 4]))
    assert (start, stop) == (sleep[0] - 60, sleep[-1] + 61) == (961, 1802)
    kept = y[start:stop]
    assert kept.size == 841 and IGNORE not in kept
    assert sleep_span(matched, None) == (0, 2650)


def test_sleep_span_needs_sleep() -> None:
    with pytest.raises(ValueError, match="no sleep"):
        sleep_span(["W", "W", None], 60)
    assert sleep_span([None, "W", "N2", "W", None], None) == (1, 4)
    assert sleep_span(["W"] * 5 + ["N2"] + ["W"] * 5, 2) == (3, 8)


# ---- one synthetic night against an independent mne read ---------------------------------------
PREPROCESS = {
    "eeg_channels": ["EEG Fpz-Cz", "EEG Pz-Oz"],
    "eog_channel": "EOG horizontal",
    "expected_fs_hz": 100.0,
    "fs_hz": 128.0,
    "clip_iqr_k": 20.0,
    "trim_wake_min": 10,
    "max_overhang_epochs": 2,
}


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sedf_synth")
    write_synthetic_sleep_edf(root, n_subjects=3, nights_per_subject=1, minutes=40, seed=3)
    return root


def _sources(root: Path) -> list:
    cfg = OmegaConf.create({})
    return SleepEDFDataModule.list_sources(root, cfg)


def test_preprocess_matches_mne_reference(synth_root: Path) -> None:
    import mne

    source = _sources(synth_root)[0]
    out = preprocess_night(source, PREPROCESS)
    psg, hyp = source.paths
    stages = read_hypnogram(hyp)
    raw = mne.io.read_raw_edf(
        psg, include=PREPROCESS["eeg_channels"] + ["EOG horizontal"], verbose=False
    )
    data = raw.get_data(picks=PREPROCESS["eeg_channels"] + ["EOG horizontal"]) * 1e6  # V -> uV
    n_signal = data.shape[1] // 3000
    start, stop = sleep_span(stages[:n_signal], 20)  # 10 min = 20 epochs
    seg = resample_poly(data[:, start * 3000 : stop * 3000], 32, 25, axis=-1)
    med = np.median(seg, axis=1, keepdims=True)
    q1, q3 = np.percentile(seg, [25, 75], axis=1, keepdims=True)
    clipped = np.clip(seg, med - 20 * (q3 - q1), med + 20 * (q3 - q1))
    med = np.median(clipped, axis=1, keepdims=True)
    q1, q3 = np.percentile(clipped, [25, 75], axis=1, keepdims=True)
    expected = (clipped - med) / (q3 - q1)

    x, y = out.arrays["x"], out.arrays["y"]
    assert x.dtype == np.float32 and x.shape == (3, (stop - start) * 3840)
    np.testing.assert_allclose(x, expected, atol=2e-4)
    np.testing.assert_array_equal(y, stage_labels(stages[start:stop]))
    assert out.attrs["epoch_offset"] == start and out.attrs["n_epochs"] == stop - start
    assert out.attrs["channels"] == ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"]
    assert sum(out.attrs["stage_counts"].values()) == stop - start


def test_no_trimming_keeps_every_scored_epoch(synth_root: Path) -> None:
    source = _sources(synth_root)[1]
    out = preprocess_night(source, PREPROCESS | {"trim_wake_min": None})
    stages = read_hypnogram(source.paths[1])
    scored = [i for i, s in enumerate(stages) if s is not None]
    assert out.attrs["epoch_offset"] == scored[0]
    assert out.attrs["n_epochs"] == min(scored[-1] + 1, out.attrs["n_signal_epochs"]) - scored[0]


# ---- bad PSGs are reported and skipped ---------------------------------------------------------
def _write_bad_nights(good: Path, bad_root: Path) -> None:
    """Three broken copies of a good night: no EOG, 200-Hz EEG/EOG, PSG cut to half its length."""
    psg, hyp = _sources(good)[0].paths
    signals = list(read_edf(psg).signals.values())
    variants = {
        "SC4901": [s for s in signals if s.name != "EOG horizontal"],
        "SC4911": [
            Signal(s.name, np.repeat(s.data, 2), 200.0, s.unit) if s.fs_hz == 100 else s
            for s in signals
        ],
        "SC4921": [Signal(s.name, s.data[: s.data.size // 2], s.fs_hz, s.unit) for s in signals],
    }
    for stem, sigs in variants.items():
        write_edf(bad_root / f"{stem}E0-PSG.edf", sigs, record_duration_s=30.0)
        shutil.copy(hyp, bad_root / f"{stem}EC-Hypnogram.edf")


def test_bad_psgs_are_skipped_with_their_reason(synth_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    _write_bad_nights(synth_root, root)
    cfg = load_config(
        "sleep_edf",
        [
            f"data.root={root}",
            f"data.cache_dir={tmp_path / 'cache'}",
            f"output.splits_dir={tmp_path / 'splits'}",
            "data.is_synthetic=true",
            "data.build_workers=1",
            "trainer.enable_progress_bar=false",
            "data.seq_epochs=5",
            "preprocess.trim_wake_min=10",
        ],
    )
    cfg.protocol = "sedf20_3fold"  # 3 folds over the few synthetic subjects (not a listed protocol)
    dm = SleepEDFDataModule(cfg)
    dm.setup("fit")  # the good nights go on to a split and windows
    reasons = dict(CacheStore(dm.cache_file).skipped)
    assert set(reasons) == {"SC4901E0", "SC4911E0", "SC4921E0"}
    assert "'EOG horizontal'" in reasons["SC4901E0"] and "not found" in reasons["SC4901E0"]
    assert "200 Hz, expected 100" in reasons["SC4911E0"]
    assert "past the end of the PSG signal" in reasons["SC4921E0"]
    assert len(dm.store.records) == 3 and dm.provenance["skipped"]
    assert len(dm.split.train) + len(dm.split.val) + len(dm.split.test) == 3
    assert len(dm.train_set) > 0 and len(dm.test_set) > 0


# ---- protocols and folds -----------------------------------------------------------------------
def test_night_lists() -> None:
    for name, subjects, nights in (("sedf20", 20, 39), ("sedf78", 78, 153), ("sedfst", 22, 44)):
        records = protocol_records(name)
        assert len(records) == len(set(records)) == nights
        assert len({r[:5] for r in records}) == subjects
    assert set(protocol_records("sedf20")) < set(protocol_records("sedf78"))
    assert parse_protocol("sedf78_10fold") == ("sedf78", 10)
    for bad in ("sedf20", "sedf20_fold", "nolist_5fold", "sedf20_5folds"):
        with pytest.raises(ValueError):
            parse_protocol(bad)


@pytest.mark.parametrize(
    "protocol", ["sedf20_5fold", "sedf20_20fold", "sedf78_5fold", "sedf78_10fold"]
)
def test_folds_never_split_a_subject(protocol: str) -> None:
    name, k = parse_protocol(protocol)
    subject_of = {r: r[:5] for r in protocol_records(name)}
    subject_of["SC4999E0"] = "SC499"  # a night outside the list is never used
    tested: list[str] = []
    for fold in range(k):
        cfg = load_config(
            "sleep_edf", [f"protocol={protocol}", f"fold={fold}", "seed=7", "data.root=unused"]
        )
        split = SleepEDFDataModule(cfg).make_split(subject_of)
        parts = {"train": split.train, "val": split.val, "test": split.test}
        where: dict[str, set[str]] = {}
        for part, records in parts.items():
            for r in records:
                where.setdefault(subject_of[r], set()).add(part)
        assert all(len(p) == 1 for p in where.values()), "a subject's nights in two parts"
        assert "SC4999E0" not in split.train + split.val + split.test
        assert split.val and split.train
        tested += split.test
    # the k test folds partition the list: every night tested exactly once
    assert sorted(tested) == sorted(protocol_records(name))


# ---- windows, sampler, transform ---------------------------------------------------------------
@pytest.fixture(scope="module")
def datamodule(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> SleepEDFDataModule:
    tmp = tmp_path_factory.mktemp("sedf_dm")
    cfg = load_config(
        "sleep_edf",
        [
            f"data.root={synth_root}",
            f"data.cache_dir={tmp / 'cache'}",
            f"output.splits_dir={tmp / 'splits'}",
            "data.is_synthetic=true",
            "data.build_workers=1",
            "trainer.enable_progress_bar=false",
            "data.seq_epochs=7",
            "data.train_stride_epochs=2",
            "preprocess.fs_hz=64",
        ],
    )
    cfg.protocol = "sedf20_3fold"  # 3 folds over the few synthetic subjects (not a listed protocol)
    dm = SleepEDFDataModule(cfg)
    dm.setup("fit")
    return dm


def test_windows_cover_test_nights(datamodule: SleepEDFDataModule) -> None:
    dm = datamodule
    index = dm.test_set.index
    for rid in dm.split.test:
        i = dm.store.index_of(rid)
        n = int(dm.store.records[i].attrs["n_epochs"])
        sel = index.record == i
        covered = np.zeros(n, bool)
        for a, b in zip(index.y_start[sel], index.y_stop[sel]):
            covered[a:b] = True
        assert covered.all()
    item = dm.test_set[0]
    assert item["x"].shape == (3, 7 * 1920) and item["y"].shape == (7,)
    train = dm.train_set.index
    assert (np.diff(train.y_start[train.record == train.record[0]]) == 2).all()


def test_balanced_sampler_draws_windows_holding_the_class(datamodule: SleepEDFDataModule) -> None:
    import torch

    dm = datamodule
    classes = dm.window_classes(dm.train_set)
    for j in np.random.default_rng(0).integers(0, len(classes), 50):
        y = dm.train_set[int(j)]["y"].numpy()
        assert set(classes[j].tolist()) == set(y[y != IGNORE].tolist())
    torch.manual_seed(0)
    sampler = dm.train_sampler(dm.train_set)
    drawn = list(sampler)
    n_train_epochs = sum(
        int(dm.store.records[dm.store.index_of(r)].attrs["n_epochs"]) for r in dm.split.train
    )
    assert len(drawn) == n_train_epochs // 7
    assert IGNORE not in sampler.classes


def test_transform_picks_one_eeg_and_keeps_eog_last() -> None:
    x = np.stack([np.full(20, 1.0), np.full(20, 2.0), np.full(20, 3.0)]).astype(np.float32)
    y = np.array([0, 5], dtype=np.int8)
    train = StagingTransform(True, {"enabled": False})
    seen = set()
    for seed in range(20):
        out, yy = train(x, y, np.random.default_rng(seed))
        assert out.shape == (2, 20) and out[1, 0] == 3.0 and yy.dtype == np.int64
        seen.add(float(out[0, 0]))
    assert seen == {1.0, 2.0}
    evaluation, _ = StagingTransform(False)(x, y, np.random.default_rng(0))
    assert evaluation.shape == (3, 20)
    cfg = load_config("sleep_edf")
    augmented = StagingTransform(True, to_plain(cfg.augment) | {"enabled": True})
    always = to_plain(cfg.augment)
    for key in ("global_noise", "regional_noise", "elastic", "regional_erase", "channel_dropout"):
        always[key]["p"] = 1.0
    out, _ = StagingTransform(True, always)(
        np.random.default_rng(1).normal(size=(3, 3840)).astype(np.float32),
        y,
        np.random.default_rng(2),
    )
    assert out.shape == (2, 3840) and np.isfinite(out).all()
    assert augmented(x, y, np.random.default_rng(0))[0].shape == (2, 20)


def test_dataset_items_carry_ignored_labels(datamodule: SleepEDFDataModule) -> None:
    ds = WindowDataset(datamodule.store, datamodule.test_set.index)
    labels = np.concatenate([ds[i]["y"].numpy() for i in range(len(ds))])
    assert set(labels.tolist()) <= set(range(6))


# ---- download ----------------------------------------------------------------------------------
@pytest.mark.samples
def test_offline_download_verifies_against_the_real_checksums(
    samples_dir: Path, tmp_path: Path
) -> None:
    src = samples_dir / "sleep_edf"
    offline = tmp_path / "usb"
    (offline / "sleep-cassette").mkdir(parents=True)
    shutil.copy(src / "SHA256SUMS.txt", offline / "SHA256SUMS.txt")
    shutil.copy(src / "RECORDS", offline / "RECORDS")
    shutil.copy(
        src / "SC4001EC-Hypnogram.edf", offline / "sleep-cassette" / "SC4001EC-Hypnogram.edf"
    )
    two = {"RECORDS", "sleep-cassette/SC4001EC-Hypnogram.edf"}

    report = download(tmp_path / "dest", offline, wanted=lambda rel: rel in two)
    assert sorted(report["fetched"]) == sorted(two) and not report["failed"]
    assert (tmp_path / "dest" / "sleep-cassette" / "SC4001EC-Hypnogram.edf").read_bytes() == (
        src / "SC4001EC-Hypnogram.edf"
    ).read_bytes()
    again = download(tmp_path / "dest", offline, wanted=lambda rel: rel in two)
    assert sorted(again["kept"]) == sorted(two)  # verified files are never fetched again

    # a tampered copy fails verification and is not kept
    (offline / "RECORDS").write_text("tampered\n")
    with pytest.raises(RuntimeError, match="RECORDS"):
        download(tmp_path / "dest2", offline, wanted=lambda rel: rel == "RECORDS")
    assert not (tmp_path / "dest2" / "RECORDS").exists()
    # the default selection is the whole database (394 EDF files, 2 subject tables, 2 RECORDS)
    sums = (src / "SHA256SUMS.txt").read_text().split()[1::2]
    assert sum(map(sleep_edf_wanted, sums)) == len(sums) == 398
