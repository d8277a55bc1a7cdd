"""Synthetic Apnea-ECG, per-record constants: severity, heart rate, breathing, morphology, noise.

Everything here is drawn once per record, before any event or signal exists, so records of the
same class still differ the way real subjects do (resting heart rate, how strongly an event
slows and an arousal speeds the heart, EDR gain and sign, noise levels, beat shape). The event
timeline is :mod:`~sleepbench.tasks.apnea_ecg.synth_events`, the ECG that realises it
:mod:`~sleepbench.tasks.apnea_ecg.synth_ecg`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

__all__ = ["APNEA_FRACTION_RANGE", "Physiology", "draw_physiology"]

#: Share of apnea minutes per record class (C is half-open: strictly below 2 %).
APNEA_FRACTION_RANGE: Final[Mapping[str, tuple[float, float]]] = {
    "A": (0.30, 0.60),
    "B": (0.05, 0.15),
    "C": (0.0, 0.02),
}


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
    periodic limb movements per hour; breath-to-breath amplitude variability.
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


def draw_physiology(rng: np.random.Generator, apnea_class: str) -> Physiology:
    """Draw one record's constants.

    Args:
        rng: source of randomness (the draw order is part of the database's reproducibility).
        apnea_class: ``A``, ``B`` or ``C``; sets the range of ``apnea_fraction``
            (:data:`APNEA_FRACTION_RANGE`) and of ``mean_run_min`` (minutes).

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
    )
