"""Synthetic Apnea-ECG, per-record constants: severity, heart rate, breathing, morphology, noise.

Everything here is drawn once per record, before any event or signal exists, so records of the
same class still differ the way real subjects do (resting heart rate, how strongly an event
slows and an arousal speeds the heart, EDR gain and sign, noise levels, beat shape). The event
timeline is :mod:`~sleepbench.tasks.apnea_ecg.synth_events`, the ECG that realises it
:mod:`~sleepbench.tasks.apnea_ecg.synth_ecg`.

The ectopy constants (premature ventricular and atrial beat rates, coupling, the ventricular beat's
shape) come from a separate stream, :func:`ectopy_rng`, so adding them left every other draw, and
with it the event timeline and the sinus beats, as it was. The confounders (:class:`Confounders`:
how strongly the subject's heart rate answers an event, periodic limb movements, REM sleep) come
from another one, :func:`confounder_rng`, for the same reason: the event timeline and the minute
labels did not move when they were added.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

__all__ = [
    "APNEA_FRACTION_RANGE",
    "Confounders",
    "Ectopy",
    "Physiology",
    "confounder_rng",
    "draw_physiology",
    "ectopy_rng",
]

#: Share of apnea minutes per record class (C is half-open: strictly below 2 %).
APNEA_FRACTION_RANGE: Final[Mapping[str, tuple[float, float]]] = {
    "A": (0.30, 0.60),
    "B": (0.05, 0.15),
    "C": (0.0, 0.02),
}
# Spawn keys of the ectopy and confounder streams below the record's seed sequence.
_ECTOPY_KEY: Final = 0xEC70
_CONFOUNDER_KEY: Final = 0xC0F0


@dataclass(frozen=True)
class Ectopy:
    """Per-record premature beats (units in the names).

    Premature ventricular (``pvc_per_h``) and atrial (``pac_per_h``) beats per hour; the mean
    coupling of each (premature interval as a fraction of the running RR); the lengthening of the
    cycle after an atrial beat (fraction of RR: the pause is one RR plus this, shorter than
    compensatory); the gain of the ectopic P wave relative to the sinus P.
    """

    pvc_per_h: float
    pac_per_h: float
    pvc_coupling: float
    pac_coupling: float
    pac_reset_delay: float
    pac_p_gain: float
    # (3, 3): offset from the fiducial point (s), Gaussian width (s), amplitude (mV) of the main
    # QRS deflection, its opposite lobe and the T wave of a premature ventricular beat (one focus).
    pvc_morphology: np.ndarray


@dataclass(frozen=True)
class Confounders:
    """Per-record sources of heart-rate cycling that hides apnea or mimics it (units in the names).

    ``event_gain_sd`` (log-sd) varies the bradycardia and surge from event to event (depth of the
    obstruction, strength of the arousal), on top of the record's own sizes
    (:attr:`Physiology.brady_bpm`, :attr:`Physiology.surge_bpm`, which already span ~3x between
    subjects: age, autonomic neuropathy and beta-blockers blunt the cyclic variation). Periodic limb
    movements in sleep (PLMS, half of the records have none): ``plms_clusters_per_h`` clusters of
    5-30 minutes per hour, a movement every ``plms_period_s`` with a heart-rate surge of about
    ``plms_surge_bpm`` and no breathing change. REM sleep: periods every
    ``rem_cycle_min`` from ``rem_first_min`` on, in which phasic bursts (``rem_bursts_per_min``)
    speed or slow the heart by up to ``rem_bpm``, apnea or not.
    """

    event_gain_sd: float
    plms_clusters_per_h: float
    plms_period_s: float
    plms_surge_bpm: float
    rem_first_min: float
    rem_cycle_min: float
    rem_bursts_per_min: float
    rem_bpm: float


@dataclass(frozen=True)
class Physiology:
    """Per-record physiological constants (units in the names).

    ``apnea_fraction`` is the drawn share of apnea minutes, ``mean_run_min`` the mean length of a
    run of apnea minutes, ``cycle_s`` the typical event + recovery cycle. Heart rate: resting
    ``hr_bpm`` plus respiratory sinus arrhythmia, LF and VLF variability (``*_bpm``: amplitude of
    each), a fall of up to ``brady_bpm`` through an event and an alpha-shaped surge of
    ``surge_bpm`` peaking ``surge_peak_s`` after its end. Breathing: rate ``resp_hz``, share of
    hypopneas, amplitude gain of the recovery breaths, EDR gain (signed, relative QRS amplitude
    change per unit respiration) and the respiratory baseline shift. Noise: baseline wander,
    white noise, EMG bursts per hour and their amplitude; spontaneous arousals and trains of
    periodic limb movements per hour; breath-to-breath amplitude variability; ``ectopy``: the
    premature beats (:class:`Ectopy`); ``confounders``: :class:`Confounders`.
    """

    apnea_fraction: float
    mean_run_min: float
    cycle_s: float
    hr_bpm: float
    rsa_bpm: float
    lf_bpm: float
    vlf_bpm: float
    brady_bpm: float
    surge_bpm: float
    surge_peak_s: float
    resp_hz: float
    hypopnea_share: float
    recovery_gain: float
    edr_gain: float
    resp_baseline_mv: float
    wander_mv: float
    noise_mv: float
    emg_per_h: float
    emg_mv: float
    arousal_per_h: float
    plm_trains_per_h: float
    breath_variability: float
    # (5, 3): offset from R (s, at RR = 1 s), Gaussian width (s), amplitude (mV) of P, Q, R, S, T.
    morphology: np.ndarray
    ectopy: Ectopy
    confounders: Confounders


def _child_rng(rng: np.random.Generator, key: int) -> np.random.Generator:
    """A child of ``rng``'s seed sequence under spawn key ``key``, drawn without touching ``rng``.

    A pure function of the seed ``rng`` was made from (not of its state), so the child stream is as
    reproducible as the rest of the record while ``rng`` keeps its own sequence of draws.
    """
    seq = rng.bit_generator.seed_seq
    child = np.random.SeedSequence(
        seq.entropy, spawn_key=(*seq.spawn_key, key), pool_size=seq.pool_size
    )
    return np.random.default_rng(child)


def ectopy_rng(rng: np.random.Generator) -> np.random.Generator:
    """The record's ectopy stream (a child of ``rng``'s seed sequence, ``rng`` untouched)."""
    return _child_rng(rng, _ECTOPY_KEY)


def confounder_rng(rng: np.random.Generator) -> np.random.Generator:
    """The record's confounder stream (a child of ``rng``'s seed sequence, ``rng`` untouched)."""
    return _child_rng(rng, _CONFOUNDER_KEY)


def _draw_confounders(rng: np.random.Generator) -> Confounders:
    """A record's :class:`Confounders` (log-sd, per hour, s, bpm, min), from its own stream."""
    return Confounders(
        # A log-sd of 0.3-0.5: with the hypopneas' x0.6, one event in five moves the heart rate by
        # under half its typical amount (calibrated with the classical peer on seeds 0-2: minute
        # accuracy ~0.88, AUROC ~0.94 on average).
        event_gain_sd=rng.uniform(0.3, 0.5),
        # PLMS in half of the records (common in older and in apnoeic subjects alike), a cluster
        # every 2-5 hours; the surges are those of a limb movement with a cortical arousal.
        plms_clusters_per_h=rng.uniform(0.2, 0.45) if rng.random() < 0.5 else 0.0,
        plms_period_s=rng.uniform(20.0, 40.0),
        plms_surge_bpm=rng.uniform(5.0, 15.0),
        # REM every ~90 minutes after a first one 60-110 minutes in; its phasic bursts (eye
        # movements, twitches) come with irregular heart-rate swings of a few bpm.
        rem_first_min=rng.uniform(60.0, 110.0),
        rem_cycle_min=rng.uniform(80.0, 110.0),
        rem_bursts_per_min=rng.uniform(1.0, 3.0),
        rem_bpm=rng.uniform(3.0, 8.0),
    )


