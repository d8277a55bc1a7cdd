"""One Sleep-EDF night -> its cache record: the hypnogram's stage labels matched to the PSG, the
staging channels read and scaled, the night trimmed to its sleep span
(:func:`preprocess_night`, the cache build's step; see :mod:`sleepbench.tasks.sleep_edf.data`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sleepbench.cache.build import ProcessedRecord, SourceRecord
from sleepbench.errors import RecordingError
from sleepbench.io.edf import read_edf
from sleepbench.io.sleep_edf_labels import read_hypnogram
from sleepbench.recording import Recording
from sleepbench.signal.resample import resample_to
from sleepbench.signal.scaling import clip_iqr, robust_scale

__all__ = [
    "CLASS_NAMES",
    "EPOCH_S",
    "IGNORE",
    "LABEL_OF",
    "SLEEP",
    "match_hypnogram",
    "model_input",
    "preprocess_night",
    "read_psg",
    "sleep_span",
    "stage_labels",
    "staging_channels",
]

EPOCH_S = 30.0
#: Stage names in the integer order of the upstream code (W = 0, REM = 1, N1 = 2, N2 = 3, N3 = 4).
CLASS_NAMES: tuple[str, ...] = ("W", "REM", "N1", "N2", "N3")
#: Label of unscored / movement / ``?`` epochs: never in a loss or a metric.
IGNORE = 5
LABEL_OF: dict[str | None, int] = {name: i for i, name in enumerate(CLASS_NAMES)} | {None: IGNORE}
SLEEP = frozenset(("N1", "N2", "N3", "REM"))


def stage_labels(stages: Sequence[str | None]) -> np.ndarray:
    """AASM stage names (``None`` = unscored) -> int8 labels, :data:`IGNORE` for ``None``."""
    return np.array([LABEL_OF[s] for s in stages], dtype=np.int8)


def match_hypnogram(
    stages: Sequence[str | None], n_signal_epochs: int, max_overhang_epochs: int, source: Path
) -> list[str | None]:
    """Trim (or pad with ``None``) per-epoch stages to the signal's ``n_signal_epochs``.

    Sleep-EDF hypnograms end with an unscored run past the signal; that is cut silently. Scored
    epochs past the signal beyond ``max_overhang_epochs`` mean a truncated PSG.

    Raises:
        RecordingError: too many scored epochs past the end of the signal.
    """
    overhang = [s for s in stages[n_signal_epochs:] if s is not None]
    if len(overhang) > max_overhang_epochs:
        raise RecordingError(
            source,
            f"hypnogram scores {len(overhang)} epochs past the end of the PSG signal "
            f"({n_signal_epochs} epochs = {n_signal_epochs * EPOCH_S / 3600:.2f} h); "
            f"tolerance {max_overhang_epochs}",
        )
    stages = list(stages[:n_signal_epochs])
    return stages + [None] * (n_signal_epochs - len(stages))


def sleep_span(stages: Sequence[str | None], margin_epochs: int | None) -> tuple[int, int]:
    """``[start, stop)`` epochs to keep: ``margin_epochs`` around the first/last sleep epoch.

    ``margin_epochs=None`` keeps everything from the first to the last scored epoch.

    Raises:
        ValueError: no sleep (or, without a margin, no scored) epoch at all.
    """
    wanted = SLEEP if margin_epochs is not None else SLEEP | {"W"}
    hits = [i for i, s in enumerate(stages) if s in wanted]
    if not hits:
        raise ValueError(
            "no sleep epoch scored" if margin_epochs is not None else "no scored epoch"
        )
    if margin_epochs is None:
        return hits[0], hits[-1] + 1
    return max(0, hits[0] - margin_epochs), min(len(stages), hits[-1] + 1 + margin_epochs)


def staging_channels(cfg: Mapping[str, Any]) -> list[str]:
    """Channels the task reads, in cache order: the EEG derivations, then the EOG."""
    return [*(str(c) for c in cfg["eeg_channels"]), str(cfg["eog_channel"])]


def read_psg(
    psg: Path, cfg: Mapping[str, Any], record_id: str | None = None, subject_id: str | None = None
) -> tuple[Recording, int]:
    """Read the EEG and EOG channels of a PSG at their native rates (step 2 of the module
    docstring), as the cache build and ``sleepbench predict`` both do.

    Args:
        psg: the ``*-PSG.edf`` file.
        cfg: ``preprocess`` config (``eeg_channels``, ``eog_channel``, ``expected_fs_hz``).
        record_id, subject_id: ids stored in the :class:`Recording` (default: the file stem).

    Returns:
        ``(recording, n_signal_epochs)``: the channels keyed by their :func:`staging_channels`
        name, and the number of whole 30-s epochs every one of them covers.

    Raises:
        RecordingError: unreadable file, missing channel, wrong rate, or less than one epoch.
    """
    names = staging_channels(cfg)
    expected = cfg.get("expected_fs_hz")
    rec = read_edf(
        psg,
        channels={name: [name] for name in names},
        record_id=record_id,
        subject_id=subject_id,
        expected_fs_hz=float(expected) if expected is not None else None,
    )
    n_signal = min(
        int(rec.signals[n].data.shape[0] // round(EPOCH_S * rec.signals[n].fs_hz)) for n in names
    )
    if n_signal < 1:
        raise RecordingError(psg, "PSG shorter than one 30-s epoch")
    return rec, n_signal


def model_input(rec: Recording, start: int, stop: int, cfg: Mapping[str, Any]) -> np.ndarray:
    """Epochs ``[start, stop)`` of a :func:`read_psg` recording as the network reads them
    (step 5): resampled to ``fs_hz``, clipped at median ± ``clip_iqr_k`` IQR and robust-scaled,
    each channel over these epochs.

    Args:
        rec: from :func:`read_psg` (channels in :func:`staging_channels` order).
        start, stop: 30-s epochs, counted from the recording start.
        cfg: ``preprocess`` config (``fs_hz``, ``clip_iqr_k`` and the channel names).

    Returns:
        float32 ``[n_eeg + 1, (stop - start) * 30 * fs_hz]``.
    """
    fs_out = float(cfg["fs_hz"])
    out_per_epoch = round(EPOCH_S * fs_out)
    channels = []
    for name in staging_channels(cfg):
        signal = rec.signals[name]
        per_epoch = round(EPOCH_S * signal.fs_hz)
        seg = signal.data[start * per_epoch : stop * per_epoch]
        x = resample_to(seg.astype(np.float64), signal.fs_hz, fs_out)[
            : (stop - start) * out_per_epoch
        ]
        channels.append(x)
    x = clip_iqr(np.stack(channels), k=float(cfg["clip_iqr_k"]), axis=-1)
    return robust_scale(x, axis=-1).astype(np.float32)


def preprocess_night(source: SourceRecord, cfg: Mapping[str, Any]) -> ProcessedRecord:
    """Read, trim, resample and scale one Sleep-EDF night for the cache (module docstring).

    Args:
        source: ``paths = (psg, hypnogram)``; ``meta`` has ``night``.
        cfg: ``preprocess`` config: ``eeg_channels``, ``eog_channel``, ``expected_fs_hz``,
            ``fs_hz``, ``clip_iqr_k``, ``trim_wake_min``, ``max_overhang_epochs``.

    Returns:
        ``x`` float32 ``[n_eeg + 1, n_epochs * epoch samples]``, ``y`` int8 ``[n_epochs]``.

    Raises:
        RecordingError: missing channel, wrong rate, unreadable file, unknown annotation,
            truncated PSG, or no sleep scored.
    """
    psg, hyp = (Path(p) for p in source.paths)
    names = staging_channels(cfg)
    rec, n_signal = read_psg(psg, cfg, source.record_id, source.subject_id)
    stages = match_hypnogram(
        read_hypnogram(hyp), n_signal, int(cfg["max_overhang_epochs"]), source=hyp
    )
    trim = cfg.get("trim_wake_min")
    margin = None if trim is None else int(round(float(trim) * 60 / EPOCH_S))
    try:
        start, stop = sleep_span(stages, margin)
    except ValueError as err:
        raise RecordingError(hyp, str(err)) from None

    x = model_input(rec, start, stop, cfg)
    y = stage_labels(stages[start:stop])
    counts = {name: int((y == i).sum()) for i, name in enumerate(CLASS_NAMES)}
    counts["ignored"] = int((y == IGNORE).sum())
    return ProcessedRecord(
        arrays={"x": x, "y": y},
        attrs={
            "fs_hz": float(cfg["fs_hz"]),
            "n_epochs": stop - start,
            "epoch_offset": start,
            "n_signal_epochs": n_signal,
            "channels": names,
            "source_fs_hz": [rec.signals[n].fs_hz for n in names],
            "units": [rec.signals[n].unit for n in names],
            "psg": psg.name,
            "hypnogram": hyp.name,
            "night": int(source.meta.get("night", 0)),
            "stage_counts": counts,
        },
    )
