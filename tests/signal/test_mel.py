"""Log-mel features: torchaudio with librosa's defaults (parity on real recordings), block-wise
streaming equal to the whole signal, night-max dB reference and uint8 quantisation."""

from __future__ import annotations

import inspect
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile
from scipy.signal import resample_poly

from sleepbench.signal.mel import (
    DB_STEP,
    N_MELS,
    StreamingMel,
    dequantize_db,
    energy_profile,
    mel_power,
    n_frames,
    night_log_mel,
    power_to_db,
    quantize_db,
    zscore,
)

librosa = pytest.importorskip("librosa")


def _wav_16k(path: Path) -> np.ndarray:
    fs, x = wavfile.read(path)
    x = x.astype(np.float32)
    x = x[:, 0] if x.ndim > 1 else x
    x /= np.abs(x).max()
    ratio = Fraction(16000, fs)
    return resample_poly(x, ratio.numerator, ratio.denominator).astype(np.float32)


def _real_files(samples_dir: Path) -> list[Path]:
    esc = sorted((samples_dir / "esc50" / "audio").iterdir())[:2]
    icbhi = sorted((samples_dir / "icbhi" / "audio_and_txt_files").glob("*.wav"))[:1]
    files = [p for p in esc + icbhi if p.suffix == ".wav"]
    if not files:
        pytest.skip(f"no ESC-50 / ICBHI wav under {samples_dir}")
    return files


def test_librosa_pads_centred_frames_with_zeros() -> None:
    # the parity below assumes librosa >= 0.10's default; fail loudly if it ever changes
    assert inspect.signature(librosa.feature.melspectrogram).parameters["pad_mode"].default == (
        "constant"
    )
    assert inspect.signature(librosa.stft).parameters["pad_mode"].default == "constant"


@pytest.mark.samples
def test_mel_matches_librosa_on_real_recordings(samples_dir: Path) -> None:
    for path in _real_files(samples_dir):
        y = _wav_16k(path)
        ref = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=1024, hop_length=160, n_mels=128)
        ours = mel_power(y)
        assert ours.shape == ref.shape == (N_MELS, n_frames(y.size)), path.name
        assert np.abs(ours - ref).max() <= 1e-4 * ref.max(), path.name
        db_ref = librosa.power_to_db(ref, ref=np.max)
        db = power_to_db(ours)
        assert abs(float(db.max())) < 1e-4 and db.min() >= -80.0
        assert np.abs(db - db_ref).max() < 0.01, path.name  # measured: <= 0.002 dB


def test_streaming_mel_equals_whole_signal() -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(50_017) * np.linspace(0.1, 1.0, 50_017)).astype(np.float32)
    whole = mel_power(x)
    stream = StreamingMel()
    cuts = np.cumsum(rng.integers(1, 4000, 40))
    frames = [stream.push(b) for b in np.split(x, cuts[cuts < x.size])] + [stream.finish()]
    streamed = np.concatenate(frames, axis=1)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, rtol=1e-4, atol=1e-6 * whole.max())


def test_night_log_mel_is_whole_night_db_quantised() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(40_000).astype(np.float32)
    x[10_000:20_000] *= 0.001  # a quiet stretch: values hit the -80 dB floor
    direct = power_to_db(mel_power(x))
    q = night_log_mel(np.array_split(x, 9))
    assert q.dtype == np.uint8 and q.shape == direct.shape
    diff = np.abs(dequantize_db(q) - direct)
    assert diff.max() <= DB_STEP / 2 + 0.01  # rounding + the int16 (1/128 dB) intermediate
    assert (q == quantize_db(direct)).mean() > 0.98
    assert q.max() == 255 and q.min() == 0  # night maximum = 0 dB, floor = -80 dB


def test_night_log_mel_pads_and_truncates_to_the_requested_frames() -> None:
    x = np.random.default_rng(2).standard_normal(16_000).astype(np.float32)
    full = night_log_mel([x])
    padded = night_log_mel([x], n_out_frames=full.shape[1] + 30)
    np.testing.assert_array_equal(padded[:, : full.shape[1]], full)
    assert not padded[:, full.shape[1] :].any()
    np.testing.assert_array_equal(night_log_mel([x], n_out_frames=50), full[:, :50])


def test_quantisation_round_trip_and_window_features() -> None:
    db = np.linspace(-80.0, 0.0, 1001, dtype=np.float32)
    back = dequantize_db(quantize_db(db))
    assert np.abs(back - db).max() <= DB_STEP / 2 + 1e-5
    assert quantize_db(np.float32([-120.0, 5.0])).tolist() == [0, 255]
    mel = np.random.default_rng(3).uniform(-80, 0, (N_MELS, 600)).astype(np.float32)
    energy = energy_profile(mel)
    np.testing.assert_allclose(energy, mel.mean(axis=0), rtol=1e-6)
    z = zscore(energy)
    assert abs(float(z.mean())) < 1e-5 and abs(float(z.std()) - 1.0) < 1e-3
    assert not np.isnan(zscore(np.zeros(10))).any()  # eps keeps a flat window finite
