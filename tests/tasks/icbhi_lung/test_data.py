"""icbhi_lung data: real recordings cached at 16 kHz with their cycles, sources of a partial copy,
and the item transform."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
from omegaconf import OmegaConf

from sleepbench.io.icbhi import read_cycles
from sleepbench.tasks.icbhi_lung.data import CycleTransform, IcbhiDataModule, preprocess_recording


@pytest.mark.samples
@pytest.mark.parametrize("stem", ["104_1b1_Al_sc_Litt3200", "101_1b1_Al_sc_Meditron"])
def test_a_real_recording_is_cached_at_16k_with_its_cycles(samples_dir: Path, stem: str) -> None:
    folder = samples_dir / "icbhi" / "audio_and_txt_files"
    (source,) = [
        s for s in IcbhiDataModule.list_sources(samples_dir / "icbhi", None) if s.record_id == stem
    ]
    assert source.missing is None and source.subject_id == stem[:3]
    out = preprocess_recording(source, {"fs_hz": 16000})
    info = sf.info(folder / f"{stem}.wav")
    cycles = read_cycles(folder / f"{stem}.txt")
    assert out.attrs["source_fs_hz"] == info.samplerate and out.attrs["subtype"] == info.subtype
    assert out.attrs["device"] == stem.rsplit("_", 1)[1]
    assert len(out.arrays["x"]) == pytest.approx(info.frames * 16000 / info.samplerate, abs=1)
    assert out.arrays["y"].tolist() == [c.label for c in cycles]
    start, stop = out.arrays["cycle_start"], out.arrays["cycle_stop"]
    assert np.all(stop > start) and np.all(np.diff(start) > 0)
    assert start[0] == round(cycles[0].start_s * 16000)
    assert stop[-1] <= len(out.arrays["x"])


@pytest.mark.samples
def test_a_partial_copy_lists_cycle_files_without_recordings_as_missing(samples_dir: Path) -> None:
    sources = IcbhiDataModule.list_sources(samples_dir / "icbhi", None)
    present = [s for s in sources if s.missing is None]
    assert len(sources) == 920 and len(present) == 10
    missing = next(s for s in sources if s.missing is not None)
    assert ".wav not found" in missing.missing and missing.record_id in missing.missing


def test_cycle_transform_repeats_short_cycles_and_cuts_long_ones() -> None:
    t = CycleTransform(n_samples=100, fade_samples=10)
    rng = np.random.default_rng(0)
    short, _ = t(np.arange(1, 31, dtype=np.float32), np.array([2]), rng)
    assert short.shape == (100,) and short[30] == 1.0 and short[59] == 30.0  # repeated
    assert short[-1] == 0.0  # faded out at the end (Patch-Mix)
    long, y = t(np.ones(250, dtype=np.float32), np.array([3]), rng)
    assert long.shape == (100,) and long[0] == 1.0 and y.tolist() == [3]


class _Cycles:
    """Stands in for the training WindowDataset: only ``labels()`` is read by the sampler."""

    def labels(self) -> np.ndarray:
        return np.repeat([0, 1, 2, 3], [80, 12, 6, 2])


@pytest.mark.parametrize("power", [None, 0.0, 0.5])
def test_class_power_chooses_the_training_sampler(power: float | None) -> None:
    holder = SimpleNamespace(cfg=OmegaConf.create({"data": {"class_power": power}}))
    sampler = IcbhiDataModule.train_sampler(holder, _Cycles())  # type: ignore[arg-type]
    if power is None:
        assert sampler is None  # plain shuffling, as the recipe
        return
    torch.manual_seed(0)
    drawn = np.array(list(sampler))
    labels = _Cycles().labels()
    assert len(drawn) == len(labels)
    share_normal = np.mean(labels[drawn] == 0)
    # class 0 holds 80 % of the cycles: drawn 25 % of the time at power 0, 66 % at power 0.5
    expected = 0.25 if power == 0.0 else np.sqrt(80) / np.sqrt([80, 12, 6, 2]).sum()
    assert abs(share_normal - expected) < 0.12
