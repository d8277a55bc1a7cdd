"""WFDB records and annotation files (PhysioNet) -> :class:`~sleepbench.recording.Recording`.

Parsing is left to the ``wfdb`` package (``rdheader``, ``rdrecord``, ``rdann``); this module adds
the checks a benchmark needs before it trusts a file — every ``.dat`` the header names exists and
holds exactly the bytes the header promises, the requested channels exist, no channel is empty or
all-NaN, gaps (NaN runs) are short — and turns every failure into one
:class:`~sleepbench.errors.RecordingError` naming the file and the problem.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import wfdb
from wfdb.io import _signal as wfdb_signal

from sleepbench.errors import RecordingError
from sleepbench.recording import Recording, Signal

__all__ = [
    "READER_VERSION",
    "interpolate_nan_runs",
    "read_annotation_samples",
    "read_wfdb_header",
    "read_wfdb_record",
    "record_stem",
]

#: Bump when the reader's output for the same files changes (part of the cache fingerprint).
READER_VERSION = "wfdb-1"

# What wfdb raises on malformed input. Anything else escaping wfdb is a bug and propagates.
_WFDB_ERRORS = (ValueError, IndexError, KeyError, TypeError, EOFError, UnicodeDecodeError)

# FLAC-compressed formats: their size cannot be predicted from the header.
_COMPRESSED_FORMATS = frozenset(getattr(wfdb_signal, "COMPRESSED_FMTS", ("508", "516", "524")))


def record_stem(stem: str | Path) -> Path:
    """Normalise a record path to its stem (``.../a01``), accepting ``.../a01.hea`` too."""
    path = Path(stem)
    return path.with_suffix("") if path.suffix in (".hea", ".dat") else path


def read_wfdb_header(stem: str | Path) -> wfdb.Record:
    """Parse ``<stem>.hea`` with :func:`wfdb.rdheader`.

    Args:
        stem: record path without extension (``data/apnea_ecg/a01``).

    Returns:
        The header as a ``wfdb.Record`` without samples (``fs`` in Hz, ``sig_len`` in frames).

    Raises:
        RecordingError: the header is missing, unparsable, or describes no usable signal.
    """
    stem = record_stem(stem)
    hea = stem.with_name(stem.name + ".hea")
    if not hea.is_file():
        raise RecordingError(hea, "missing WFDB header (.hea)")
    try:
        header = wfdb.rdheader(str(stem))
    except _WFDB_ERRORS as err:
        raise RecordingError(hea, f"unparsable WFDB header: {err}") from err
    if not header.n_sig:
        raise RecordingError(hea, "header lists no signals")
    if not header.fs or header.fs <= 0:
        raise RecordingError(hea, f"header has a non-positive sampling rate {header.fs!r}")
    return header


def _check_dat_files(stem: Path, header: wfdb.Record) -> None:
    """Check that every ``.dat`` the header names exists and has exactly the expected size.

    The expected size of one file is ``byte_offset + bytes(sig_len x samples per frame of the
    signals stored in it)``, computed with wfdb's own byte-count rule for the format.

    Raises:
        RecordingError: a ``.dat`` is missing, smaller than the header says (truncated), or
            larger by at least one frame (header and file disagree).
    """
    files: dict[str, list[int]] = {}
    for index, name in enumerate(header.file_name):
        files.setdefault(name, []).append(index)
    for name, indices in files.items():
        dat = stem.parent / name
        if not dat.is_file():
            raise RecordingError(dat, f"missing signal file named in {stem.name}.hea")
        fmt = header.fmt[indices[0]]
        if header.sig_len is None or fmt in _COMPRESSED_FORMATS:
            continue  # length is taken from the file itself / cannot be predicted
        if any(header.fmt[i] != fmt for i in indices):
            raise RecordingError(dat, "signals stored in one .dat file have different formats")
        per_frame = sum(header.samps_per_frame[i] or 1 for i in indices)
        offset = header.byte_offset[indices[0]] or 0
        expected = offset + wfdb_signal._required_byte_num("read", fmt, header.sig_len * per_frame)
        frame_bytes = math.ceil(wfdb_signal.BYTES_PER_SAMPLE[fmt] * per_frame)
        actual = dat.stat().st_size
        if actual < expected:
            raise RecordingError(
                dat,
                f"truncated .dat: {actual} bytes on disk but {stem.name}.hea implies {expected} "
                f"({header.sig_len} frames of {per_frame} format-{fmt} samples)",
            )
        if actual - expected >= frame_bytes:
            raise RecordingError(
                dat,
                f"header/size mismatch: {actual} bytes on disk but {stem.name}.hea implies "
                f"{expected} ({header.sig_len} frames); the header's signal length is wrong",
            )


def _select_channels(stem: Path, header: wfdb.Record, channels: Sequence[str] | None) -> list[int]:
    """Indices of the requested channels (case-insensitive names), all when ``None``."""
    if channels is None:
        return list(range(header.n_sig))
    lower = [name.lower() for name in header.sig_name]
    indices = []
    for wanted in channels:
        if wanted.lower() not in lower:
            raise RecordingError(
                stem.with_name(stem.name + ".hea"),
                f"requested channel {wanted!r} absent; channels are {list(header.sig_name)}",
            )
        indices.append(lower.index(wanted.lower()))
    return indices


def interpolate_nan_runs(
    data: np.ndarray, fs_hz: float, max_nan_run_s: float, path: str | Path, channel: str
) -> tuple[np.ndarray, int]:
    """Fill short runs of non-finite samples by linear interpolation.

    Args:
        data: 1-D samples (any float dtype).
        fs_hz: sampling rate in Hz, to express runs in seconds.
        max_nan_run_s: longest run (seconds) that may be filled; ``math.inf`` fills any run.
        path: file named in the error.
        channel: channel named in the error.

    Returns:
        ``(filled, n_filled)``: a float32 copy with every non-finite sample replaced by the
        straight line between its finite neighbours (a run touching either end of the channel
        takes the nearest finite value), and the number of samples filled.

    Raises:
        RecordingError: the channel is empty, has no finite sample, or has a run longer than
            ``max_nan_run_s``.
    """
    x = np.array(data, dtype=np.float64)  # a copy: the caller's array is left as it was
    if x.size == 0:
        raise RecordingError(path, f"channel {channel!r} has no samples")
    bad = ~np.isfinite(x)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return x.astype(np.float32), 0
    if n_bad == x.size:
        raise RecordingError(path, f"channel {channel!r} is entirely NaN")
    # Run boundaries from the edges of the boolean mask.
    edges = np.diff(np.concatenate(([0], bad.view(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    longest = int(np.argmax(stops - starts))
    run = stops[longest] - starts[longest]
    if run > max_nan_run_s * fs_hz:
        raise RecordingError(
            path,
            f"channel {channel!r} has a NaN run of {run / fs_hz:.3f} s "
            f"({run} samples from {starts[longest] / fs_hz:.3f} s), longer than the "
            f"{max_nan_run_s} s allowed",
        )
    good = np.flatnonzero(~bad)
    x[bad] = np.interp(np.flatnonzero(bad), good, x[good])
    return x.astype(np.float32), n_bad


def read_wfdb_record(
    stem: str | Path,
    channels: Sequence[str] | None = None,
    record_id: str | None = None,
    subject_id: str | None = None,
    max_nan_run_s: float = 10.0,
) -> Recording:
    """Read a WFDB record's signals in physical units.

    Each channel keeps its own rate: ``fs_hz = header fs x samples per frame`` (so a 4x
    oversampled channel of a multi-rate record is returned at 4x the frame rate, not averaged).
    Samples the file marks invalid (WFDB's "invalid sample" value, read as NaN) are filled by
    linear interpolation when the run is at most ``max_nan_run_s`` long; a longer run is an error.

    Args:
        stem: record path without extension (``.../100``); ``.../100.hea`` is accepted.
        channels: channel names to read (case-insensitive); all channels when ``None``.
        record_id: id to store; defaults to the header's record name.
        subject_id: subject to store; defaults to ``record_id`` (dataset-specific rules, such as
            Apnea-ECG's ``a01r`` -> ``a01``, belong to the dataset's module).
        max_nan_run_s: longest NaN run in seconds that is interpolated.

    Returns:
        A :class:`Recording` whose ``signals`` map each channel name (duplicates get ``_2``, ``_3``
        suffixes) to a float32 :class:`Signal` with ``fs_hz`` and ``unit``; ``meta`` holds
        ``header_fs_hz``, ``n_frames`` and ``nan_filled_samples`` (per channel). No events.
        Header comments and the recording date are not kept.

    Raises:
        RecordingError: missing/unparsable ``.hea``; missing, truncated or wrongly sized ``.dat``;
            requested channel absent; empty or all-NaN channel; NaN run longer than allowed.
    """
    stem = record_stem(stem)
    header = read_wfdb_header(stem)
    _check_dat_files(stem, header)
    indices = _select_channels(stem, header, channels)
    try:
        record = wfdb.rdrecord(
            str(stem), channels=indices, physical=True, smooth_frames=False, return_res=64
        )
    except _WFDB_ERRORS as err:
        raise RecordingError(
            stem.parent / header.file_name[indices[0]], f"unreadable samples: {err}"
        ) from err

    dat_of = {i: stem.parent / header.file_name[i] for i in indices}
    signals: dict[str, Signal] = {}
    filled: dict[str, int] = {}
    for position, index in enumerate(indices):
        name = header.sig_name[index]
        key, n = name, 2
        while key in signals:
            key, n = f"{name}_{n}", n + 1
        fs_hz = float(header.fs) * (header.samps_per_frame[index] or 1)
        data, n_filled = interpolate_nan_runs(
            record.e_p_signal[position], fs_hz, max_nan_run_s, dat_of[index], name
        )
        signals[key] = Signal(name=name, data=data, fs_hz=fs_hz, unit=header.units[index] or "")
        filled[key] = n_filled

    return Recording(
        record_id=record_id or header.record_name,
        subject_id=subject_id or record_id or header.record_name,
        signals=signals,
        meta={
            "header_fs_hz": float(header.fs),
            "n_frames": int(record.sig_len),
            "nan_filled_samples": filled,
        },
    )


def read_annotation_samples(
    stem: str | Path, extension: str
) -> tuple[np.ndarray, list[str], float]:
    """Read a WFDB annotation file ``<stem>.<extension>`` with :func:`wfdb.rdann`.

    Args:
        stem: record path without extension.
        extension: annotator name (``"apn"``, ``"qrs"``, ``"atr"``).

    Returns:
        ``(samples, symbols, fs_hz)``: int64 sample indices (non-decreasing), one symbol per
        annotation, and the sampling rate in Hz that the samples count in (from the annotation
        file, else from the record's header).

    Raises:
        RecordingError: the file is missing or unparsable, the rate is unknown, or the sample
            indices are negative or out of order.
    """
    stem = record_stem(stem)
    path = stem.with_name(f"{stem.name}.{extension}")
    if not path.is_file():
        raise RecordingError(path, f"missing annotation file (.{extension})")
    try:
        ann = wfdb.rdann(str(stem), extension)
    except _WFDB_ERRORS as err:
        raise RecordingError(path, f"unparsable annotation file: {err}") from err
    samples = np.asarray(ann.sample, dtype=np.int64)
    symbols = [str(s) for s in ann.symbol]
    if ann.fs is None or not ann.fs > 0:
        raise RecordingError(path, "sampling rate unknown: not in the file and no readable .hea")
    if samples.size and (samples[0] < 0 or np.any(np.diff(samples) < 0)):
        raise RecordingError(path, "annotation sample indices are negative or out of order")
    return samples, symbols, float(ann.fs)
