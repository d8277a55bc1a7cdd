"""Synthetic PhysioNet Apnea-ECG database with known per-minute apnea labels.

Writes records in the layout of Apnea-ECG 1.0.0 (Penzel et al., Computers in Cardiology 2000):
a 100 Hz single-lead ECG per record (``.hea`` + ``.dat``: format 16, 200 adu/mV, 12-bit ADC),
machine-style R-peak annotations (``.qrs``, every beat ``N``, ectopic ones too), per-minute labels
(``.apn``, ``A`` or ``N`` at sample 6000·i, byte-for-byte the encoding of the real files) for the
released records, and the challenge answer files ``event-1-answers`` (class per withheld record) and
``event-2-answers`` (per-minute labels) in the real text layout, plus ``RECORDS`` and ``list``.

The ECG carries what ECG apnea detectors use:

- cyclic variation of heart rate (CVHR): progressive bradycardia during each obstructive event and a
  tachycardic surge after its termination, repeating with 25–100 s cycles through an episode;
- ECG-derived respiration (EDR): breathing modulates the QRS amplitude and the baseline; the
  modulation nearly vanishes during an event and is exaggerated during the recovery breaths;
- apnea minutes come in runs clustered through the night, with severity set by the record class
  (A: 30–60 % apnea minutes, B: 5–15 %, C: under 2 %).

Confounders keep the task from being trivial: spontaneous arousals (isolated heart-rate surges with
a sigh) during normal breathing, hypopneas with residual breathing, LF and VLF heart-rate
variability, ectopic beats, baseline wander, EMG bursts and a few QRS detection errors, as in the
real ``.qrs`` files (machine-generated and unaudited). Physiological confounders make the classes
overlap as in real recordings, where feature-based classifiers reach minute accuracy ~0.85-0.90:

- the heart-rate response varies from event to event (log-normal factor per event) and is weaker
  after hypopneas, so some events barely cycle the heart rate, on top of the record's own
  bradycardia and surge sizes (3x range between subjects: blunted autonomic responsiveness);
- periodic limb movements in sleep, in half of the records: clusters of 5-30 minutes of normal
  breathing with a 5-15 bpm surge every 20-40 s and no breathing change, a cyclic heart rate that
  is not apnea (the classic false positive of heart-rate detectors);
- REM sleep every ~90 minutes, whose phasic bursts speed or slow the heart irregularly.

The confounders draw from their own stream, so the event timeline and the labels are those drawn
before they were added. On the default plan (8 released + 4 withheld records of 240 minutes) the
classical peer (HRV + CVHR + EDR, logistic regression) scores minute accuracy 0.82-0.93 and AUROC
0.90-0.97 over seeds 0-2 (majority rate 0.73-0.78); apnea minutes still carry ~10x the normal
minutes' CVHR-band power. Ectopic beats come at a rate drawn per record
(log-normal: most records 0–60 per hour, a few hundreds): premature ventricular contractions at
55–82 % of the running RR with a fully compensatory pause and a wide (~120–160 ms), large QRS
without P wave and with a discordant T; premature atrial contractions with a normal QRS after an
ectopic P wave and a non-compensatory pause (the sinus node is reset). Like the real annotator's,
their ``.qrs`` label is ``N``; :attr:`SyntheticApneaRecord.beat_symbols` knows which they are.

A record is made in three steps, each in its own module:

- :mod:`~sleepbench.tasks.apnea_ecg.synth_physiology`: the record's constants (severity, heart
  rate and breathing behaviour, beat morphology, noise levels, ectopy);
- :mod:`~sleepbench.tasks.apnea_ecg.synth_events`: the event timeline (runs of apnea minutes,
  event/recovery cycles, minute labels, arousals outside episodes, which beats are premature);
- :mod:`~sleepbench.tasks.apnea_ecg.synth_ecg`: the ECG that realises it and the R-peak
  detections.

This module plans the database (record names and classes) and writes the files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import wfdb

from sleepbench.tasks.apnea_ecg.synth_ecg import FS_HZ, SAMPLES_PER_MINUTE, synth_ecg
from sleepbench.tasks.apnea_ecg.synth_events import (
    BEAT_SYMBOLS,
    MINUTE_S,
    add_confounder_surges,
    draw_apnea_runs,
    draw_arousals,
    draw_cycles,
    label_minutes,
    scale_cycles,
)
from sleepbench.tasks.apnea_ecg.synth_physiology import (
    APNEA_FRACTION_RANGE,
    confounder_rng,
    draw_physiology,
    ectopy_rng,
)

__all__ = [
    "ADC_GAIN_PER_MV",
    "APNEA_FRACTION_RANGE",
    "FS_HZ",
    "SAMPLES_PER_MINUTE",
    "SyntheticApneaRecord",
    "allocate_classes",
    "format_event1_answers",
    "format_event2_answers",
    "record_plan",
    "simulate_apnea_ecg_record",
    "write_apn",
    "write_synthetic_apnea_ecg",
]

#: Real headers: ``a01.dat 16 200 12 0 ...`` (200 adu/mV, 12-bit resolution, ADC zero 0).
ADC_GAIN_PER_MV: Final = 200
_ADC_RESOLUTION_BITS: Final = 12
_ADC_MIN, _ADC_MAX = -(2 ** (_ADC_RESOLUTION_BITS - 1)), 2 ** (_ADC_RESOLUTION_BITS - 1) - 1

# The real learning set has 20 A, 5 B and 10 C records; the withheld set has the same mix.
_CLASS_WEIGHTS: Final = {"A": 20, "B": 5, "C": 10}


@dataclass(frozen=True)
class SyntheticApneaRecord:
    """One simulated Apnea-ECG record with its ground truth.

    Attributes:
        name: record name (``a01``, ``x03``...).
        apnea_class: ``A`` (apnea), ``B`` (borderline) or ``C`` (control).
        ecg_mv: ECG in mV at :data:`FS_HZ`, float32, ``minutes * 6000`` samples.
        minute_labels: one ``A``/``N`` character per minute (``A`` when most of the minute lies
            inside an apnea episode).
        qrs_samples: detected R peaks (sample indices, int64, with the few detection errors).
        beat_times_s: true R-peak times in seconds.
        event_intervals_s: ``(n, 2)`` onset and end, in seconds, of each apnea/hypopnea event.
        recovery_intervals_s: ``(n, 2)`` the recovery breathing after each event, in seconds.
        beat_symbols: kind of each true beat, aligned with ``beat_times_s``: ``N`` sinus, ``V``
            premature ventricular, ``A`` premature atrial (MIT-BIH codes; the ``.qrs`` file
            labels them all ``N``).
    """

    name: str
    apnea_class: str
    ecg_mv: np.ndarray
    minute_labels: str
    qrs_samples: np.ndarray
    beat_times_s: np.ndarray
    event_intervals_s: np.ndarray
    recovery_intervals_s: np.ndarray
    beat_symbols: np.ndarray

    @property
    def apnea_minutes(self) -> int:
        """Number of minutes labelled ``A``."""
        return self.minute_labels.count("A")

    @property
    def pvc_samples(self) -> np.ndarray:
        """Samples (int64) of the premature ventricular beats' true R times."""
        return np.rint(self.beat_times_s[self.beat_symbols == "V"] * FS_HZ).astype(np.int64)

    @property
    def pac_samples(self) -> np.ndarray:
        """Samples (int64) of the premature atrial beats' true R times."""
        return np.rint(self.beat_times_s[self.beat_symbols == "A"] * FS_HZ).astype(np.int64)


