"""Synthetic Sleep-EDF nights: file format, night structure and per-stage EEG/EOG signatures."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import edfio
import mne
import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt, welch

from sleepbench.tasks.sleep_edf.synth import (
    ANNOTATION_TEXT,
    CHANNELS,
    STAGES,
    hypnogram_annotations,
    synth_hypnogram,
    synth_night,
    write_synthetic_sleep_edf,
)

FS = 100.0
SPE = int(30 * FS)


@pytest.fixture(scope="module")
def night() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    fpz, pz, eog, stages = synth_night(np.random.default_rng(7), minutes=240)
    return fpz, pz, eog, np.array(stages)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("sleep-cassette")
    return root, write_synthetic_sleep_edf(root, n_subjects=2, nights_per_subject=2, minutes=60)


def _band_power(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Per-epoch power in [lo, hi) Hz (Welch, 4-s segments)."""
    f, p = welch(x.reshape(-1, SPE), fs=FS, nperseg=400, axis=1)
    return p[:, (f >= lo) & (f < hi)].sum(axis=1) * (f[1] - f[0])


# ---------------------------------------------------------------------------- night structure


@pytest.mark.parametrize("seed", range(12))
def test_hypnogram_structure(seed: int) -> None:
    stages = np.array(synth_hypnogram(np.random.default_rng(seed), 960))  # 8 h
    assert set(stages) <= set(STAGES)
    assert stages[0] == "W" and stages[-1] == "W"
    first_sleep = np.flatnonzero(stages != "W")[0]
    assert stages[first_sleep] == "1"  # sleep onset through stage 1
    counts = Counter(stages)
    assert counts.most_common(1)[0][0] == "2"  # N2 dominates
    frac = {s: counts[s] / stages.size for s in STAGES}
    assert 0.35 < frac["2"] < 0.65
    assert 0.12 < frac["R"] < 0.30
    assert 0.05 < frac["3"] + frac["4"] < 0.30 and counts["4"] > 0
    assert 0.02 < frac["1"] < 0.15
    assert counts["?"] >= 1
    idx = np.arange(stages.size)
    sws = idx[np.isin(stages, ["3", "4"])]
    rem = idx[stages == "R"]
    assert np.mean(sws < stages.size / 3) > 0.6  # slow-wave sleep early
    assert np.mean(rem > stages.size / 2) > 0.6  # REM late
    # brief awakenings inside the sleep period
    last_sleep = np.flatnonzero(stages != "W")[-1]
    assert np.sum(stages[first_sleep:last_sleep] == "W") >= 2


def test_hypnogram_annotations_are_runs() -> None:
    stages = ["W", "W", "1", "2", "2", "M", "2"]
    events = hypnogram_annotations(stages, trailing_unscored_s=300.0)
    assert [(e.onset_s, e.duration_s, e.label) for e in events] == [
        (0.0, 60.0, "Sleep stage W"),
        (60.0, 30.0, "Sleep stage 1"),
        (90.0, 60.0, "Sleep stage 2"),
        (150.0, 30.0, "Movement time"),
        (180.0, 30.0, "Sleep stage 2"),
        (210.0, 300.0, "Sleep stage ?"),
    ]


# ---------------------------------------------------------------------------- signatures


def test_night_shapes(night) -> None:
    fpz, pz, eog, stages = night
    assert fpz.dtype == np.float32 and fpz.shape == pz.shape == eog.shape == (stages.size * SPE,)
    assert stages.size == 480
    assert np.all(np.isfinite(fpz)) and 5 < np.std(fpz) < 60  # µV scale


def test_stage_signatures(night) -> None:
    fpz, pz, eog, st = night
    delta = _band_power(fpz, 0.5, 2.0)
    alpha_pz = _band_power(pz, 8.0, 12.0)
    total = _band_power(fpz, 0.5, 30.0)
    sigma_rel = _band_power(fpz, 11.0, 16.0) / total
    theta_rel = _band_power(fpz, 4.0, 7.5) / total
    mean = {s: {} for s in STAGES}
    for s in ("W", "1", "2", "3", "4", "R"):
        m = st == s
        mean[s] = {
            "delta": delta[m].mean(),
            "alpha": alpha_pz[m].mean(),
            "sigma": sigma_rel[m].mean(),
            "theta": theta_rel[m].mean(),
        }
    assert mean["3"]["delta"] > 5 * mean["W"]["delta"]
    assert mean["4"]["delta"] > 1.25 * mean["3"]["delta"]  # stage 4 deeper than stage 3
    assert mean["W"]["alpha"] > 5 * mean["2"]["alpha"]  # eyes-closed occipital alpha
    assert mean["W"]["alpha"] > 3 * mean["R"]["alpha"]
    assert mean["2"]["sigma"] > 2 * mean["3"]["sigma"]  # spindles
    assert mean["2"]["sigma"] > 1.2 * mean["R"]["sigma"]
    assert mean["1"]["theta"] > mean["W"]["theta"] and mean["R"]["theta"] > mean["3"]["theta"]


