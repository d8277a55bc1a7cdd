"""LSRM front end: log-mel parity with librosa (torchlibrosa's definition) on real audio, the
failure of torchaudio's defaults, and SpecAugment's DropStripes semantics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio

from sleepbench.io.audio import read_wav
from sleepbench.io.icbhi import cycle_samples, read_cycles
from sleepbench.methods.lsrm.frontend import (
    ESC50_FRONT_END,
    ICBHI_FRONT_END,
    FrontEndConfig,
    LogMelFrontEnd,
    SpecAugment,
    n_frames,
)
from sleepbench.signal.fix_length import fix_length
from sleepbench.signal.resample import resample_to

librosa = pytest.importorskip("librosa")

# Measured on the sample files (float32 torch STFT against librosa's float32 STFT):
# - all 50 ESC-50 clips at 32 kHz, and every cycle of the 44.1-kHz ICBHI recordings at 16 kHz:
#   <= 0.007 dB everywhere;
# - the 4-kHz (Littmann 3200) recordings upsampled to 16 kHz: <= 0.009 dB within 80 dB of the
#   clip's maximum, <= 0.15 dB everywhere. Their mel bands above 2 kHz hold only the
#   resampler's stop-band residue, near the 1e-10 floor (-100 dB, ~120 dB below the maximum),
#   where float32 FFT rounding (~1e-7 of the largest amplitude) is a few per cent of the power.
TOL_DB = 0.02  # within 80 dB of the maximum
TOL_FLOOR_DB = 0.25  # everywhere


def _librosa_log_mel(y: np.ndarray, cfg: FrontEndConfig) -> np.ndarray:
    """torchlibrosa's front end as librosa computes it: ``[frames, n_mels]`` dB."""
    power = librosa.feature.melspectrogram(
        y=y,
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop,
        win_length=cfg.n_fft,
        window="hann",
        center=True,
        pad_mode="reflect",
        power=2.0,
        n_mels=cfg.n_mels,
        fmin=cfg.f_min_hz,
        fmax=cfg.f_max_hz,
    )
    return librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None).T


def _ours(y: np.ndarray, cfg: FrontEndConfig) -> np.ndarray:
    with torch.no_grad():
        out = LogMelFrontEnd(cfg)(torch.from_numpy(y)[None])
    assert out.shape == (1, 1, n_frames(y.size, cfg.hop), cfg.n_mels)
    return out[0, 0].numpy()


