"""Audio reader: real ICBHI / ESC-50 wavs against their raw integer samples, scaling of every
sample type, channel averaging, and every malformed-input error."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sleepbench.errors import RecordingError
from sleepbench.io.audio import WavInfo, read_wav, wav_info
from sleepbench.io.bounds import MAX_FS_HZ

# Full scale of each integer subtype as soundfile's float read divides by it.
_FULL_SCALE = {"PCM_16": 2.0**15, "PCM_24": 2.0**23, "PCM_32": 2.0**31}


def _raw_ints(path: Path) -> tuple[np.ndarray, int]:
    """The integer samples of a PCM WAV's ``data`` chunk, parsed here (not by libsndfile)."""
    blob = path.read_bytes()
    assert blob[:4] == b"RIFF" and blob[8:12] == b"WAVE"
    pos, bits, channels = 12, None, None
    while pos + 8 <= len(blob):
        tag, size = blob[pos : pos + 4], struct.unpack("<I", blob[pos + 4 : pos + 8])[0]
        body = blob[pos + 8 : pos + 8 + size]
        if tag == b"fmt ":
            channels, bits = struct.unpack("<H", body[2:4])[0], struct.unpack("<H", body[14:16])[0]
        elif tag == b"data":
            assert bits is not None and channels == 1
            width = bits // 8
            raw = np.frombuffer(body[: len(body) // width * width], dtype=np.uint8)
            raw = raw.reshape(-1, width)
            # little-endian, sign-extended from the top byte
            value = np.zeros(raw.shape[0], dtype=np.int64)
            for i in range(width):
                value |= raw[:, i].astype(np.int64) << (8 * i)
            value -= (value >> (bits - 1) & 1) << bits
            return value, bits
        pos += 8 + size + (size & 1)
    raise AssertionError(f"no data chunk in {path}")


@pytest.mark.samples
def test_real_icbhi_wavs_read_at_their_rates_and_types(samples_dir: Path) -> None:
    wavs = sorted((samples_dir / "icbhi" / "audio_and_txt_files").glob("*.wav"))
    assert len(wavs) == 10
    seen = set()
    for wav in wavs:
        x, info = read_wav(wav)
        ref = sf.info(str(wav))
        assert (info.fs_hz, info.n_samples, info.channels, info.subtype) == (
            ref.samplerate,
            ref.frames,
            ref.channels,
            ref.subtype,
        ), wav.name
        assert wav_info(wav) == info
        assert x.dtype == np.float32 and x.shape == (ref.frames,)
        ints, bits = _raw_ints(wav)
        assert ints.size == ref.frames and f"PCM_{bits}" == info.subtype
        expected = ints / _FULL_SCALE[info.subtype]
        # 16- and 24-bit values are exact in float32; 32-bit ones are rounded to 24 bits.
        np.testing.assert_allclose(x, expected, rtol=2**-23, atol=0, err_msg=wav.name)
        assert -1.0 <= x.min() and x.max() <= 1.0
        seen.add((info.fs_hz, info.subtype))
    # the sample holds 4-kHz and 44.1-kHz files in three integer types
    assert {fs for fs, _ in seen} == {4000.0, 44100.0}
    assert {t for _, t in seen} == {"PCM_16", "PCM_24", "PCM_32"}


@pytest.mark.samples
def test_real_esc50_clips_are_5s_at_44k(samples_dir: Path) -> None:
    clips = sorted((samples_dir / "esc50" / "audio").glob("*.wav"))
    assert len(clips) == 50
    for clip in clips:
        x, info = read_wav(clip)
        assert (info.fs_hz, info.n_samples, info.channels, info.subtype) == (
            44100.0,
            220_500,
            1,
            "PCM_16",
        )
        assert info.duration_s == pytest.approx(5.0)
        ints, _ = _raw_ints(clip)
        np.testing.assert_array_equal(x, (ints / 2.0**15).astype(np.float32))


@pytest.mark.parametrize(
    ("subtype", "scale"), [("PCM_16", 2**15), ("PCM_24", 2**23), ("PCM_32", 2**31)]
)
def test_integer_types_are_scaled_by_their_full_range(
    tmp_path: Path, subtype: str, scale: int
) -> None:
    ints = np.array([0, 1, -1, scale // 2, scale - 1, -scale], dtype=np.int64)
    path = tmp_path / "x.wav"
    # soundfile writes int32 input left-justified: shift the value into the top bits
    sf.write(path, (ints << (32 - int(np.log2(scale)) - 1)).astype(np.int32), 8000, subtype)
    x, info = read_wav(path)
    assert info == WavInfo(path, 8000.0, ints.size, 1, subtype)
    np.testing.assert_allclose(x, ints / scale, rtol=2**-23)
    # (2**31 - 1) / 2**31 rounds to 1.0 in float32: the range is [-1, 1]
    assert x[-1] == -1.0 and x.max() <= 1.0


def test_stereo_is_averaged_and_float_files_keep_their_values(tmp_path: Path) -> None:
    left = np.linspace(-1.5, 1.5, 101)
    right = 0.5 * left
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 22050, subtype="FLOAT")
    x, info = read_wav(path)
    assert (info.channels, info.subtype, info.fs_hz, info.n_samples) == (2, "FLOAT", 22050.0, 101)
    np.testing.assert_allclose(x, 0.75 * left, atol=1e-6)
    assert x.max() == pytest.approx(1.125)  # floating-point values beyond 1 are not clipped


def _error(path: Path) -> str:
    with pytest.raises(RecordingError) as info:
        read_wav(path)
    assert info.value.path == str(path)
    return info.value.reason


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    assert "not found" in _error(tmp_path / "missing.wav")
    (tmp_path / "folder.wav").mkdir()
    assert "not found" in _error(tmp_path / "folder.wav")
    text = tmp_path / "text.wav"
    text.write_text("start end crackles wheezes\n" * 20)
    assert "not a readable audio file" in _error(text)
    truncated = tmp_path / "truncated.wav"
    sf.write(truncated, np.zeros(100), 8000, subtype="PCM_16")
    truncated.write_bytes(truncated.read_bytes()[:30])
    assert _error(truncated)


def test_empty_nan_and_out_of_range_files_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), 8000, subtype="PCM_16")
    assert "no audio samples" in _error(empty)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.0, np.nan, 0.5]), 8000, subtype="FLOAT")
    assert "NaN" in _error(nan)
    fast = tmp_path / "fast.wav"
    sf.write(fast, np.zeros(10), int(MAX_FS_HZ * 2), subtype="PCM_16")
    assert "sampling rate" in _error(fast)
    with pytest.raises(RecordingError, match="sampling rate"):
        wav_info(fast)