def test_slow_waves_exceed_75_uv(night) -> None:
    fpz, _, _, st = night
    sos = butter(4, [0.5, 2.0], "bandpass", fs=FS, output="sos")
    slow = sosfiltfilt(sos, fpz).reshape(-1, SPE)
    # peak-to-peak of the delta band within 2-s windows: high-amplitude waves in N3 epochs
    win = slow.reshape(slow.shape[0], -1, 200)
    frac_big = (np.ptp(win, axis=2) > 75.0).mean(axis=1)
    assert np.median(frac_big[st == "4"]) > 0.5  # stage 4: > 50 % of the epoch
    assert np.median(frac_big[st == "3"]) > 0.2  # stage 3: > 20 %
    assert np.median(frac_big[st == "2"]) < 0.2
    assert np.median(frac_big[st == "R"]) < 0.05


def test_eye_movements(night) -> None:
    _, _, eog, st = night
    slow = _band_power(eog, 0.15, 0.6)  # slow rolling eye movements
    assert slow[st == "1"].mean() > 3 * slow[st == "2"].mean()
    # rapid eye movements: steep deflections (µV per 10 ms) in (phasic) REM, not in N2/N3;
    # tonic REM epochs have few, hence the upper quartile
    steep = np.percentile(np.abs(np.diff(eog.reshape(-1, SPE), axis=1)), 99.9, axis=1)
    assert np.percentile(steep[st == "R"], 75) > 1.5 * np.percentile(steep[st == "2"], 75)
    assert np.median(steep[st == "W"]) > 1.5 * np.median(steep[st == "3"])


def test_deterministic() -> None:
    a = synth_night(np.random.default_rng(3), minutes=30)
    b = synth_night(np.random.default_rng(3), minutes=30)
    c = synth_night(np.random.default_rng(4), minutes=30)
    for x, y in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(x, y)
    assert a[3] == b[3]
    assert not np.array_equal(a[0], c[0])


# ---------------------------------------------------------------------------- files


def test_file_names_and_pairs(files) -> None:
    root, manifest = files
    assert [r.record_id for r in manifest] == ["SC4001E0", "SC4002E0", "SC4011E0", "SC4012E0"]
    for rec in manifest:
        assert rec.psg_path.parent == root
        assert re.fullmatch(r"SC4\d\d[12]E0-PSG\.edf", rec.psg_path.name)
        assert re.fullmatch(rf"{rec.record_id[:6]}E[A-Z]-Hypnogram\.edf", rec.hypnogram_path.name)
        assert rec.subject_id == rec.record_id[:5]
    labels = pytest.importorskip("sleepbench.io.sleep_edf_labels")
    pairs = labels.pair_psg_hypnogram(root)
    assert [(p.record_id, p.subject_id, p.night) for p in pairs] == [
        (r.record_id, r.subject_id, r.night) for r in manifest
    ]


def test_psg_channels(files) -> None:
    _, manifest = files
    edf = edfio.read_edf(manifest[0].psg_path)
    assert edf.labels == tuple(c[0] for c in CHANNELS)
    assert edf.data_record_duration == 30.0 and edf.reserved == ""
    assert edf.patient.name == "X"
    for sig, (_, rate, unit) in zip(edf.signals, CHANNELS):
        assert sig.sampling_frequency == (rate or FS)
        assert sig.physical_dimension == unit
        assert sig.data.size == 3600 * sig.sampling_frequency
    raw = mne.io.read_raw_edf(manifest[0].psg_path, include=["EEG Fpz-Cz"], verbose="error")
    assert raw.n_times == 360000 and raw.info["sfreq"] == FS


def test_hypnogram_file(files) -> None:
    _, manifest = files
    for rec in manifest:
        ann = mne.read_annotations(rec.hypnogram_path)
        assert set(ann.description) <= set(ANNOTATION_TEXT.values())
        np.testing.assert_array_equal(ann.onset[1:], ann.onset[:-1] + ann.duration[:-1])
        assert np.all(ann.duration % 30 == 0) and ann.onset[0] == 0
        # as in the real database, a final unscored run extends past the PSG
        psg_s = rec.n_epochs * 30.0
        assert ann.description[-1] == "Sleep stage ?"
        assert ann.onset[-1] <= psg_s < ann.onset[-1] + ann.duration[-1]
        per_epoch = np.repeat(ann.description, (ann.duration // 30).astype(int))[: rec.n_epochs]
        inv = {v: k for k, v in ANNOTATION_TEXT.items()}
        assert Counter(inv[d] for d in per_epoch) == Counter(rec.stage_counts)


def test_hypnogram_with_reader(files) -> None:
    labels = pytest.importorskip("sleepbench.io.sleep_edf_labels")
    rec = files[1][0]
    epochs = labels.read_hypnogram(rec.hypnogram_path, n_epochs=rec.n_epochs)
    assert len(epochs) == rec.n_epochs
    n_ignored = rec.stage_counts.get("?", 0) + rec.stage_counts.get("M", 0)
    assert epochs.count(None) == n_ignored
    assert epochs.count("N3") == rec.stage_counts.get("3", 0) + rec.stage_counts.get("4", 0)


def test_files_deterministic(tmp_path: Path, files) -> None:
    _, manifest = files
    again = write_synthetic_sleep_edf(tmp_path, n_subjects=1, nights_per_subject=1, minutes=60)
    assert again[0].psg_path.read_bytes() == manifest[0].psg_path.read_bytes()
    assert again[0].hypnogram_path.read_bytes() == manifest[0].hypnogram_path.read_bytes()
