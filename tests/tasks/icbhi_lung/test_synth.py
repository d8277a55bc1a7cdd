"""Synthetic ICBHI: the real file formats (read back with soundfile and the project's readers),
the real database's structure (class mix, devices, split with a patient on both sides), seeds,
and sounds that carry their labels (crackles transient, wheezes tonal) without being trivial."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import butter, medfilt, sosfiltfilt, stft

import sleepbench.tasks.icbhi_lung.synth as synth
from sleepbench.io.audio import read_wav
from sleepbench.io.icbhi import (
    DEVICES,
    LOCATIONS,
    parse_icbhi_name,
    read_cycles,
    read_demographics,
    read_diagnoses,
    read_patient_folds,
)
from sleepbench.io.icbhi_layout import (
    discover_icbhi,
    read_official_split,
)
from sleepbench.tasks.icbhi_lung.synth import write_synthetic, write_synthetic_icbhi

SMALL = {"n_patients": 8, "recordings_per_patient": [1, 3], "cycles_per_recording": [6, 10]}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("icbhi")
    return root, write_synthetic_icbhi(root, seed=3, **SMALL)


def test_files_in_the_real_formats(small) -> None:
    root, manifest = small
    layout = discover_icbhi(root)
    stems = set(layout.recordings)
    assert stems == {r["record_id"] for r in manifest["records"]}
    rates = {
        "AKGC417L": {44100},
        "LittC2SE": {44100},
        "Litt3200": {4000},
        "Meditron": {44100, 10000},
    }
    for rec in manifest["records"]:
        wav, txt = layout.recordings[rec["record_id"]]
        name = parse_icbhi_name(rec["record_id"])
        assert name.device in DEVICES and name.location in LOCATIONS
        assert name.mode == ("mc" if name.device in ("AKGC417L", "LittC2SE") else "sc")
        info = sf.info(str(wav))
        assert (info.channels, info.format) == (1, "WAV")
        assert info.samplerate in rates[name.device] and info.samplerate == rec["fs_hz"]
        assert info.subtype == rec["subtype"]
        assert info.subtype in (
            ("PCM_16", "PCM_24", "PCM_32") if info.samplerate > 20000 else ("PCM_16",)
        )
        x, winfo = read_wav(wav)
        assert x.dtype == np.float32 and 0.1 < np.abs(x).max() < 0.9
        cycles = read_cycles(txt)
        assert len(cycles) == rec["n_cycles"]
        assert all(a.end_s == b.start_s for a, b in zip(cycles, cycles[1:]))  # contiguous
        assert cycles[-1].end_s < winfo.n_samples / winfo.fs_hz
        text = txt.read_text()
        assert text.endswith("\n") and "\r" not in text
        for line in text.splitlines():
            fields = line.split("\t")
            assert len(fields) == 4 and fields[2] in "01" and fields[3] in "01"
            for t in fields[:2]:  # 3 decimals, no trailing zeros; Litt3200: 5 significant digits
                if name.device == "Litt3200":
                    assert len(t.replace(".", "").lstrip("0")) <= 5
                else:
                    assert re.fullmatch(r"\d+(\.\d{0,2}[1-9])?", t), t
    assert {r["subtype"] for r in manifest["records"] if r["fs_hz"] == 44100} >= {"PCM_16"}


@pytest.mark.samples
def test_rates_and_sample_types_as_the_real_files(samples_dir: Path) -> None:
    """Every real sample's (device, rate, sample type) is one the writer produces."""
    rates = synth.DEFAULTS["rates_hz"]
    for wav in sorted((samples_dir / "icbhi" / "audio_and_txt_files").glob("*.wav")):
        info = sf.info(str(wav))
        device = parse_icbhi_name(wav.stem).device
        assert info.samplerate in rates[device], wav.name
        types = synth._SUBTYPES_44K if info.samplerate > 20000 else ("PCM_16",)
        assert info.subtype in types, wav.name


def test_metadata_in_the_real_formats(small) -> None:
    root, manifest = small
    layout = discover_icbhi(root)
    split = read_official_split(layout.official_split, known_stems=layout.recordings)
    assert split == {r["record_id"]: r["split"] for r in manifest["records"]}
    patients = {r["subject_id"] for r in manifest["records"]}
    assert set(read_patient_folds(layout.patient_folds)) == patients
    assert set(read_patient_folds(layout.patient_folds).values()) <= {0, 1, 2, 3, 4}
    assert set(read_diagnoses(layout.diagnoses)) == patients
    demo = read_demographics(layout.demographics)
    assert set(demo) == patients
    for d in demo.values():  # adults have a BMI, children a weight and height: never both
        assert d["bmi"] is None or (d["weight"] is None and d["height"] is None)
        assert d["sex"] in ("M", "F")
    raw = layout.demographics.read_bytes()
    assert raw.startswith(b"\r\n") and b"NA" in raw and not raw.endswith(b"\n")
    assert not layout.official_split.read_bytes().endswith(b"\n")


