"""Audio files (WAV and the other containers libsndfile reads) -> float32 mono samples.

Parsing is left to ``soundfile`` (libsndfile); this module adds what a benchmark needs before it
trusts a file: the header states a plausible rate (:mod:`sleepbench.io.bounds`), the file holds
at least one sample, the samples are finite, and every failure becomes one
:class:`~sleepbench.errors.RecordingError` naming the file and the problem.

Integer sample types are scaled by their full range (``soundfile``'s ``dtype="float32"``: a
``PCM_16`` sample ``k`` becomes ``k / 2**15``, ``PCM_24`` and ``PCM_32`` ``k / 2**31`` of their
left-justified 32-bit value), so they lie in ``[-1, 1]`` (``[-1, 1)`` before float32 rounding);
floating-point files keep their values.
The real ICBHI recordings mix ``PCM_16``, ``PCM_24`` and ``PCM_32`` at 4 kHz and 44.1 kHz; ESC-50
clips are ``PCM_16`` at 44.1 kHz.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from sleepbench.errors import RecordingError
from sleepbench.io.bounds import check_recording_length, check_sampling_rate

__all__ = ["WavInfo", "read_wav", "wav_info"]

# What soundfile raises on a malformed or unreadable file (LibsndfileError is a RuntimeError).
_SF_ERRORS = (RuntimeError, OSError, ValueError, TypeError, EOFError, MemoryError)


@dataclass(frozen=True)
class WavInfo:
    """What an audio file's header says.

    Args:
        path: the file.
        fs_hz: sampling rate (Hz).
        n_samples: samples per channel (frames).
        channels: number of channels.
        subtype: soundfile sample type: ``"PCM_16"``, ``"PCM_24"``, ``"PCM_32"``, ``"FLOAT"``...
    """

    path: Path
    fs_hz: float
    n_samples: int
    channels: int
    subtype: str

    @property
    def duration_s(self) -> float:
        """Length in seconds: ``n_samples / fs_hz``."""
        return self.n_samples / self.fs_hz


def wav_info(path: str | Path) -> WavInfo:
    """Read an audio file's header only.

    Args:
        path: the ``.wav`` (or other libsndfile-readable) file.

    Returns:
        Its :class:`WavInfo`.

    Raises:
        RecordingError: the file is missing or not a readable audio file; it declares no
            channel or no sample; its rate is outside ``(0, MAX_FS_HZ]`` Hz; it is longer than
            the longest recording allowed.
    """
    path = Path(path)
    if not path.is_file():
        raise RecordingError(path, "audio file not found")
    try:
        info = sf.info(str(path))
    except _SF_ERRORS as err:
        raise RecordingError(path, f"not a readable audio file: {err}") from None
    return _checked_info(path, info.samplerate, info.frames, info.channels, info.subtype)


def _checked_info(path: Path, fs_hz: float, frames: int, channels: int, subtype: str) -> WavInfo:
    fs_hz = check_sampling_rate(path, "sampling rate", fs_hz)
    if channels < 1:
        raise RecordingError(path, f"the file declares {channels} channels")
    if frames < 1:
        raise RecordingError(path, "the file holds no audio samples")
    check_recording_length(path, "audio length", frames / fs_hz)
    return WavInfo(path, fs_hz, int(frames), int(channels), str(subtype))


def read_wav(path: str | Path) -> tuple[np.ndarray, WavInfo]:
    """Read an audio file as float32 mono at its own rate.

    Args:
        path: the ``.wav`` (or other libsndfile-readable) file.

    Returns:
        ``(samples, info)``: float32 ``[n_samples]`` (integer types scaled by their full range
        into ``[-1, 1]``; several channels averaged), and the file's :class:`WavInfo` whose
        ``n_samples`` is the number of samples actually read (a truncated file yields what it
        holds).

    Raises:
        RecordingError: as :func:`wav_info`; the data cannot be decoded; no sample could be
            read; a sample is NaN or infinite (floating-point files).
    """
    path = Path(path)
    header = wav_info(path)
    try:
        data, fs_hz = sf.read(str(path), dtype="float32", always_2d=True)
    except _SF_ERRORS as err:
        raise RecordingError(path, f"cannot decode the audio samples: {err}") from None
    if data.shape[0] == 0:
        raise RecordingError(path, "the file holds no audio samples")
    # Averaging in float64 keeps a two-channel mean exact to float32 rounding.
    mono = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float64)
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if not np.isfinite(mono).all():
        raise RecordingError(path, "the audio holds NaN or infinite samples")
    info = _checked_info(path, fs_hz, mono.size, data.shape[1], header.subtype)
    return mono, info
