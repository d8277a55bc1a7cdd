"""Log-mel features of the psg_audio_osa task (SPECS §1.2): whole-night, streamed, quantised.

The method was defined with librosa's defaults: 16-kHz audio, ``n_fft`` 1024, hop 160 (10 ms,
100 frames/s), 128 mel bands on the **Slaney** scale with **Slaney** (area) normalisation,
periodic Hann window, centred frames padded with **zeros** (librosa >= 0.10 pads
``center=True`` frames with ``pad_mode="constant"``), fmin 0, fmax 8 kHz, power 2; then
``power_to_db(ref=np.max, amin=1e-10, top_db=80)`` over the whole night. The transforms here are
torchaudio's, with exactly those parameters (a test checks parity with librosa on real audio).

A night is too long to hold at once (8 h of 16-kHz float32 is 1.8 GB, its float32 mel power
1.5 GB), so :func:`night_log_mel` consumes the audio as a stream of blocks:

- :class:`StreamingMel` keeps the last ``n_fft - hop`` samples between blocks, so each frame
  sees exactly the samples it would see in the whole-night transform (the centre padding is
  added once at the night's start and end);
- each block's power is kept as **absolute dB in int16 fixed point** (1/128 dB steps, range
  +-256 dB: half the memory of float32, error <= 0.004 dB) while the night maximum is tracked;
- at the end, every block is referenced to the night maximum, floored at -80 dB and quantised
  to ``uint8`` (the cache's storage, :func:`quantize_db`; 80/255 = 0.31-dB steps).

The one way back from the cache is :func:`dequantize_db`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torchaudio

__all__ = [
    "AMIN",
    "DB_STEP",
    "F_MAX_HZ",
    "F_MIN_HZ",
    "FRAMES_PER_S",
    "HOP",
    "MEL_FS_HZ",
    "N_FFT",
    "N_MELS",
    "TOP_DB",
    "StreamingMel",
    "dequantize_db",
    "energy_profile",
    "mel_power",
    "mel_power_transform",
    "mel_transform",
    "n_frames",
    "night_log_mel",
    "power_to_db",
    "quantize_db",
    "zscore",
]

#: Audio rate the features are computed at (Hz).
MEL_FS_HZ = 16_000
N_FFT = 1024
HOP = 160
N_MELS = 128
F_MIN_HZ = 0.0
F_MAX_HZ = 8000.0
#: Frames per second (16 kHz / hop 160).
FRAMES_PER_S = MEL_FS_HZ // HOP
#: librosa's ``power_to_db`` defaults: power floor, dynamic range below the reference (dB).
AMIN = 1e-10
TOP_DB = 80.0
#: dB per quantisation step of the cache (``[-80, 0]`` dB onto ``0..255``).
DB_STEP = TOP_DB / 255.0
# Absolute dB are held in int16 at this many steps per dB while a night streams (range +-256 dB).
_FIXED_PER_DB = 128.0


class _MelPower(torch.nn.Module):
    """torchaudio ``Spectrogram`` (complex) -> ``|X|^2`` as re^2 + im^2 -> torchaudio ``MelScale``.

    Equal to ``torchaudio.transforms.MelSpectrogram(power=2)``, whose ``abs().pow(2)`` of the
    complex STFT costs more than the STFT itself (a square root, then its square).
    """

    def __init__(self, spectrogram: torch.nn.Module, mel_scale: torch.nn.Module) -> None:
        super().__init__()
        self.spectrogram = spectrogram
        self.mel_scale = mel_scale

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spec = self.spectrogram(audio)
        return self.mel_scale(spec.real.square() + spec.imag.square())


def mel_power_transform(
    sample_rate: int,
    n_fft: int,
    hop: int,
    n_mels: int,
    f_min_hz: float,
    f_max_hz: float,
    *,
    center: bool = True,
    pad_mode: str = "constant",
) -> torch.nn.Module:
    """torchaudio's mel power spectrogram with librosa's filters: ``melspectrogram(power=2)``.

    Periodic Hann window of ``n_fft`` samples (scipy's ``get_window("hann", n_fft)``, as librosa
    and torchlibrosa use), power ``re^2 + im^2``, mel filters on the **Slaney** scale with
    **Slaney** (area) normalisation (``librosa.filters.mel``'s defaults; torchaudio's own
    defaults, HTK scale without normalisation, differ).

    Args:
        sample_rate: audio rate (Hz).
        n_fft: FFT and window length (samples).
        hop: frame step (samples).
        n_mels: mel bands.
        f_min_hz, f_max_hz: band edges of the filter bank (Hz).
        center: centre frames, padding ``n_fft // 2`` samples at each end.
        pad_mode: how centred frames are padded: ``"constant"`` (zeros, librosa >= 0.10's
            default) or ``"reflect"`` (torchlibrosa's, HTS-AT's).

    Returns:
        A module mapping float32 audio ``[..., samples]`` to power ``[..., n_mels, frames]``.
    """
    spectrogram = torchaudio.transforms.Spectrogram(
        n_fft=n_fft,
        win_length=n_fft,
        hop_length=hop,
        window_fn=torch.hann_window,  # periodic, as scipy's get_window("hann") in librosa
        power=None,  # complex: the power is taken in _MelPower
        center=center,
        pad_mode=pad_mode,
    )
    mel_scale = torchaudio.transforms.MelScale(
        n_mels=n_mels,
        sample_rate=sample_rate,
        f_min=f_min_hz,
        f_max=f_max_hz,
        n_stft=n_fft // 2 + 1,
        norm="slaney",
        mel_scale="slaney",
    )
    return _MelPower(spectrogram, mel_scale)


def mel_transform(center: bool = True) -> torch.nn.Module:
    """torchaudio's mel power spectrogram with librosa's defaults of SPECS §1.2.

    Args:
        center: centred frames with zero padding of ``n_fft // 2`` on each side (whole
            signals); ``False`` for blocks whose context :class:`StreamingMel` supplies.

    Returns:
        A module mapping float32 audio ``[..., samples]`` at 16 kHz to power ``[..., 128, frames]``.
    """
    # librosa >= 0.10 pads centred frames with zeros
    return mel_power_transform(
        MEL_FS_HZ, N_FFT, HOP, N_MELS, F_MIN_HZ, F_MAX_HZ, center=center, pad_mode="constant"
    )


def n_frames(n_samples: int) -> int:
    """Frames of the centred transform of ``n_samples`` 16-kHz samples: ``1 + n // hop``."""
    return 1 + int(n_samples) // HOP


