"""Synthetic ESC-50: the real file formats (read back with soundfile and the project's reader),
the real fold rule (a source's takes share a fold), seeds, and 50 classes that a simple
classifier separates well above chance but not perfectly."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import stft

from sleepbench.io.esc50 import discover_esc50, parse_esc50_name, read_esc50_meta
from sleepbench.tasks.esc50.synth import (
    CATEGORIES,
    ESC10,
    _layout,
    write_synthetic,
    write_synthetic_esc50,
)


@pytest.fixture(scope="module")
def one_per_class(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("esc50")
    return root, write_synthetic_esc50(root, n_per_class=1, seed=2)


def test_clips_and_meta_in_the_real_formats(one_per_class) -> None:
    root, manifest = one_per_class
    meta, audio = discover_esc50(root)
    assert meta == root / "meta" / "esc50.csv" and audio == root / "audio"
    clips = read_esc50_meta(meta)
    assert len(clips) == manifest["n_clips"] == 50
    assert [c.filename for c in clips] == sorted(c.filename for c in clips)
    assert {c.target: c.category for c in clips} == dict(enumerate(CATEGORIES))
    assert {c.target for c in clips if c.esc10} == ESC10
    assert meta.read_text().splitlines()[0] == "filename,fold,target,category,esc10,src_file,take"
    for c in clips:
        assert parse_esc50_name(c.filename) == (c.fold, c.src_file, c.take, c.target)
        info = sf.info(str(audio / c.filename))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (
            44100,
            1,
            220500,
            "PCM_16",
        )
    x, _ = sf.read(str(audio / clips[0].filename), dtype="float32")
    assert 0.05 < np.abs(x).max() <= 0.99


@pytest.mark.samples
def test_categories_match_the_real_meta_rows(samples_dir: Path) -> None:
    real = read_esc50_meta(samples_dir / "esc50" / "meta" / "esc50.csv")
    assert {c.target: c.category for c in real} == dict(enumerate(CATEGORIES))
    assert {c.target for c in real if c.esc10} == ESC10
    info = sf.info(str(samples_dir / "esc50" / "audio" / real[0].filename))
    assert (info.samplerate, info.subtype) == (44100, "PCM_16")


@pytest.mark.parametrize("n_per_class", [1, 6, 8, 40])
def test_folds_balanced_and_sources_within_a_fold(n_per_class: int) -> None:
    layout = _layout(np.random.default_rng(0), n_per_class)
    assert len(layout) == 50 * n_per_class
    assert len({(f, s, k, t) for f, t, s, k in layout}) == len(layout)
    per_fold = Counter(f for f, _, _, _ in layout)
    assert max(per_fold.values()) - min(per_fold.values()) <= (0 if n_per_class % 5 == 0 else 10)
    per_class = Counter(t for _, t, _, _ in layout)
    assert set(per_class.values()) == {n_per_class}
    takes: dict[str, list] = defaultdict(list)
    for fold, target, src, take in layout:
        takes[src].append((fold, target, take))
    for rows in takes.values():  # one fold and one class per source, takes A, B, C in order
        assert len({(f, t) for f, t, _ in rows}) == 1
        assert sorted(k for _, _, k in rows) == list("ABC"[: len(rows)])
    if n_per_class >= 6:
        assert any(len(r) > 1 for r in takes.values())


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    cfg = {"n_per_class": 1, "seed": 4, "clip_s": 0.5, "fs_hz": 8000}
    a = write_synthetic_esc50(tmp_path / "a", **cfg)
    b = write_synthetic(tmp_path / "b", cfg)
    c = write_synthetic_esc50(tmp_path / "c", **{**cfg, "seed": 5})
    assert a == b and a["records"] != c["records"]
    for f in sorted((tmp_path / "a").rglob("*.*")):
        assert f.read_bytes() == (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes()
    with pytest.raises(ValueError, match="unknown synthetic keys"):
        write_synthetic_esc50(tmp_path / "d", n_per_klass=2)


def _features(x: np.ndarray, fs: float) -> np.ndarray:
    """Log band energies (shape and spread over time) and the envelope's modulation spectrum."""
    _, _, z = stft(x, fs, nperseg=512)
    p = np.abs(z) ** 2
    edges = np.unique(np.geomspace(2, p.shape[0] - 1, 30).astype(int))
    bands = np.log(np.stack([p[a:b].mean(0) for a, b in zip(edges[:-1], edges[1:])]) + 1e-10)
    env = np.log(p.sum(0) + 1e-10)
    mod = np.log(np.abs(np.fft.rfft(env - env.mean()))[:30] + 1e-6)
    return np.concatenate([bands.mean(1) - bands.mean(), bands.std(1), mod])


def test_classes_learnable_but_not_perfectly(tmp_path: Path) -> None:
    write_synthetic_esc50(tmp_path, n_per_class=5, seed=1, fs_hz=16000, clip_s=3.0)
    rows = list(csv.DictReader(open(tmp_path / "meta" / "esc50.csv")))
    x = np.stack([
        _features(sf.read(str(tmp_path / "audio" / r["filename"]), dtype="float32")[0], 16000)
        for r in rows
    ])  # fmt: skip
    y = np.array([int(r["target"]) for r in rows])
    folds = np.array([int(r["fold"]) for r in rows])
    correct = 0
    for k in range(1, 6):  # leave-one-fold-out nearest class mean on standardised features
        tr = folds != k
        mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-6
        z = (x - mu) / sd
        means = np.stack([z[tr & (y == c)].mean(0) for c in range(50)])
        pred = np.argmin(((z[~tr, None, :] - means[None]) ** 2).sum(-1), axis=1)
        correct += int((pred == y[~tr]).sum())
    acc = correct / len(y)
    assert 0.35 < acc < 0.95, acc  # chance: 0.02
