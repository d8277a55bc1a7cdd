"""Fixed-length windows: Patch-Mix's repeat padding with one fade-out at the end, its
recording-level fades, and zero padding; hand-made arrays and torchaudio's own Fade."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchaudio

from sleepbench.signal.fix_length import fade_in_out, fix_length, pad_to


def _patch_mix_reference(x: np.ndarray, n: int, fade: int) -> np.ndarray:
    """Patch-Mix's repeat padding re-expressed with torchaudio (``cut_pad_sample_torchaudio``)."""
    data = torch.from_numpy(x.astype(np.float32))[None]
    if data.shape[-1] > n:
        return data[0, :n].numpy()
    data = data.repeat(1, math.ceil(n / data.shape[-1]))[..., :n]
    return torchaudio.transforms.Fade(0, fade, "linear")(data)[0].numpy()


def test_longer_cycles_are_cut_without_fade() -> None:
    x = np.arange(10, dtype=np.int16)
    out = fix_length(x, 4, fade_samples=2)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [0, 1, 2, 3])


def test_shorter_cycles_are_repeated_and_faded_out_at_the_end_only() -> None:
    x = np.array([1.0, 2.0, 3.0])
    out = fix_length(x, 8, fade_samples=3)
    # tiles 1 2 3 | 1 2 3 | 1 2, then the last 3 samples times linspace(1, 0, 3) = 1, .5, 0
    np.testing.assert_allclose(out, [1, 2, 3, 1, 2, 3 * 1.0, 1 * 0.5, 2 * 0.0])
    # the joins themselves are untouched
    np.testing.assert_array_equal(fix_length(x, 8, 0), [1, 2, 3, 1, 2, 3, 1, 2])


def test_cycle_of_exactly_n_samples_is_faded() -> None:
    out = fix_length(np.ones(5), 5, fade_samples=5)
    np.testing.assert_allclose(out, [1.0, 0.75, 0.5, 0.25, 0.0])


def test_fade_longer_than_the_window_is_clipped() -> None:
    np.testing.assert_allclose(fix_length(np.ones(2), 3, fade_samples=10), [1.0, 0.5, 0.0])


@pytest.mark.parametrize("m", [1, 999, 1000, 4321, 64_000, 127_999, 128_000, 128_001, 200_000])
def test_matches_patch_mix_at_16k(m: int) -> None:
    x = np.random.default_rng(m).standard_normal(m).astype(np.float32)
    n, fade = 8 * 16_000, 16_000 // 16
    np.testing.assert_allclose(fix_length(x, n, fade), _patch_mix_reference(x, n, fade), atol=1e-6)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        fix_length(np.zeros(0), 4, 1)
    with pytest.raises(ValueError):
        fix_length(np.zeros((2, 3)), 4, 1)
    with pytest.raises(ValueError):
        fix_length(np.zeros(3), 0, 1)
    with pytest.raises(ValueError):
        fix_length(np.zeros(3), 4, -1)
    with pytest.raises(ValueError):
        pad_to(np.zeros(3), -1)


def test_fade_in_out_matches_torchaudio() -> None:
    x = np.random.default_rng(0).standard_normal(5000).astype(np.float32)
    ref = torchaudio.transforms.Fade(1000, 1000, "linear")(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(fade_in_out(x, 1000), ref, atol=1e-6)
    np.testing.assert_allclose(fade_in_out(np.ones(3), 3), [0.0, 0.25, 0.0])  # overlapping fades
    np.testing.assert_array_equal(fade_in_out(np.ones(3), 0), np.ones(3))


def test_pad_to() -> None:
    out = pad_to(np.array([1, 2, 3], dtype=np.int32), 5)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [1, 2, 3, 0, 0])
    np.testing.assert_array_equal(pad_to(np.arange(5.0), 2), [0, 1])
    assert pad_to(np.arange(5.0), 0).shape == (0,)
    # HTS-AT's ESC-50 clips: a 5-s clip concatenated with itself (no fade) is fix_length's job
    clip = np.arange(4.0)
    np.testing.assert_array_equal(fix_length(clip, 8, 0), np.concatenate([clip, clip]))
