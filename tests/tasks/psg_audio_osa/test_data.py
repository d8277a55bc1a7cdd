"""psg_audio_osa data path: rasteriser and ROI mask, the cached night (gaps masked, padding),
model inputs from the cache equal to a direct computation (48-kHz night), windows and items,
patient-wise stratified splits, bad input reported and skipped, and the offline download check."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from scipy.signal import resample_poly

from sleepbench.cache.build import build_cache
from sleepbench.cache.store import CacheStore
from sleepbench.config import BASE_CONFIG
from sleepbench.data.windows import WindowIndex
from sleepbench.io.edf import read_edf
from sleepbench.io.edf_write import write_edf
from sleepbench.io.rml import read_rml
from sleepbench.io.rml_write import write_rml
from sleepbench.recording import Signal
from sleepbench.signal.mel import DB_STEP, dequantize_db, mel_power, power_to_db
from sleepbench.tasks.psg_audio_osa.data import (
    LABELS_PER_WINDOW,
    MEL_PER_LABEL,
    STRIDE_LABELS,
    PsgAudioDataModule,
    PsgAudioTransform,
    padded_labels,
    preprocess_night,
)
from sleepbench.tasks.psg_audio_osa.download import download_psg_audio
from sleepbench.tasks.psg_audio_osa.labels import (
    FRAME_S,
    STAGE_CODES,
    frame_mask,
    rasterise_events,
)
from sleepbench.tasks.psg_audio_osa.synth import write_synthetic_psg_audio

PRE = {"channel": "Mic", "gap_tolerance_s": 1.0, "annotations": "APNEA_RML"}


def _cfg(root: Path, tmp: Path, protocol: str = "psga_5fold", **data):
    return OmegaConf.merge(
        OmegaConf.load(BASE_CONFIG),
        {
            "task": "psg_audio_osa",
            "protocol": protocol,
            "data": {
                "root": str(root),
                "cache_dir": str(tmp / "cache"),
                "build_workers": 1,
                "annotations": "APNEA_RML",
                **data,
            },
            "output": {"splits_dir": str(tmp / "splits")},
            "trainer": {"enable_progress_bar": False},
            "preprocess": {"channel": "Mic", "gap_tolerance_s": 1.0},
            "split": {"n_folds": 4, "val_fraction": 0.15, "holdout": [0.7, 0.15, 0.15]},
        },
    )


@pytest.fixture(scope="module")
def dm(tmp_path_factory: pytest.TempPathFactory) -> PsgAudioDataModule:
    tmp = tmp_path_factory.mktemp("psga_data")
    write_synthetic_psg_audio(
        tmp / "raw", n_subjects=8, minutes=8.0, fs_hz=8000.0, seed=2, part_s=150.0,
        drop_parts={3: [2]}, channels=("Mic", "SpO2"),
    )  # fmt: skip
    module = PsgAudioDataModule(_cfg(tmp / "raw", tmp))
    module.setup()
    return module


# ---- labels ------------------------------------------------------------------------------------
def test_rasteriser_on_hand_made_events() -> None:
    events = [(0.0, 0.24, 1), (1.0, 0.5, 2), (1.2, 0.1, 1), (59.9, 10.0, 2)]
    y = rasterise_events(events, 750)
    assert y[:3].tolist() == [1, 1, 1] and y[3] == 0  # [0, 0.24) = frames 0..2
    # [1.0, 1.5) = frames 12..17; the later [1.2, 1.3) overwrites frame 15
    assert y[12:19].tolist() == [2, 2, 2, 1, 2, 2, 0]
    assert y[748:].tolist() == [2, 2] and y.size == 750  # clipped at the end
    # the whole-night frames equal the upstream per-window rule for windows at 30-s multiples
    rng = np.random.default_rng(0)
    ev = [(float(rng.uniform(0, 170)), float(rng.uniform(10, 60)), int(rng.integers(1, 3)))]
    night = rasterise_events(ev, 2250)
    for w0 in (0.0, 30.0, 60.0, 90.0):
        onset, dur, cls = ev[0]
        ref = np.zeros(750, np.int8)
        a, b = int(np.floor((onset - w0) / 60 * 750)), int(np.floor((onset + dur - w0) / 60 * 750))
        ref[max(a, 0) : max(min(b, 750), 0)] = cls
        start = int(w0 / FRAME_S)
        np.testing.assert_array_equal(night[start : start + 750], ref)


def test_roi_and_gap_mask() -> None:
    m = frame_mask(100, roi=(0.8, 6.0), gaps=[(2.0, 2.4)])
    centres = (np.arange(100) + 0.5) * FRAME_S
    expected = (centres >= 0.8) & (centres < 6.0) & ~((centres >= 2.0) & (centres < 2.4))
    np.testing.assert_array_equal(m.astype(bool), expected)
    assert m[:10].sum() == 0 and m[25:30].sum() == 0 and m[75:].sum() == 0


# ---- the cached night --------------------------------------------------------------------------
def test_cached_nights_follow_the_contract(dm: PsgAudioDataModule) -> None:
    store = dm.store
    assert {r.attrs["severity"] for r in store.records} == {0, 1, 2, 3}
    for i, rec in enumerate(store.records):
        n = rec.shapes["y"][0]
        assert rec.shapes["x"] == (128, MEL_PER_LABEL * n) and rec.shapes["mask"] == (n,)
        assert n == padded_labels(rec.attrs["n_labels"]) and rec.attrs["n_labels"] == (
            rec.attrs["n_mel"] // MEL_PER_LABEL
        )
        mask = store.read(i, "mask")
        centres = (np.arange(n) + 0.5) * FRAME_S
        outside = (centres < rec.attrs["roi_start_s"]) | (centres >= rec.attrs["roi_end_s"])
        assert not mask[outside].any() and not mask[rec.attrs["n_labels"] :].any()
        assert mask.any() and rec.attrs["annotations"] == "APNEA_RML"
        rml = read_rml(dm.root / "APNEA_RML" / f"{rec.record_id}.rml")
        assert rec.attrs["n_events"] == len(rml.respiratory_events())
        y = store.read(i, "y")
        assert set(np.unique(y)) <= {0, 1, 2} and (y > 0).any() == (rec.attrs["n_events"] > 0)
        # the user staging per 30-s epoch over the padded night, for the night figure
        stages = store.read(i, "stages")
        assert stages.size * 30.0 == pytest.approx(n * FRAME_S)
        expected = [STAGE_CODES[s] for s in rml.epoch_stages(30.0, stages.size)]
        assert stages.tolist() == expected and 0 in expected and 2 in expected


def test_missing_part_is_a_masked_gap(dm: PsgAudioDataModule) -> None:
    store = dm.store
    (rec,) = [r for r in store.records if r.attrs["gaps"]]
    assert rec.attrs["gaps"] == [[150.0, 300.0]] and rec.attrs["missing_parts"] == [2]
    i = store.index_of(rec.record_id)
    mask, x = store.read(i, "mask"), store.read(i, "x")
    gap = slice(int(150 / FRAME_S), int(300 / FRAME_S))
    assert not mask[gap].any()
    inner = x[:, int(155 * 100) : int(295 * 100)]
    assert (inner == 0).all()  # zero audio = the -80 dB floor
    assert dm.provenance["nights_with_gaps"] == [rec.record_id]


def test_cache_inputs_equal_direct_computation_on_a_48k_night(tmp_path: Path) -> None:
    (night,) = write_synthetic_psg_audio(
        tmp_path, n_subjects=1, minutes=6.0, fs_hz=48000.0, seed=4, part_s=120.0, channels=("Mic",)
    )
    (source,) = PsgAudioDataModule.list_sources(tmp_path, None)
    rec = preprocess_night(source, PRE)
    assert rec.attrs["source_fs_hz"] == 48000.0 and rec.attrs["n_parts"] == 3
    # direct: whole night at 48 kHz in memory, one resample_poly, one mel, librosa-style dB
    audio = np.concatenate([read_edf(p, ["Mic"]).signals["Mic"].data for p in night.parts])
    db = power_to_db(mel_power(resample_poly(audio, 1, 3).astype(np.float32)))
    n = min(db.shape[1], rec.arrays["x"].shape[1])  # the cache keeps 8 * n_labels frames
    assert rec.attrs["n_mel"] == db.shape[1] and n >= db.shape[1] - MEL_PER_LABEL
    cached = dequantize_db(rec.arrays["x"][:, :n])
    assert np.abs(cached - db[:, :n]).max() <= DB_STEP / 2 + 0.01
    transform = PsgAudioTransform(train=False)
    for start in (0, 3000, n - 6000):
        window = slice(start, start + 6000)
        x_cache, _ = transform(rec.arrays["x"][:, window], np.zeros(750), None)
        ref = transform.features(np.zeros((128, 6000), np.uint8))  # shape only
        direct_db = db[:, window]
        mel_z = (direct_db - direct_db.mean()) / (direct_db.std() + 1e-6)
        energy = direct_db.mean(axis=0)
        energy_z = (energy - energy.mean()) / (energy.std() + 1e-6)
        direct = np.concatenate([mel_z, energy_z[None]])
        assert x_cache.shape == ref.shape == direct.shape == (129, 6000)
        # a dB error of e shifts a z-score by at most ~2e / std (value and mean both move)
        tol_mel = 2 * (DB_STEP / 2 + 0.01) / direct_db.std()
        tol_energy = 2 * (DB_STEP / 2 + 0.01) / energy.std()
        assert np.abs(x_cache[:128] - mel_z).max() <= tol_mel
        assert np.abs(x_cache[128] - energy_z).max() <= tol_energy


# ---- windows, items ----------------------------------------------------------------------------
def test_windows_and_items(dm: PsgAudioDataModule) -> None:
    store = dm.store
    test = dm.test_set.index
    assert isinstance(test, WindowIndex) and len(test) > 0
    assert (test.y_stop - test.y_start == LABELS_PER_WINDOW).all()
    assert (test.x_start == MEL_PER_LABEL * test.y_start).all()
    for rid in dm.split.test:  # every 30 s, the last window reaching the (padded) end
        i = store.index_of(rid)
        starts = test.y_start[test.record == i]
        np.testing.assert_array_equal(np.diff(starts), STRIDE_LABELS)
        assert starts[-1] + LABELS_PER_WINDOW == store.records[i].shapes["y"][0]
    item = dm.test_set[len(dm.test_set) - 1]  # the padded last window
    assert item["x"].shape == (129, 6000) and item["x"].dtype.is_floating_point
    assert item["y"].shape == (750,) and item["mask"].shape == (750,)
    assert int(item["mask"][-1]) == 0
    x = item["x"].numpy()
    assert abs(x[:128].mean()) < 1e-3 and abs(x[128].mean()) < 1e-3
    # training leaves out windows with no unmasked frame
    fit = dm.train_set.index
    for k in range(len(fit)):
        mask = store.read(int(fit.record[k]), "mask", slice(fit.y_start[k], fit.y_stop[k]))
        assert mask.any()
    full = dm.window_index(dm.split.train, "validate")
    assert len(full) >= len(fit)


def test_training_augmentation() -> None:
    q = np.random.default_rng(0).integers(0, 256, (128, 6000)).astype(np.uint8)
    y = np.zeros(750, np.int8)
    plain, y_out = PsgAudioTransform(train=False)(q, y, np.random.default_rng(1))
    assert y_out.dtype == np.int64
    always = {"freq_mask_p": 1.0, "time_mask_p": 1.0}
    aug, _ = PsgAudioTransform(train=True, augment=always)(q, y, np.random.default_rng(1))
    ratio = aug[128] / plain[128]  # energy row: gain only
    assert np.allclose(ratio, ratio[0], rtol=1e-4) and 0.8 <= ratio[0] <= 1.2
    masked_rows = np.flatnonzero((aug[:128] == 0).all(axis=1))
    masked_cols = np.flatnonzero((aug[:128] == 0).all(axis=0))
    assert masked_rows.size <= 15 and masked_cols.size <= 40
    off, _ = PsgAudioTransform(train=True, augment={"enabled": False})(q, y, None)
    np.testing.assert_array_equal(off, plain)


# ---- splits ------------------------------------------------------------------------------------
def test_splits_patient_disjoint_and_stratified(dm: PsgAudioDataModule) -> None:
    subject = {r.record_id: r.subject_id for r in dm.store.records}
    severity = {r.subject_id: r.attrs["severity"] for r in dm.store.records}
    tested = []
    for fold in range(4):
        dm.cfg.fold = fold
        split = dm.make_split(subject)
        split.check(subject)  # raises on any patient in two parts
        parts = [{subject[r] for r in ids} for ids in (split.train, split.val, split.test)]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert sum(map(len, parts)) == len(severity) and parts[1]
        tested += sorted(parts[2])
    assert sorted(tested) == sorted(severity)  # every patient tested exactly once
    # stratified: 8 patients, 2 per class, 4 folds -> each fold tests two different classes
    dm.cfg.fold = 0
    for fold_subjects in np.array_split(np.array(tested), 4):
        assert len({severity[s] for s in fold_subjects}) == len(fold_subjects)
    dm.cfg.protocol = "psga_holdout"
    try:
        split = dm.make_split(subject)
        split.check(subject)
        assert (len(split.train), len(split.val), len(split.test)) == (6, 1, 1)
    finally:
        dm.cfg.protocol = "psga_5fold"
    with pytest.raises(ValueError, match="unknown protocol"):
        dm.cfg.protocol = "nope"
        try:
            dm.make_split(subject)
        finally:
            dm.cfg.protocol = "psga_5fold"


# ---- bad input ---------------------------------------------------------------------------------
def test_bad_input_is_reported_and_skipped(dm: PsgAudioDataModule, tmp_path: Path) -> None:
    root = tmp_path / "bad"
    good = sorted((dm.root / "APNEA_EDF").iterdir())[:2]
    for folder in good:
        shutil.copytree(folder, root / "APNEA_EDF" / folder.name)
        name = f"{folder.name}.rml"
        (root / "APNEA_RML").mkdir(parents=True, exist_ok=True)
        shutil.copy(dm.root / "APNEA_RML" / name, root / "APNEA_RML" / name)
    # 1. parts without a Mic channel
    rml_src = dm.root / "APNEA_RML" / f"{good[0].name}.rml"
    no_mic = "00009001-000001"
    write_edf(
        root / "APNEA_EDF" / no_mic / f"{no_mic}[001].edf",
        [Signal("Tracheal", np.sin(np.arange(8000 * 60) * 0.1), 8000.0, "V")],
    )
    shutil.copy(rml_src, root / "APNEA_RML" / f"{no_mic}.rml")
    # 2. an RML without staging
    no_staging = "00009002-000002"
    shutil.copytree(good[0], root / "APNEA_EDF" / no_staging)
    for p in (root / "APNEA_EDF" / no_staging).iterdir():
        p.rename(p.with_name(p.name.replace(good[0].name, no_staging)))
    src = read_rml(rml_src)
    write_rml(
        root / "APNEA_RML" / f"{no_staging}.rml",
        recording_start=src.recording_start,
        duration_s=src.duration_s,
        events=src.events,
    )
    # 3. a truncated part
    truncated = root / "APNEA_EDF" / good[1].name
    part = sorted(truncated.iterdir())[0]
    part.write_bytes(part.read_bytes()[:-5000])
    # 4. parts without RML, 5. an RML without parts
    shutil.copytree(good[0], root / "APNEA_EDF" / "00009004-000004")
    for p in (root / "APNEA_EDF" / "00009004-000004").iterdir():
        p.rename(p.with_name(p.name.replace(good[0].name, "00009004-000004")))
    shutil.copy(rml_src, root / "APNEA_RML" / "00009005-000005.rml")

    sources = PsgAudioDataModule.list_sources(root, None)
    missing = {s.record_id: s.missing for s in sources if s.missing}
    assert set(missing) == {"00009004-000004", "00009005-000005"}
    assert "has no RML" in missing["00009004-000004"]
    assert "no EDF parts" in missing["00009005-000005"]
    path = build_cache("psg_audio_osa", sources, preprocess_night, PRE, tmp_path / "c", "t")
    store = CacheStore(path)
    assert [r.record_id for r in store.records] == [good[0].name]
    reasons = dict(store.skipped)
    assert set(reasons) == {no_mic, no_staging, good[1].name, "00009004-000004", "00009005-000005"}
    assert "'Mic' not found" in reasons[no_mic]
    assert "no user sleep staging" in reasons[no_staging]
    assert "truncated" in reasons[good[1].name]


def test_clean_annotations_are_selectable(dm: PsgAudioDataModule) -> None:
    cfg = OmegaConf.merge(dm.cfg, {"data": {"annotations": "APNEA_RML_clean"}})
    sources = PsgAudioDataModule.list_sources(dm.root, cfg)
    assert all("APNEA_RML_clean" in s.meta["rml"] for s in sources)
    assert PsgAudioDataModule(cfg).preprocess_config()["annotations"] == "APNEA_RML_clean"


def test_download_explains_and_verifies_a_local_copy(
    dm: PsgAudioDataModule, tmp_path: Path
) -> None:
    lines: list[str] = []
    assert download_psg_audio(tmp_path / "d", None, print_fn=lines.append)["status"] == "manual"
    assert "778740145531650048" in lines[0]
    report = download_psg_audio(tmp_path / "d", dm.root, print_fn=lines.append)
    assert report["nights"] == report["complete"] == 8 and report["other_rml_set"] == 8
    assert report["missing_part_numbers"] == {dm.store.records[3].record_id: [2]}
    assert report["copied"] > 0 and not report["bad_parts"]
    again = download_psg_audio(tmp_path / "d", dm.root, print_fn=lines.append)
    assert again["copied"] == 0 and again["kept"] == report["copied"]