def allocate_classes(n: int) -> dict[str, int]:
    """Split ``n`` records over classes A/B/C in the real database's 20:5:10 proportion.

    Largest-remainder rounding; every class gets at least one record when ``n >= 3``.

    Args:
        n: number of records (>= 0).

    Returns:
        ``{"A": n_a, "B": n_b, "C": n_c}`` summing to ``n``.
    """
    if n < 0:
        raise ValueError(f"number of records must be >= 0, got {n}")
    classes = list(_CLASS_WEIGHTS)
    raw = (
        np.array([_CLASS_WEIGHTS[c] for c in classes], dtype=float)
        * n
        / sum(_CLASS_WEIGHTS.values())
    )
    counts = np.floor(raw).astype(int)
    if n >= len(classes):
        counts = np.maximum(counts, 1)
    for i in np.argsort(-(raw - counts), kind="stable")[: n - int(counts.sum())]:
        counts[i] += 1
    return {c: int(k) for c, k in zip(classes, counts)}


def record_plan(n_released: int, n_withheld: int, seed: int = 0) -> list[tuple[str, str]]:
    """Record names and classes, released (``a01``.., ``b01``.., ``c01``..) then withheld (``x01``..).

    As in the real database, the class of a withheld record is not readable from its name: the
    ``x`` records get a shuffled A/B/C mix (seeded by ``seed``).

    Args:
        n_released: number of released (labelled) records.
        n_withheld: number of withheld test records.
        seed: seed of the withheld-class shuffle.

    Returns:
        ``[(name, class), ...]`` in file order.
    """
    plan = [
        (f"{cls.lower()}{i + 1:02d}", cls)
        for cls, k in allocate_classes(n_released).items()
        for i in range(k)
    ]
    withheld = [cls for cls, k in allocate_classes(n_withheld).items() for _ in range(k)]
    order = np.random.default_rng([seed, 0x78]).permutation(len(withheld))
    plan += [(f"x{i + 1:02d}", withheld[j]) for i, j in enumerate(order)]
    return plan


