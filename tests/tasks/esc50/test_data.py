"""esc50 data: real clips cached at 32 kHz with their class and source, and the item transform."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sleepbench.tasks.esc50.data import ClipTransform, Esc50DataModule, preprocess_clip


@pytest.mark.samples
def test_real_clips_are_listed_and_cached_at_32k(samples_dir: Path) -> None:
    sources = Esc50DataModule.list_sources(samples_dir / "esc50", None)
    assert len(sources) == 50 and all(s.missing is None for s in sources)
    assert sorted(int(s.meta["target"]) for s in sources) == list(range(50))
    source = next(s for s in sources if s.record_id == "4-102844-A-49")
    assert source.subject_id == "102844"  # the source recording groups clips
    out = preprocess_clip(source, {"fs_hz": 32000})
    assert out.arrays["x"].shape == (160_000,)  # 5 s at 32 kHz
    assert out.arrays["y"].tolist() == [49]
    assert out.attrs["category"] == "hand_saw" and out.attrs["fold"] == 4
    assert out.attrs["source_fs_hz"] == 44100.0


def test_a_listed_clip_without_its_wav_is_reported_missing(tmp_path: Path) -> None:
    (tmp_path / "meta").mkdir()
    (tmp_path / "audio").mkdir()
    (tmp_path / "meta" / "esc50.csv").write_text(
        "filename,fold,target,category,esc10,src_file,take\n"
        "1-100032-A-0.wav,1,0,dog,True,100032,A\n"
    )
    (source,) = Esc50DataModule.list_sources(tmp_path, None)
    assert source.missing is not None and "1-100032-A-0.wav" in source.missing


def test_clip_transform_repeats_the_clip_to_ten_seconds() -> None:
    x = np.arange(1, 6, dtype=np.float32)
    out, y = ClipTransform(12)(x, np.array([7]), np.random.default_rng(0))
    assert out.tolist() == [1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2] and y.tolist() == [7]