def _draw_ectopy(rng: np.random.Generator, r_mv: float) -> Ectopy:
    """A record's :class:`Ectopy` (per hour, fractions of RR, s, mV).

    Args:
        rng: the ectopy stream (:func:`ectopy_rng`).
        r_mv: amplitude of the sinus R wave (mV); a ventricular beat is larger.
    """
    # Hourly rates are log-normal across people: most records 0-60 per hour, a few with frequent
    # ectopy (hundreds per hour, as in bigeminy-prone patients), capped at ~10-15 % of beats.
    pvc_per_h = min(600.0, float(np.exp(rng.normal(np.log(8.0), 1.4))))
    pac_per_h = min(300.0, float(np.exp(rng.normal(np.log(4.0), 1.3))))
    # One ventricular focus per record: a wide (QRS ~120-160 ms), large main deflection whose
    # polarity depends on the focus and the lead, a smaller opposite lobe, and a T wave discordant
    # to the main deflection (repolarisation follows the abnormal depolarisation path).
    main = rng.choice([-1.0, 1.0], p=[0.4, 0.6]) * max(r_mv, 0.6) * rng.uniform(1.5, 2.5)
    pvc = np.array(
        [
            # ±2.5 widths of the main lobe span 120-160 ms.
            [0.0, rng.uniform(0.024, 0.032), main],
            [
                rng.choice([-1.0, 1.0]) * rng.uniform(0.045, 0.06),
                rng.uniform(0.014, 0.02),
                -rng.uniform(0.15, 0.35) * main,
            ],
            [rng.uniform(0.26, 0.34), rng.uniform(0.06, 0.08), -rng.uniform(0.25, 0.45) * main],
        ]
    )
    return Ectopy(
        pvc_per_h=pvc_per_h,
        pac_per_h=pac_per_h,
        pvc_coupling=rng.uniform(0.6, 0.75),
        pac_coupling=rng.uniform(0.5, 0.68),
        # The sinus node, reset by the atrial beat, fires again one cycle plus the conduction time
        # in and out of the node later: a pause longer than one RR, the two intervals adding up
        # to ~1.5-1.8 RR (less than compensatory).
        pac_reset_delay=rng.uniform(0.0, 0.08),
        # The ectopic P wave comes from elsewhere in the atria: smaller, flat or inverted.
        pac_p_gain=rng.uniform(-0.8, 0.8),
        pvc_morphology=pvc,
    )