def simulate_apnea_ecg_record(
    name: str, apnea_class: str, minutes: int, rng: np.random.Generator
) -> SyntheticApneaRecord:
    """Simulate one night of single-lead ECG with clustered obstructive apnea episodes.

    Args:
        name: record name stored in the result.
        apnea_class: ``A``, ``B`` or ``C``; sets the share of apnea minutes
            (:data:`APNEA_FRACTION_RANGE`).
        minutes: record length in minutes (the ECG has ``minutes * 6000`` samples at 100 Hz).
        rng: source of randomness; a fresh generator from the same seed gives the same record
            (the ectopic beats come from a child of its seed sequence,
            :func:`~sleepbench.tasks.apnea_ecg.synth_physiology.ectopy_rng`).

    Returns:
        The ECG (mV), per-minute labels, R-peak detections, event timing and beat kinds.
    """
    if apnea_class not in APNEA_FRACTION_RANGE:
        raise ValueError(f"apnea_class must be one of A, B, C, got {apnea_class!r}")
    if minutes < 1:
        raise ValueError(f"minutes must be >= 1, got {minutes}")
    # One generator feeds every step in a fixed order, so a record depends only on its seed. The
    # ectopic beats and the confounders draw from child streams of the same seed: the event
    # timeline, and with it the minute labels, is drawn exactly as it was before they were added.
    ectopy, confounders = ectopy_rng(rng), confounder_rng(rng)
    phys = draw_physiology(rng, apnea_class, ectopy, confounders)
    total_s = minutes * MINUTE_S
    runs = draw_apnea_runs(rng, minutes, apnea_class, phys)
    cycles = draw_cycles(rng, runs, total_s, phys)
    arousals = draw_arousals(rng, cycles, total_s, phys)
    # The heart rate sees blunted events and more surges; the timeline (and labels) stays as drawn.
    heart_cycles = scale_cycles(confounders, cycles, phys)
    arousals = add_confounder_surges(confounders, arousals, cycles, total_s, phys)
    signal = synth_ecg(rng, heart_cycles, arousals, phys, minutes, ectopy)
    return SyntheticApneaRecord(
        name=name,
        apnea_class=apnea_class,
        ecg_mv=signal.ecg_mv.astype(np.float32),
        minute_labels=label_minutes(cycles, minutes),
        qrs_samples=signal.qrs_samples,
        beat_times_s=signal.beat_times_s,
        event_intervals_s=np.stack([cycles.start, cycles.event_end], axis=1),
        recovery_intervals_s=np.stack([cycles.event_end, cycles.end], axis=1),
        beat_symbols=BEAT_SYMBOLS[signal.beat_kinds],
    )


def write_apn(record_name: str, labels: str, directory: Path) -> None:
    """Write ``<record_name>.apn``: one ``A``/``N`` annotation per minute at sample 6000·i.

    Written without a stored sampling frequency, which gives exactly the bytes of the real files
    (``N`` = code 1 and ``A`` = code 8 of the standard WFDB table, each preceded by a SKIP).

    Args:
        record_name: record name (file stem).
        labels: one character per minute, ``A`` or ``N``.
        directory: folder to write into.
    """
    if set(labels) - {"A", "N"}:
        raise ValueError(f"labels must be A or N, got {sorted(set(labels) - {'A', 'N'})}")
    wfdb.wrann(
        record_name,
        "apn",
        np.arange(len(labels), dtype=np.int64) * SAMPLES_PER_MINUTE,
        symbol=list(labels),
        write_dir=str(directory),
    )


