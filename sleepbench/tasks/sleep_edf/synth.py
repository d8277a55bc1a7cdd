"""Synthetic Sleep-EDF Expanded (sleep-cassette) nights, written as the real files are.

Each night is a pair ``SC4ssNE0-PSG.edf`` (plain EDF, 30-s data records, Sleep-EDF's seven
channels and rates) and ``SC4ssNEx-Hypnogram.edf`` (annotation-only EDF+C: one annotation per
run of equal 30-s epochs, ``Sleep stage W/1/2/3/4/R/?`` and ``Movement time``; ``x`` is a scorer
letter). As in the real database the hypnogram runs past the end of the PSG with a final
``Sleep stage ?`` annotation, so readers must trim it to the signal.

The generator is split by job:

- :mod:`.synth_hypnogram`: the night's structure (stages per 30-s epoch, annotation runs);
- :mod:`.synth_scoring`: what a scorer writes for those signals (the hypnogram file's stages);
- :mod:`.synth_eeg`: Fpz-Cz and Pz-Oz EEG per stage (1/f background, rhythms, graphoelements);
- :mod:`.synth_eog`: the eye movements (saccades, blinks, slow and rapid eye movements);
- :mod:`.synth_artefacts`: body movements, electrode pops and sweat on the head channels;
- :mod:`.synth_aux`: the 1-Hz channels (EMG envelope, respiration, temperature, marker);
- :mod:`.synth_signal`: the shared signal-building blocks;
- this module: mixing the sources into the recorded channels (eye artefacts on the frontal
  lead, frontal EEG on the EOG) and writing the files;
- :mod:`.synth_judge`: YASA's pretrained classifier as an independent judge of the result.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sleepbench.io.edf_write import write_edf, write_edf_annotations
from sleepbench.recording import Signal
from sleepbench.tasks.sleep_edf.synth_artefacts import synth_artefacts
from sleepbench.tasks.sleep_edf.synth_aux import synth_aux
from sleepbench.tasks.sleep_edf.synth_eeg import synth_eeg
from sleepbench.tasks.sleep_edf.synth_eog import synth_eye
from sleepbench.tasks.sleep_edf.synth_hypnogram import (
    ANNOTATION_TEXT,
    EPOCH_S,
    STAGES,
    drowsy_wake,
    hypnogram_annotations,
    synth_hypnogram,
)
from sleepbench.tasks.sleep_edf.synth_scoring import score_hypnogram, slow_wave_share
from sleepbench.tasks.sleep_edf.synth_signal import Grid, stage_index
from sleepbench.tasks.sleep_edf.synth_traits import SubjectTraits

__all__ = [
    "ANNOTATION_TEXT",
    "CHANNELS",
    "EPOCH_S",
    "STAGES",
    "SleepEdfSynthNight",
    "SubjectTraits",
    "hypnogram_annotations",
    "synth_hypnogram",
    "synth_night",
    "synth_night_signals",
    "write_synthetic_sleep_edf",
]

#: (label, rate in Hz or None for the EEG rate, unit), in Sleep-EDF's channel order.
CHANNELS: tuple[tuple[str, float | None, str], ...] = (
    ("EEG Fpz-Cz", None, "uV"),
    ("EEG Pz-Oz", None, "uV"),
    ("EOG horizontal", None, "uV"),
    ("Resp oro-nasal", 1.0, ""),
    ("EMG submental", 1.0, "uV"),
    ("Temp rectal", 1.0, "DegC"),
    ("Event marker", 1.0, ""),
)
# Scorer letters seen in the real sleep-cassette hypnogram names, most frequent first.
_SCORERS = "CMJAPVUHGW"
_RECORD_S = 30.0  # Sleep-EDF PSG files use 30-s data records
#: volume conduction between the eyes and the frontal EEG (fractions of amplitude)
_EYE_ON_FPZ = 0.15  # eye movements seen on Fpz-Cz
_BLINK_ON_FPZ = 0.5  # blinks on Fpz-Cz (Fpz sits just above the eyes)
_BLINK_ON_EOG = 0.5  # blinks on the horizontal EOG (mostly vertical, little left-right)
_FPZ_ON_EOG = 0.45  # frontal EEG picked up by the EOG electrodes


def synth_night_signals(
    rng: np.random.Generator,
    stages: Sequence[str],
    fs_hz: float = 100.0,
    traits: SubjectTraits | None = None,
) -> list[Signal]:
    """All seven Sleep-EDF channels for a night whose per-epoch stages are given.

    Args:
        rng: random generator.
        stages: one code of :data:`STAGES` per 30-s epoch.
        fs_hz: rate of the EEG and EOG channels in Hz (Sleep-EDF: 100); ``5 * fs_hz`` must be
            a whole number of samples.
        traits: subject constants; ``None`` uses population means.

    Returns:
        Signals in Sleep-EDF order (:data:`CHANNELS`): EEG Fpz-Cz, EEG Pz-Oz, EOG horizontal
        (``fs_hz``, µV), Resp oro-nasal, EMG submental (µV rms), Temp rectal (°C), Event marker
        (1 Hz).
    """
    traits = traits or SubjectTraits()
    if abs(5 * fs_hz - round(5 * fs_hz)) > 1e-9:
        raise ValueError(f"fs_hz={fs_hz}: 5 s must be a whole number of samples")
    stage_idx = stage_index(stages, drowsy_wake(rng, stages))
    grid = Grid(stage_idx, fs_hz)
    fpz, pz = synth_eeg(rng, grid, traits)
    eye = synth_eye(rng, grid)
    moves = traits.eye_amplitude * eye.moves
    eog = moves + eye.noise + _BLINK_ON_EOG * eye.blinks + _FPZ_ON_EOG * fpz
    fpz += _EYE_ON_FPZ * moves + _BLINK_ON_FPZ * eye.blinks
    for sig, artefact in zip((fpz, pz, eog), synth_artefacts(rng, grid)):
        sig += artefact
    return [
        Signal("EEG Fpz-Cz", fpz, fs_hz, "uV"),
        Signal("EEG Pz-Oz", pz, fs_hz, "uV"),
        Signal("EOG horizontal", eog, fs_hz, "uV"),
        *synth_aux(rng, stage_idx, traits),
    ]


def synth_night(
    rng: np.random.Generator, minutes: float, fs_hz: float = 100.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """A whole synthetic night in memory.

    Args:
        rng: random generator (also draws the subject traits).
        minutes: night length in minutes (rounded down to whole 30-s epochs; at least 20).
        fs_hz: EEG/EOG rate in Hz.

    Returns:
        ``(eeg_fpz_cz, eeg_pz_oz, eog_horizontal, stages)``: float32 µV arrays of
        ``len(stages) * 30 * fs_hz`` samples and one R&K code of :data:`STAGES` per epoch, as
        scored (:func:`~.synth_scoring.score_hypnogram`).
    """
    traits = SubjectTraits.sample(rng)
    stages = synth_hypnogram(rng, int(minutes * 60 // EPOCH_S), traits.slow_wave)
    sigs = synth_night_signals(rng, stages, fs_hz, traits)
    scored = score_hypnogram(rng, stages, slow_wave_share(sigs[0].data, fs_hz))
    return sigs[0].data, sigs[1].data, sigs[2].data, scored


# --------------------------------------------------------------------------------------------
# files


@dataclass(frozen=True)
class SleepEdfSynthNight:
    """One synthetic night on disk.

    Args:
        record_id: PSG stem without ``-PSG`` (``"SC4001E0"``).
        subject_id: ``"SC400"`` for subject 00 (both nights share it, as in the reader).
        night: 1 or 2.
        psg_path: the ``*-PSG.edf`` file.
        hypnogram_path: the ``*-Hypnogram.edf`` file.
        n_epochs: 30-s epochs covered by the PSG.
        stage_counts: epochs per R&K code within the PSG.
    """

    record_id: str
    subject_id: str
    night: int
    psg_path: Path
    hypnogram_path: Path
    n_epochs: int
    stage_counts: dict[str, int] = field(default_factory=dict)


def write_synthetic_sleep_edf(
    root: str | Path,
    n_subjects: int = 4,
    nights_per_subject: int = 2,
    hours: float | None = None,
    minutes: float | None = None,
    seed: int = 0,
    fs_hz: float = 100.0,
) -> list[SleepEdfSynthNight]:
    """Write synthetic Sleep-EDF sleep-cassette nights in the database's own file layout.

    Args:
        root: output folder (created); files go directly inside, as in ``sleep-cassette/``.
        n_subjects: number of subjects (at most 100; subject numbers ``00``, ``01``, ...).
        nights_per_subject: nights per subject (1-9; the real study has 1 or 2).
        hours: night length in hours; give this or ``minutes``. Neither: 8 h.
        minutes: night length in minutes (at least 20).
        seed: seed; a given (seed, subject, night) always produces the same night, whatever
            ``n_subjects`` is.
        fs_hz: EEG/EOG rate in Hz (Sleep-EDF: 100).

    Returns:
        One :class:`SleepEdfSynthNight` per night, ordered by subject then night.
    """
    if hours is not None and minutes is not None:
        raise ValueError("give hours or minutes, not both")
    minutes = 60.0 * (8.0 if hours is None else hours) if minutes is None else minutes
    if not 1 <= n_subjects <= 100:
        raise ValueError(f"n_subjects must be 1..100 (two-digit subject numbers), got {n_subjects}")
    if not 1 <= nights_per_subject <= 9:
        raise ValueError(f"nights_per_subject must be 1..9, got {nights_per_subject}")
    n_epochs = int(minutes * 60 // EPOCH_S)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for subject in range(n_subjects):
        sub_rng = np.random.default_rng((seed, subject))
        traits = SubjectTraits.sample(sub_rng)
        first_day = dt.datetime(1989, 3, 1) + dt.timedelta(days=int(sub_rng.integers(0, 700)))
        for night in range(1, nights_per_subject + 1):
            # file facts come from their own stream, so generator changes leave names alone
            meta = np.random.default_rng((seed, subject, night, 0))
            start = first_day + dt.timedelta(
                days=night - 1, hours=22, minutes=int(meta.integers(0, 90))
            )
            scorer = _SCORERS[int(meta.integers(0, len(_SCORERS)))]
            trailing = EPOCH_S * int(meta.integers(20, 240))
            rng = np.random.default_rng((seed, subject, night))
            stages = synth_hypnogram(rng, n_epochs, traits.slow_wave)
            signals = synth_night_signals(rng, stages, fs_hz, traits)
            scored = score_hypnogram(rng, stages, slow_wave_share(signals[0].data, fs_hz))
            stem = f"SC4{subject:02d}{night}"
            psg = write_edf(
                root / f"{stem}E0-PSG.edf",
                signals,
                start=start,
                patient_code="X",
                record_duration_s=_RECORD_S,
            )
            # As in the real files, the hypnogram ends with an unscored run past the PSG.
            hyp = write_edf_annotations(
                root / f"{stem}E{scorer}-Hypnogram.edf",
                hypnogram_annotations(scored, trailing_unscored_s=trailing),
                start=start,
            )
            out.append(
                SleepEdfSynthNight(
                    record_id=f"{stem}E0",
                    subject_id=f"SC4{subject:02d}",
                    night=night,
                    psg_path=psg,
                    hypnogram_path=hyp,
                    n_epochs=n_epochs,
                    stage_counts=dict(Counter(scored)),
                )
            )
    return out
