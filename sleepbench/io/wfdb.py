"""WFDB records and annotation files (PhysioNet) -> :class:`~sleepbench.recording.Recording`.

Parsing is left to the ``wfdb`` package (``rdheader``, ``rdrecord``, ``rdann``); this module adds
the checks a benchmark needs before it trusts a file — the header's record line states a
plausible sampling rate (``wfdb`` silently assumes 250 Hz when it is missing or unreadable), every
signal line names a format ``wfdb`` reads, every ``.dat`` the header names exists and holds exactly
the bytes the header promises, the requested channels exist, no channel is empty, all-NaN or flat,
gaps (NaN runs) are short — and turns every failure into one
:class:`~sleepbench.errors.RecordingError` naming the file and the problem.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import wfdb
from wfdb.io import _signal as wfdb_signal

from sleepbench.errors import RecordingError
from sleepbench.io.bounds import check_recording_length, check_sampling_rate
from sleepbench.io.channel_checks import check_samples, interpolate_nan_runs
from sleepbench.recording import Recording, Signal

__all__ = [
    "read_annotation_samples",
    "read_wfdb_header",
    "read_wfdb_record",
    "record_stem",
]


# What wfdb raises on malformed input. Anything else escaping wfdb is a bug and propagates.
_WFDB_ERRORS = (ValueError, IndexError, KeyError, TypeError, EOFError, UnicodeDecodeError)

# FLAC-compressed formats: their size cannot be predicted from the header.
_COMPRESSED_FORMATS = frozenset(getattr(wfdb_signal, "COMPRESSED_FMTS", ("508", "516", "524")))
# Sample formats wfdb reads (and whose byte count _check_dat_files can predict).
_FORMATS = frozenset(wfdb_signal.DAT_FMTS) & frozenset(wfdb_signal.BYTES_PER_SAMPLE)
# Extensions of the files of one record that name the record: header, signals, annotators.
_RECORD_SUFFIXES = frozenset({".hea", ".dat", ".apn", ".qrs", ".atr", ".xws"})
# The sampling-frequency field of a record line is fs[/counter_freq[(base_counter)]].
_FS_END = re.compile(r"[/(]")


def record_stem(stem: str | Path) -> Path:
    """Normalise a record path to its stem: ``.../a01`` from ``.../a01`` or one of its files.

    Args:
        stem: the record path, bare or with the extension of one of its files (``.hea``,
            ``.dat``, or an annotator: ``.apn``, ``.qrs``, ``.atr``, ``.xws``).

    Returns:
        The path without extension.

    Raises:
        RecordingError: another extension (WFDB record names hold no dot).
    """
    path = Path(stem)
    if not path.suffix:
        return path
    if path.suffix in _RECORD_SUFFIXES:
        return path.with_suffix("")
    raise RecordingError(
        path,
        f"not a WFDB record: unknown extension {path.suffix!r} "
        f"(expected none or one of {sorted(_RECORD_SUFFIXES)})",
    )


def read_wfdb_header(stem: str | Path) -> wfdb.Record:
    """Parse ``<stem>.hea`` with :func:`wfdb.rdheader`.

    Args:
        stem: record path without extension (``data/apnea_ecg/a01``).

    Returns:
        The header as a ``wfdb.Record`` without samples (``fs`` in Hz, ``sig_len`` in frames).

    Raises:
        RecordingError: the header is missing, not ASCII, or unparsable; it is a multi-segment
            header; its record line has no sampling frequency or one that is not a number in
            :mod:`sleepbench.io.bounds`' range; it lists no signal, or not as many signal lines
            as the record line says; a signal has an unsupported format, no name, fewer than
            one sample per frame or a rate out of bounds; the record is longer than the
            longest recording allowed.
    """
    stem = record_stem(stem)
    hea = stem.with_name(stem.name + ".hea")
    if not hea.is_file():
        raise RecordingError(hea, "missing WFDB header (.hea)")
    # wfdb reads the header as ASCII dropping any other byte; read it strictly first.
    try:
        text = hea.read_bytes().decode("ascii")
    except UnicodeDecodeError as err:
        raise RecordingError(hea, f"header is not ASCII text: {err}") from None
    n_sig, fs_hz, sig_len = _record_line(hea, text)
    try:
        header = wfdb.rdheader(str(stem))
    except _WFDB_ERRORS as err:
        raise RecordingError(hea, f"unparsable WFDB header: {err}") from err
    # wfdb's record-line pattern accepts a prefix of a malformed field; ours must agree with it.
    parsed = (header.n_sig, float(header.fs), header.sig_len)
    if (header.n_sig, header.sig_len) != (n_sig, sig_len) or not math.isclose(
        parsed[1],
        fs_hz,
        rel_tol=1e-8,  # wfdb rounds a rate within 1e-8 of an integer to it
    ):
        raise RecordingError(
            hea,
            f"malformed record line: read as (signals, Hz, frames) = {(n_sig, fs_hz, sig_len)} "
            f"but wfdb reads {parsed}",
        )
    _check_signal_lines(hea, header)
    return header


def _record_line(hea: Path, text: str) -> tuple[int, float, int | None]:
    """``(n_sig, fs_hz, sig_len)`` from the record line ``name n_sig fs[/cf[(bc)]] [sig_len ...]``.

    wfdb falls back to 250 Hz when the frequency field is missing or does not match its pattern
    (a negative rate is read as a counter frequency), so the field is parsed here.
    """
    line = next((x.strip() for x in text.splitlines() if x.strip() and x.strip()[0] != "#"), "")
    tokens = line.split()
    if not tokens:
        raise RecordingError(hea, "header has no record line")
    if "/" in tokens[0]:
        raise RecordingError(hea, f"multi-segment records are not supported: {tokens[0]!r}")
    if tokens[0] != hea.stem:
        raise RecordingError(hea, f"record line names record {tokens[0]!r}, not {hea.stem!r}")
    if len(tokens) < 2 or not tokens[1].isdigit():
        raise RecordingError(hea, f"record line {line!r} has no number of signals")
    if int(tokens[1]) == 0:
        raise RecordingError(hea, "header lists no signals")
    if len(tokens) < 3:
        raise RecordingError(
            hea, f"record line {line!r} has no sampling frequency (wfdb would assume 250 Hz)"
        )
    fs_text = _FS_END.split(tokens[2], maxsplit=1)[0]
    try:
        fs_hz = float(fs_text)
    except ValueError:
        raise RecordingError(
            hea, f"record line {line!r}: sampling frequency {tokens[2]!r} is not a number"
        ) from None
    check_sampling_rate(hea, "sampling frequency", fs_hz)
    if len(tokens) > 3 and not tokens[3].isdigit():
        raise RecordingError(hea, f"record line {line!r}: signal length {tokens[3]!r}")
    sig_len = int(tokens[3]) if len(tokens) > 3 else None
    if sig_len is not None:
        check_recording_length(hea, f"record length ({sig_len} frames)", sig_len / fs_hz)
    return int(tokens[1]), fs_hz, sig_len


def _check_signal_lines(hea: Path, header: wfdb.Record) -> None:
    """Every signal line: a known format, a name, >= 1 sample per frame, a rate in bounds."""
    n_lines = len(header.file_name or ())
    if n_lines != header.n_sig:
        raise RecordingError(
            hea, f"record line says {header.n_sig} signals but {n_lines} signal lines follow"
        )
    for i in range(header.n_sig):
        where = f"signal {i + 1}"
        if header.fmt[i] not in _FORMATS:
            raise RecordingError(
                hea,
                f"{where}: unsupported format {header.fmt[i]!r} (wfdb reads {sorted(_FORMATS)})",
            )
        if not header.sig_name[i]:
            raise RecordingError(hea, f"{where} has no name (description field)")
        per_frame = header.samps_per_frame[i]
        if per_frame is not None and per_frame < 1:
            raise RecordingError(hea, f"{where}: {per_frame} samples per frame")
        check_sampling_rate(
            hea, f"sampling rate of {header.sig_name[i]!r}", float(header.fs) * (per_frame or 1)
        )


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


def read_wfdb_record(
    stem: str | Path,
    channels: Sequence[str] | None = None,
    record_id: str | None = None,
    subject_id: str | None = None,
    max_nan_run_s: float = 10.0,
    *,
    allow_flat: bool = False,
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
        allow_flat: accept channels whose samples are all equal (off by default, as in
            :func:`~sleepbench.io.edf.read_edf`: a constant channel is a disconnected sensor).

    Returns:
        A :class:`Recording` whose ``signals`` map each channel name (duplicates get ``_2``, ``_3``
        suffixes) to a float32 :class:`Signal` with ``fs_hz`` and ``unit``; ``meta`` holds
        ``header_fs_hz``, ``n_frames`` and ``nan_filled_samples`` (per channel). No events.
        Header comments and the recording date are not kept.

    Raises:
        RecordingError: missing/unparsable ``.hea`` (see :func:`read_wfdb_header`); missing,
            truncated or wrongly sized ``.dat``; requested channel absent; empty, all-NaN or
            flat channel; NaN run longer than allowed.
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
        check_samples(dat_of[index], name, data, allow_flat=allow_flat)
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
        RecordingError: the file is missing or unparsable; the record's ``.hea``, when there is
            one, fails :func:`read_wfdb_header`; the rate is unknown or out of bounds; the
            sample indices are negative, out of order, or beyond the longest recording.
    """
    stem = record_stem(stem)
    path = stem.with_name(f"{stem.name}.{extension}")
    if not path.is_file():
        raise RecordingError(path, f"missing annotation file (.{extension})")
    if stem.with_name(stem.name + ".hea").is_file():
        # rdann takes the rate from the header when the file has none, through wfdb's lenient
        # parser (250 Hz for a missing rate): the header must pass the strict checks first.
        read_wfdb_header(stem)
    try:
        ann = wfdb.rdann(str(stem), extension)
    except _WFDB_ERRORS as err:
        raise RecordingError(path, f"unparsable annotation file: {err}") from err
    samples = np.asarray(ann.sample, dtype=np.int64)
    symbols = [str(s) for s in ann.symbol]
    if ann.fs is None:
        raise RecordingError(path, "sampling rate unknown: not in the file and no readable .hea")
    fs_hz = check_sampling_rate(path, "sampling rate", ann.fs)
    if samples.size and (samples[0] < 0 or np.any(np.diff(samples) < 0)):
        raise RecordingError(path, "annotation sample indices are negative or out of order")
    if samples.size:
        check_recording_length(path, f"last annotation (sample {samples[-1]})", samples[-1] / fs_hz)
    return samples, symbols, fs_hz