def _assert_parity(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.shape == ref.shape
    diff = np.abs(ours - ref)
    assert diff[ref > ref.max() - 80.0].max() < TOL_DB
    assert diff.max() < TOL_FLOOR_DB


def _real_inputs(samples_dir: Path) -> list[tuple[np.ndarray, FrontEndConfig]]:
    """One ESC-50 clip at 32 kHz; one 8-s ICBHI cycle (4-kHz and 44.1-kHz sources) at 16 kHz."""
    clip, info = read_wav(samples_dir / "esc50" / "audio" / "4-102844-A-49.wav")
    inputs = [(resample_to(clip, info.fs_hz, 32_000), ESC50_FRONT_END)]
    for stem in ("104_1b1_Lr_sc_Litt3200", "101_1b1_Al_sc_Meditron"):
        folder = samples_dir / "icbhi" / "audio_and_txt_files"
        x, info = read_wav(folder / f"{stem}.wav")
        x = resample_to(x, info.fs_hz, 16_000)
        start, stop = cycle_samples(stem, read_cycles(folder / f"{stem}.txt"), 16_000, x.size)
        cycle = fix_length(x[start[1] : stop[1]], 8 * 16_000, 16_000 // 16)
        inputs.append((cycle, ICBHI_FRONT_END))
    return inputs


@pytest.mark.samples
def test_log_mel_matches_librosa_on_real_audio(samples_dir: Path) -> None:
    for y, cfg in _real_inputs(samples_dir):
        _assert_parity(_ours(y, cfg), _librosa_log_mel(y, cfg))
    assert n_frames(8 * 16_000, ICBHI_FRONT_END.hop) == 801
    assert n_frames(10 * 32_000, ESC50_FRONT_END.hop) == 1001


@pytest.mark.samples
def test_torchaudio_defaults_fail_the_parity(samples_dir: Path) -> None:
    y, cfg = _real_inputs(samples_dir)[1]
    ref = _librosa_log_mel(y, cfg)
    common = dict(
        sample_rate=cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop,
        f_min=cfg.f_min_hz,
        f_max=cfg.f_max_hz,
        n_mels=cfg.n_mels,
    )
    variants = {
        "torchaudio defaults (HTK scale, no norm)": torchaudio.transforms.MelSpectrogram(**common),
        "Slaney filters, zero padding": torchaudio.transforms.MelSpectrogram(
            **common, norm="slaney", mel_scale="slaney", pad_mode="constant"
        ),
    }
    for name, transform in variants.items():
        with torch.no_grad():
            power = transform(torch.from_numpy(y)).numpy().T
        db = 10.0 * np.log10(np.maximum(power, 1e-10))
        with pytest.raises(AssertionError):
            _assert_parity(db, ref)
        assert np.abs(db - ref).max() > 1.0, name


def test_front_end_shapes_and_no_trainable_parameters() -> None:
    fe = LogMelFrontEnd(ICBHI_FRONT_END)
    wave = torch.randn(3, 16_000)
    out = fe(wave)
    assert out.shape == (3, 1, 101, 64) and out.dtype == torch.float32
    assert not list(fe.parameters())
    silent = fe(torch.zeros(1, 4000))
    assert torch.all(silent == -100.0)  # the 1e-10 power floor, reference 1.0
    with pytest.raises(ValueError):
        fe(torch.randn(16_000))
    with pytest.raises(ValueError):
        FrontEndConfig(16_000, f_max_hz=9000.0)


def _augment(x: torch.Tensor, **kwargs) -> torch.Tensor:
    aug = SpecAugment(**kwargs)
    aug.train()
    return aug(x)


def test_spec_augment_is_identity_in_eval_and_keeps_shape() -> None:
    x = torch.randn(4, 1, 801, 64)
    aug = SpecAugment().eval()
    assert aug(x) is x
    aug.train()
    out = aug(x)
    assert out.shape == x.shape and out is not x
    assert torch.equal(x, x.clone())  # the input is not modified in place
    with pytest.raises(ValueError):
        aug(torch.randn(801, 64))


def _stripes(mask: torch.Tensor) -> list[tuple[int, int]]:
    """``(start, width)`` runs of True in a 1-D bool mask."""
    edges = np.diff(np.concatenate([[0], mask.numpy().astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), (stops - starts).tolist()))


def test_spec_augment_stripes_respect_their_bounds() -> None:
    torch.manual_seed(0)
    batch, frames, bins = 64, 200, 64
    x = torch.ones(batch, 2, frames, bins)
    out = _augment(x, time_width=30, time_stripes=2, freq_width=8, freq_stripes=2)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    for example in out:
        assert torch.equal(example[0], example[1])  # all channels share the stripes
        zero = example[0] == 0
        time_drop = zero.all(dim=1)  # whole frames zeroed
        freq_drop = zero.all(dim=0)  # whole bins zeroed
        # every zero is explained by a time or a frequency stripe
        assert torch.equal(zero, time_drop[:, None] | freq_drop[None, :])
        for runs, width in ((_stripes(time_drop), 30), (_stripes(freq_drop), 8)):
            assert len(runs) <= 2  # two stripes per axis, possibly merged
            assert sum(w for _, w in runs) <= 2 * (width - 1)
    # each example draws its own stripes
    patterns = {tuple((out[i, 0] == 0).all(dim=1).tolist()) for i in range(batch)}
    assert len(patterns) > batch // 2


def test_spec_augment_draws_are_uniform_over_their_ranges() -> None:
    torch.manual_seed(1)
    aug = SpecAugment(time_width=5, time_stripes=1)
    starts, widths = aug.stripes(20_000, 10, 5, 1)
    assert set(widths.unique().tolist()) == {0, 1, 2, 3, 4}  # [0, width)
    assert (starts >= 0).all() and (starts + widths <= 10).all()
    assert (starts < 10 - widths).all()  # start in [0, total - width)
    for w in range(5):
        assert set(starts[widths == w].unique().tolist()) == set(range(10 - w))
    # a width above the axis length is clipped instead of failing (torchlibrosa would raise)
    starts, widths = aug.stripes(100, 3, 64, 2)
    assert (widths <= 3).all() and (starts + widths <= 3).all()


def test_spec_augment_is_reproducible_with_manual_seed() -> None:
    x = torch.randn(8, 1, 300, 64)
    torch.manual_seed(123)
    a = _augment(x)
    torch.manual_seed(123)
    b = _augment(x)
    torch.manual_seed(124)
    c = _augment(x)
    assert torch.equal(a, b) and not torch.equal(a, c)
    generator = torch.Generator().manual_seed(5)
    d = SpecAugment(generator=generator).train()(x)
    e = SpecAugment(generator=torch.Generator().manual_seed(5)).train()(x)
    assert torch.equal(d, e)