def _write_record(record: SyntheticApneaRecord, directory: Path, released: bool) -> None:
    """Write ``.hea``/``.dat`` (mV quantised at 200 adu/mV, clipped to 12 bits) and ``.qrs``,
    plus ``.apn`` for a released record."""
    digital = np.clip(np.rint(record.ecg_mv * ADC_GAIN_PER_MV), _ADC_MIN, _ADC_MAX).astype(np.int64)
    header = wfdb.Record(
        record_name=record.name,
        n_sig=1,
        fs=FS_HZ,
        sig_len=digital.size,
        file_name=[f"{record.name}.dat"],
        fmt=["16"],
        adc_gain=[ADC_GAIN_PER_MV],
        baseline=[0],
        units=["mV"],
        adc_res=[_ADC_RESOLUTION_BITS],
        adc_zero=[0],
        block_size=[0],
        sig_name=["ECG"],
        d_signal=digital[:, None],
    )
    header.set_d_features(do_adc=False)  # init_value and checksum, as in the real headers
    header.wrsamp(write_dir=str(directory))
    wfdb.wrann(
        record.name,
        "qrs",
        record.qrs_samples,
        symbol=["N"] * record.qrs_samples.size,
        write_dir=str(directory),
    )
    if released:
        write_apn(record.name, record.minute_labels, directory)


def format_event1_answers(classes: Mapping[str, str]) -> str:
    """Text of ``event-1-answers``: one ``<record> <A|B|C>`` line per record."""
    return "".join(f"{name} {cls}\n" for name, cls in classes.items())


def format_event2_answers(labels: Mapping[str, str]) -> str:
    """Text of ``event-2-answers``: per record its name, then one line per hour.

    Each hour line is the hour index right-aligned in two columns, a space and up to 60 ``A``/``N``
    characters; a blank line follows every record (the real file's layout).
    """
    parts = []
    for name, minute_labels in labels.items():
        hours = [minute_labels[i : i + 60] for i in range(0, len(minute_labels), 60)]
        parts.append(f"{name}\n" + "".join(f"{h:2d} {row}\n" for h, row in enumerate(hours)) + "\n")
    return "".join(parts)


def write_synthetic_apnea_ecg(
    root: Path,
    n_released: int = 6,
    n_withheld: int = 4,
    minutes: int = 120,
    seed: int = 0,
) -> dict[str, dict[str, object]]:
    """Write a synthetic Apnea-ECG database into ``root`` (created if needed).

    Released records (``a01``.., ``b01``.., ``c01``..) get ``.hea``/``.dat``/``.qrs``/``.apn``;
    withheld records (``x01``..) get ``.hea``/``.dat``/``.qrs`` only, and their classes and
    per-minute labels go to ``event-1-answers`` and ``event-2-answers``. ``RECORDS`` and ``list``
    name every record, one per line. Each record's signal depends only on ``seed`` and its name.
    Files of the same names are overwritten; other files in ``root`` are left alone.

    Args:
        root: output folder.
        n_released: number of released (labelled) records, >= 1.
        n_withheld: number of withheld test records, >= 0.
        minutes: length of every record in minutes (6000 samples at 100 Hz each), >= 1.
        seed: random seed; the same arguments give byte-identical files.

    Returns:
        Manifest ``{record: {"class": "A"|"B"|"C", "apnea_minutes": int, "minutes": int}}``.
    """
    if n_released < 1:
        raise ValueError(f"n_released must be >= 1, got {n_released}")
    if n_withheld < 0:
        raise ValueError(f"n_withheld must be >= 0, got {n_withheld}")
    if minutes < 1:
        raise ValueError(f"minutes must be >= 1, got {minutes}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict[str, object]] = {}
    withheld_classes: dict[str, str] = {}
    withheld_labels: dict[str, str] = {}
    for name, cls in record_plan(n_released, n_withheld, seed):
        rng = np.random.default_rng([seed, ord(name[0]), int(name[1:])])
        record = simulate_apnea_ecg_record(name, cls, minutes, rng)
        released = not name.startswith("x")
        _write_record(record, root, released)
        if not released:
            withheld_classes[name] = cls
            withheld_labels[name] = record.minute_labels
        manifest[name] = {"class": cls, "apnea_minutes": record.apnea_minutes, "minutes": minutes}
    (root / "event-1-answers").write_text(format_event1_answers(withheld_classes))
    (root / "event-2-answers").write_text(format_event2_answers(withheld_labels))
    names = "".join(f"{name}\n" for name in manifest)
    (root / "RECORDS").write_text(names)
    (root / "list").write_text(names)
    return manifest