def mel_power(audio: np.ndarray) -> np.ndarray:
    """Mel power spectrogram of a whole 16-kHz signal (centred frames).

    Args:
        audio: float 1-D signal at :data:`MEL_FS_HZ`.

    Returns:
        float32 ``[128, 1 + n // 160]``, equal to ``librosa.feature.melspectrogram(y=audio,
        sr=16000, n_fft=1024, hop_length=160, n_mels=128)`` up to float32 rounding.
    """
    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    with torch.no_grad():
        return mel_transform(center=True)(x).numpy()


def power_to_db(power: np.ndarray, ref: float | None = None) -> np.ndarray:
    """librosa's ``power_to_db(S, ref=ref, amin=1e-10, top_db=80)``; ``ref=None`` is ``np.max``.

    Returns:
        float32 dB, ``<= 0`` and floored at -80 dB when ``ref`` is the maximum.
    """
    power = np.asarray(power, dtype=np.float32)
    ref = float(power.max()) if ref is None else float(ref)
    db = 10.0 * np.log10(np.maximum(AMIN, power)) - 10.0 * np.log10(max(AMIN, ref))
    return np.maximum(db, db.max() - TOP_DB).astype(np.float32)


def quantize_db(db: np.ndarray) -> np.ndarray:
    """dB in ``[-80, 0]`` -> uint8 ``round((dB + 80) * 255 / 80)`` (values outside are clipped)."""
    q = np.rint((np.asarray(db, dtype=np.float32) + TOP_DB) / DB_STEP)
    return np.clip(q, 0, 255).astype(np.uint8)


def dequantize_db(q: np.ndarray) -> np.ndarray:
    """uint8 codes of :func:`quantize_db` -> float32 dB (the one way back from the cache)."""
    return (np.asarray(q, dtype=np.float32) * np.float32(DB_STEP) - np.float32(TOP_DB)).astype(
        np.float32
    )


