"""Sleep-EDF (Expanded) specifics: hypnogram stage strings, per-epoch labels, file pairing.

A Sleep-EDF night is a PSG file ``SC4ssNE0-PSG.edf`` (cassette study) or ``ST7ssNJ0-PSG.edf``
(telemetry study) plus an EDF+ hypnogram ``SC4ssNEx-Hypnogram.edf`` / ``ST7ssNJx-Hypnogram.edf``
whose eighth character ``x`` names the scorer (``ss`` = subject, ``N`` = night). The hypnogram
holds Rechtschaffen & Kales stages as annotation runs (``Sleep stage W`` for 30630 s, ...), which
:data:`STAGE_MAP` turns into AASM labels.

:func:`runs_to_epochs` (stage runs -> one label per epoch) is shared with the NSRR XML reader.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from sleepbench.errors import RecordingError
from sleepbench.io.bounds import check_epoch_length, check_time
from sleepbench.io.edf import read_edf_annotations
from sleepbench.recording import Event

__all__ = [
    "AASM_LABELS",
    "STAGE_MAP",
    "SleepEdfPair",
    "hypnogram_to_epochs",
    "pair_psg_hypnogram",
    "read_hypnogram",
    "runs_to_epochs",
]

log = logging.getLogger(__name__)

#: The five AASM classes every sleep-staging task uses.
AASM_LABELS: tuple[str, ...] = ("W", "N1", "N2", "N3", "REM")

#: Sleep-EDF annotation text -> AASM label. R&K stages 3 and 4 merge into N3; unscored epochs
#: (``?``) and movement time map to ``None`` (ignored in losses and metrics).
STAGE_MAP: dict[str, str | None] = {
    "Sleep stage W": "W",
    "Sleep stage 1": "N1",
    "Sleep stage 2": "N2",
    "Sleep stage 3": "N3",
    "Sleep stage 4": "N3",
    "Sleep stage R": "REM",
    "Sleep stage ?": None,
    "Movement time": None,
}

_PSG_NAME = re.compile(r"(?P<key>(?P<subject>S[CT]\d\d{2})(?P<night>\d)[A-Z])0-PSG\.edf", re.I)
_HYP_NAME = re.compile(r"(?P<key>S[CT]\d\d{2}\d[A-Z])[A-Z]-Hypnogram\.edf", re.I)
_UNSET = object()


class SleepEdfPair(NamedTuple):
    """One Sleep-EDF night: its two files and identifiers.

    Attributes:
        psg_path: the ``*-PSG.edf`` signal file.
        hyp_path: the matching ``*-Hypnogram.edf`` annotation file.
        record_id: PSG stem without ``-PSG`` (``"SC4001E0"``).
        subject_id: study and subject number (``"SC400"`` for ``SC4001E0``); both nights of a
            subject share it, so subject-wise splits keep them together.
        night: night number (1 or 2).
    """

    psg_path: Path
    hyp_path: Path
    record_id: str
    subject_id: str
    night: int


def runs_to_epochs(
    runs: Iterable[tuple[float, float, str | None]],
    epoch_s: float = 30.0,
    n_epochs: int | None = None,
    *,
    source: str | Path = "<stage runs>",
) -> list[str | None]:
    """Expand stage runs ``(onset_s, duration_s, label)`` into one label per epoch.

    Epoch ``i`` covers ``[i * epoch_s, (i + 1) * epoch_s)`` and takes the label of the run that
    contains its midpoint. For runs aligned to the epoch grid (Sleep-EDF, NSRR) this is the exact
    expansion ``duration_s / epoch_s`` epochs from ``onset_s / epoch_s``; for a slightly
    misaligned run it assigns each epoch to the run covering most of it.

    Args:
        runs: ``(onset_s, duration_s, label)`` in seconds; ``label`` may be ``None`` (ignored).
        epoch_s: epoch length in seconds, within :mod:`sleepbench.io.bounds`' epoch range.
        n_epochs: output length; ``None`` ends at the last run, a larger value pads with
            ``None``, a smaller one truncates.
        source: file named in error messages.

    Returns:
        ``n_epochs`` labels; epochs no run covers are ``None``.

    Raises:
        RecordingError: an epoch length, onset or duration outside :mod:`sleepbench.io.bounds`
            (negative, not finite, longer than a recording can be), or two runs with different
            labels claiming the same epoch.
    """
    # Bounded before the label list is sized from them (an onset of 1e300 s would not fit).
    epoch_s = check_epoch_length(source, "epoch length", epoch_s)
    labels: list[object] = []
    for onset, duration, label in runs:
        check_time(source, f"onset of stage run {label!r}", onset)
        check_time(source, f"duration of stage run {label!r} at {onset:g} s", duration)
        first = max(0, math.ceil(onset / epoch_s - 0.5))
        stop = math.ceil((onset + duration) / epoch_s - 0.5)
        if stop > len(labels):
            labels.extend([_UNSET] * (stop - len(labels)))
        for i in range(first, stop):
            if labels[i] is not _UNSET and labels[i] != label:
                raise RecordingError(
                    source,
                    f"stage runs overlap at epoch {i} ({i * epoch_s:g} s): "
                    f"{labels[i]!r} and {label!r}",
                )
            labels[i] = label
    out = [None if x is _UNSET else x for x in labels]
    if n_epochs is not None:
        out = out[:n_epochs] + [None] * max(0, n_epochs - len(out))
    return out  # type: ignore[return-value]


def hypnogram_to_epochs(
    events: Sequence[Event],
    n_epochs: int | None = None,
    epoch_s: float = 30.0,
    *,
    source: str | Path = "<hypnogram>",
) -> list[str | None]:
    """Turn Sleep-EDF hypnogram annotations into one AASM label per epoch.

    Args:
        events: the hypnogram's annotations (:func:`~sleepbench.io.edf.read_edf_annotations`),
            each a stage run with onset and duration in seconds.
        n_epochs: output length (e.g. the PSG's duration // ``epoch_s``, to trim or pad the
            hypnogram to the signal); ``None`` ends at the last annotation.
        epoch_s: epoch length in seconds.
        source: file named in error messages.

    Returns:
        Labels from :data:`AASM_LABELS`, or ``None`` for unscored / movement / uncovered epochs.

    Raises:
        RecordingError: no annotation at all, an annotation text outside :data:`STAGE_MAP`
            (named in the message), or overlapping runs.
    """
    if not events:
        raise RecordingError(source, "hypnogram holds no stage annotation")
    runs = []
    for event in events:
        if event.label not in STAGE_MAP:
            raise RecordingError(
                source, f"unknown hypnogram annotation {event.label!r} at {event.onset_s:g} s"
            )
        runs.append((event.onset_s, event.duration_s, STAGE_MAP[event.label]))
    return runs_to_epochs(runs, epoch_s, n_epochs, source=source)


def read_hypnogram(
    path: str | Path, n_epochs: int | None = None, epoch_s: float = 30.0
) -> list[str | None]:
    """Read a Sleep-EDF ``*-Hypnogram.edf`` into per-epoch AASM labels.

    Args:
        path: the hypnogram file.
        n_epochs: output length (see :func:`hypnogram_to_epochs`).
        epoch_s: epoch length in seconds.

    Returns:
        One label (or ``None``) per epoch.

    Raises:
        RecordingError: unreadable file (see :func:`~sleepbench.io.edf.read_edf_annotations`),
            no or an unknown stage annotation, overlapping runs.
    """
    return hypnogram_to_epochs(
        read_edf_annotations(path), n_epochs=n_epochs, epoch_s=epoch_s, source=path
    )


def pair_psg_hypnogram(folder: str | Path, *, strict: bool = True) -> list[SleepEdfPair]:
    """Pair every Sleep-EDF PSG file under ``folder`` (searched recursively) with its hypnogram.

    ``SC4ssNE0-PSG.edf`` pairs with ``SC4ssNEx-Hypnogram.edf`` and ``ST7ssNJ0-PSG.edf`` with
    ``ST7ssNJx-Hypnogram.edf``: the first seven characters agree and the hypnogram's eighth is
    the scorer letter. Other files are ignored.

    Args:
        folder: a Sleep-EDF download (``sleep-cassette/`` and ``sleep-telemetry/`` may be
            subfolders).
        strict: raise on a PSG without hypnogram or a hypnogram without PSG; when ``False``,
            log a warning and skip them.

    Returns:
        Pairs sorted by record id.

    Raises:
        RecordingError: ``folder`` is not a directory, a PSG matches several hypnograms, or
            (``strict``) a file has no partner.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise RecordingError(folder, "Sleep-EDF folder not found")
    psgs: dict[str, Path] = {}
    hyps: dict[str, list[Path]] = {}
    for path in sorted(folder.rglob("*")):
        if (m := _PSG_NAME.fullmatch(path.name)) is not None:
            psgs[m["key"].upper()] = path
        elif (m := _HYP_NAME.fullmatch(path.name)) is not None:
            hyps.setdefault(m["key"].upper(), []).append(path)

    orphans = sorted(
        [str(psgs[k]) for k in psgs.keys() - hyps.keys()]
        + [str(p) for k in hyps.keys() - psgs.keys() for p in hyps[k]]
    )
    if orphans:
        if strict:
            raise RecordingError(folder, f"files without a PSG/hypnogram partner: {orphans}")
        log.warning("skipping %d Sleep-EDF files without a partner: %s", len(orphans), orphans)

    pairs = []
    for key in sorted(psgs.keys() & hyps.keys()):
        psg, candidates = psgs[key], hyps[key]
        if len(candidates) > 1:
            raise RecordingError(psg, f"several hypnograms match: {[str(p) for p in candidates]}")
        m = _PSG_NAME.fullmatch(psg.name)
        assert m is not None  # psgs only holds matching names
        pairs.append(
            SleepEdfPair(
                psg_path=psg,
                hyp_path=candidates[0],
                record_id=psg.name[: -len("-PSG.edf")],
                subject_id=m["subject"].upper(),
                night=int(m["night"]),
            )
        )
    return pairs