def test_split_has_a_patient_on_both_sides_and_the_device_shift(small) -> None:
    _, manifest = small
    both = manifest["patients_on_both_sides"]
    assert len(both) >= 1
    sides = {(r["subject_id"], r["device"], r["split"]) for r in manifest["records"]}
    for p in both:  # the bridge patient: Meditron in train, Litt3200 in test (as real 218)
        assert {(d, s) for q, d, s in sides if q == p} == {
            ("Meditron", "train"),
            ("Litt3200", "test"),
        }
    lit = manifest["devices"]["Litt3200"]
    assert lit["test"] > lit["train"]
    assert manifest["devices"]["LittC2SE"]["test"] == 0


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    tiny = {"n_patients": 2, "recordings_per_patient": [1, 2], "cycles_per_recording": [2, 3]}
    a = write_synthetic_icbhi(tmp_path / "a", seed=5, **tiny)
    b = write_synthetic(tmp_path / "b", {"synthetic": {"seed": 5, **tiny}})
    c = write_synthetic_icbhi(tmp_path / "c", seed=6, **tiny)
    assert a == b
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.*"))
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert a["records"] != c["records"]
    with pytest.raises(ValueError, match="unknown synthetic keys"):
        write_synthetic_icbhi(tmp_path / "d", n_patient=3)


@pytest.fixture
def no_audio(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plan the database without rendering or writing audio (the labels are decided first)."""
    monkeypatch.setattr(synth, "render_recording", lambda *a, **k: np.zeros(8, np.float32))
    monkeypatch.setattr(synth.sf, "write", lambda *a, **k: None)


def test_default_set_size_class_mix_and_split(tmp_path: Path, no_audio) -> None:
    totals = np.zeros(4)
    for seed in range(4):
        m = write_synthetic_icbhi(tmp_path / str(seed), seed=seed)
        assert 500 <= m["n_cycles"] <= 900 and m["n_patients"] == 24
        assert m["duration_s"] < 30 * 60
        counts = np.array(list(m["classes"].values()))
        assert counts.min() >= 0.05 * counts.sum()
        totals += counts
        test_share = m["splits"]["test"]["recordings"] / m["n_recordings"]
        assert 0.3 <= test_share <= 0.5
        assert len(m["patients_on_both_sides"]) >= 1 and m["cycles_over_8s"] >= 1
        assert set(m["rates_hz"]) == {4000, 10000, 44100}
        assert set(m["subtypes"]) == {"PCM_16", "PCM_24", "PCM_32"}
    mix = totals / totals.sum()  # the real database: 53 / 27 / 13 / 7 %
    assert np.allclose(mix, [0.53, 0.27, 0.13, 0.07], atol=0.05), mix


def _transient(x: np.ndarray, fs: float) -> float:
    """Strongest 4-ms frames of the > 200 Hz band over their 100-ms running median (log)."""
    hp = sosfiltfilt(butter(4, 200, "highpass", fs=fs, output="sos"), x)
    k = max(1, round(0.004 * fs))
    e = (hp[: hp.size // k * k] ** 2).reshape(-1, k).mean(1) + 1e-12
    return float(np.sort(np.log(e / medfilt(e, 25)))[-5:].mean())


def _tonality(x: np.ndarray, fs: float) -> float:
    """Spectral peak over the local spectral floor in 100-1000 Hz (log), best fifth of frames."""
    f, _, z = stft(x, fs, nperseg=round(0.064 * fs))
    p = np.log(np.abs(z[(f >= 100) & (f <= 1000)]) ** 2 + 1e-12)
    peak = (p - medfilt(p, (9, 1))).max(0)
    return float(np.sort(peak)[-max(1, peak.size // 5) :].mean())


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def test_crackles_are_transient_and_wheezes_tonal_but_not_trivially(small) -> None:
    root, manifest = small
    feats, labels = [], []
    for rec in manifest["records"]:
        stem = rec["record_id"]
        x, fs = sf.read(root / "audio_and_txt_files" / f"{stem}.wav", dtype="float32")
        for c in read_cycles(root / "audio_and_txt_files" / f"{stem}.txt"):
            seg = x[round(c.start_s * fs) : round(c.end_s * fs)]
            feats.append((_transient(seg, fs), _tonality(seg, fs)))
            labels.append(c.label)
    f, y = np.array(feats), np.array(labels)
    assert Counter(y.tolist()).keys() == {0, 1, 2, 3}
    crackle, wheeze, normal = (y & 1) > 0, (y & 2) > 0, y == 0
    auc_c = _auc(f[crackle, 0], f[~crackle, 0])
    auc_w = _auc(f[wheeze, 1], f[~wheeze, 1])
    assert np.median(f[crackle, 0]) > np.median(f[normal, 0])
    assert np.median(f[wheeze, 1]) > np.median(f[normal, 1])
    # learnable from one hand-made feature each (faint sounds, devices, clicks and squeaks keep
    # the crackle feature from being perfect) ...
    assert 0.65 < auc_c < 0.99 and 0.65 < auc_w, (auc_c, auc_w)
    # ... but the four classes are not: the best pair of thresholds on the two features stays
    # well below a perfect cycle accuracy
    best = max(
        float((((f[:, 0] > tc).astype(int) + 2 * (f[:, 1] > tw).astype(int)) == y).mean())
        for tc in np.unique(f[:, 0])
        for tw in np.quantile(f[:, 1], np.linspace(0, 1, 41))
    )
    assert 0.5 < best < 0.95, best