def energy_profile(db: np.ndarray) -> np.ndarray:
    """Mean over the mel bins of a dB spectrogram ``[128, T]`` -> float32 ``[T]`` (SPECS §1.2 5)."""
    return np.asarray(db, dtype=np.float32).mean(axis=0)


def zscore(a: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """``(a - mean) / (std + eps)`` over the whole array, float32."""
    a = np.asarray(a, dtype=np.float32)
    return ((a - a.mean()) / (a.std() + eps)).astype(np.float32)


class StreamingMel:
    """Mel power of a 16-kHz stream, frame for frame equal to :func:`mel_power` of the whole.

    Feed blocks of any length with :meth:`push`; :meth:`finish` adds the end padding and
    returns the last frames. Frame ``t`` covers centred samples ``[160 t - 512, 160 t + 512)``.
    """

    def __init__(self) -> None:
        self._mel = mel_transform(center=False)
        self._buf = np.zeros(N_FFT // 2, dtype=np.float32)  # the start's centre padding
        self.n_samples = 0
        self.n_frames = 0

    def _frames(self) -> np.ndarray:
        n = (self._buf.size - N_FFT) // HOP + 1 if self._buf.size >= N_FFT else 0
        if n <= 0:
            return np.zeros((N_MELS, 0), dtype=np.float32)
        used = self._buf[: (n - 1) * HOP + N_FFT]
        with torch.no_grad():
            power = self._mel(torch.from_numpy(used)).numpy()
        self._buf = self._buf[n * HOP :].copy()  # context of the next frames
        self.n_frames += n
        return power

    def push(self, block: np.ndarray) -> np.ndarray:
        """Append samples; return the frames now complete, float32 ``[128, k]``."""
        block = np.asarray(block, dtype=np.float32).ravel()
        self.n_samples += block.size
        self._buf = np.concatenate([self._buf, block])
        return self._frames()

    def finish(self) -> np.ndarray:
        """Close the stream (end padding); return the remaining frames ``[128, k]``."""
        self._buf = np.concatenate([self._buf, np.zeros(N_FFT // 2, dtype=np.float32)])
        out = self._frames()
        if self.n_frames != n_frames(self.n_samples):  # defensive: the frame arithmetic
            raise AssertionError(f"{self.n_frames} frames for {self.n_samples} samples")
        return out


def night_log_mel(blocks: Iterable[np.ndarray], n_out_frames: int | None = None) -> np.ndarray:
    """Quantised log-mel of a whole night from its 16-kHz audio blocks (module docstring).

    Args:
        blocks: the night's audio at :data:`MEL_FS_HZ`, in order, any block sizes.
        n_out_frames: length of the returned array: frames past the audio are padding at
            -80 dB (code 0), frames past it are dropped (default: the audio's ``1 + n // 160``).

    Returns:
        uint8 ``[128, n_out_frames]``: :func:`quantize_db` of :func:`power_to_db` (reference =
        the night's maximum) of :func:`mel_power` of the concatenated blocks, within one
        quantisation step where the int16 intermediate (<= 0.004 dB) moves a value across a
        rounding boundary.
    """
    mel = StreamingMel()
    fixed: list[np.ndarray] = []
    peak = 0.0
    lo, hi = np.iinfo(np.int16).min, np.iinfo(np.int16).max

    def keep(power: np.ndarray) -> None:
        nonlocal peak
        if power.shape[1]:
            peak = max(peak, float(power.max()))
            db = 10.0 * np.log10(np.maximum(AMIN, power))
            fixed.append(np.clip(np.rint(db * _FIXED_PER_DB), lo, hi).astype(np.int16))

    for block in blocks:
        keep(mel.push(block))
    keep(mel.finish())
    ref_db = 10.0 * np.log10(max(AMIN, peak))
    n_out = mel.n_frames if n_out_frames is None else int(n_out_frames)
    out = np.zeros((N_MELS, n_out), dtype=np.uint8)
    pos = 0
    fixed.reverse()
    while fixed and pos < n_out:  # quantise block by block, freeing each int16 block when done
        block = fixed.pop()[:, : n_out - pos]
        db = block.astype(np.float32) / np.float32(_FIXED_PER_DB) - np.float32(ref_db)
        out[:, pos : pos + block.shape[1]] = quantize_db(np.maximum(db, -TOP_DB))
        pos += block.shape[1]
    return out