def draw_physiology(
    rng: np.random.Generator,
    apnea_class: str,
    ectopy: np.random.Generator | None = None,
    confounders: np.random.Generator | None = None,
) -> Physiology:
    """Draw one record's constants.

    Args:
        rng: source of randomness (the draw order is part of the database's reproducibility).
        apnea_class: ``A``, ``B`` or ``C``; sets the range of ``apnea_fraction``
            (:data:`APNEA_FRACTION_RANGE`) and of ``mean_run_min`` (minutes).
        ectopy: stream of the ectopy constants; :func:`ectopy_rng` of ``rng`` when omitted.
        confounders: stream of the confounder constants; :func:`confounder_rng` of ``rng`` when
            omitted.

    Returns:
        The record's :class:`Physiology` (bpm, Hz, s, mV as named).
    """
    lo, hi = APNEA_FRACTION_RANGE[apnea_class]
    # ECGSYN-like template (McSharry et al. 2003) in the time domain, varied per record.
    base = np.array(
        [
            [-0.200, 0.025, rng.uniform(0.05, 0.20)],  # P
            [-0.040, 0.013, -rng.uniform(0.02, 0.15)],  # Q
            [0.000, 0.015, rng.uniform(0.5, 1.6)],  # R
            [0.040, 0.014, -rng.uniform(0.1, 0.6)],  # S
            [0.280, 0.055, rng.uniform(0.12, 0.45)],  # T
        ]
    )
    base[:, 0] *= rng.uniform(0.9, 1.1, 5)
    base[:, 1] *= rng.uniform(0.85, 1.2, 5)
    return Physiology(
        apnea_fraction=rng.uniform(lo, hi),
        mean_run_min={"A": rng.uniform(3.0, 8.0), "B": rng.uniform(1.2, 2.5), "C": 1.0}[
            apnea_class
        ],
        cycle_s=rng.uniform(30.0, 80.0),
        hr_bpm=rng.uniform(55.0, 78.0),
        rsa_bpm=rng.uniform(1.5, 4.0),
        lf_bpm=rng.uniform(1.0, 2.5),
        vlf_bpm=rng.uniform(1.5, 4.0),
        brady_bpm=rng.uniform(3.0, 8.0),
        surge_bpm=rng.uniform(6.0, 20.0),
        surge_peak_s=rng.uniform(4.0, 7.0),
        resp_hz=rng.uniform(0.2, 0.3),
        hypopnea_share=rng.uniform(0.2, 0.6),
        recovery_gain=rng.uniform(1.4, 2.2),
        # The sign of the EDR modulation depends on the lead axis relative to the chest.
        edr_gain=rng.choice([-1.0, 1.0]) * rng.uniform(0.10, 0.22),
        resp_baseline_mv=rng.uniform(0.02, 0.07),
        wander_mv=rng.uniform(0.04, 0.12),
        noise_mv=rng.uniform(0.005, 0.02),
        emg_per_h=rng.uniform(5.0, 20.0),
        emg_mv=rng.uniform(0.02, 0.06),
        arousal_per_h=rng.uniform(3.0, 10.0),
        plm_trains_per_h=rng.uniform(0.0, 1.5),
        breath_variability=rng.uniform(0.08, 0.2),
        morphology=base,
        ectopy=_draw_ectopy(ectopy_rng(rng) if ectopy is None else ectopy, float(base[2, 2])),
        confounders=_draw_confounders(confounder_rng(rng) if confounders is None else confounders),
    )
