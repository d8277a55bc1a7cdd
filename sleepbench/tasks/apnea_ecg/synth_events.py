"""Synthetic Apnea-ECG, the event timeline: apnea runs, event/recovery cycles, labels, arousals.

One record's timeline, before any signal exists:

- how many minutes are apnea minutes (the record class's share, within the challenge's class
  criteria, :func:`apnea_minute_count`), grouped into runs of consecutive minutes that cluster
  through the night (:func:`draw_apnea_runs`);
- each run becomes an episode of obstructive events, each followed by recovery breathing, with
  25–100 s cycles; some events are hypopneas with residual breathing (:func:`draw_cycles`);
- the per-minute labels follow from the episodes: ``A`` when most of the minute lies inside one
  (:func:`label_minutes`);
- heart-rate surges outside episodes: spontaneous arousals with a sigh and trains of periodic limb
  movements (:func:`draw_arousals`);
- confounders, from the record's own stream so that all of the above stays as it was: how strongly
  each event slows and speeds the heart (:func:`scale_cycles`: blunted in some subjects, weaker
  after hypopneas), clusters of periodic limb movements with cyclic surges and no apnea, and the
  phasic heart-rate swings of REM sleep (:func:`add_confounder_surges`);
- premature beats among the sinus beats, once those are laid out: ventricular beats with a
  compensatory pause and atrial beats that reset the sinus node (:func:`place_ectopic_beats`).

The ECG that realises the timeline is :mod:`~sleepbench.tasks.apnea_ecg.synth_ecg`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final, NamedTuple

import numpy as np

from sleepbench.tasks.apnea_ecg.synth_physiology import APNEA_FRACTION_RANGE, Physiology

__all__ = [
    "BEAT_SYMBOLS",
    "MINUTE_S",
    "PAC",
    "PVC",
    "SINUS",
    "Arousals",
    "Cycles",
    "add_confounder_surges",
    "apnea_minute_count",
    "draw_apnea_runs",
    "draw_arousals",
    "draw_cycles",
    "label_minutes",
    "place_ectopic_beats",
    "scale_cycles",
]

#: Length of one labelled minute in seconds.
MINUTE_S: Final = 60.0
# An episode edge is drawn within this many seconds of a minute boundary; below 30 s, so a minute
# is labelled A exactly when most of it lies inside an episode.
_EDGE_JITTER_S: Final = 12.0
#: Beat kinds: sinus, premature ventricular, premature atrial.
SINUS, PVC, PAC = 0, 1, 2
#: MIT-BIH annotation symbol of each beat kind (``N``, ``V``, ``A``), indexed by kind.
BEAT_SYMBOLS: Final = np.array(["N", "V", "A"])


@dataclass(frozen=True)
class Cycles:
    """Event/recovery cycles of a record, sorted and disjoint, one array entry per cycle.

    Attributes:
        start: event onset (s).
        event_end: event end = recovery onset (s).
        end: recovery end (s); the next cycle of the same episode starts here.
        depth: residual breathing amplitude during the event (0.03–0.15 apnea, 0.3–0.6 hypopnea).
        surge: height of the heart-rate surge after the event (bpm).
        brady: heart-rate fall reached at the end of the event (bpm).
    """

    start: np.ndarray
    event_end: np.ndarray
    end: np.ndarray
    depth: np.ndarray
    surge: np.ndarray
    brady: np.ndarray


class Arousals(NamedTuple):
    """Heart-rate surges outside apnea episodes.

    Attributes:
        onsets_s: surge onsets (s), spontaneous arousals, limb movements, then the confounders of
            :func:`add_confounder_surges`; unsorted.
        heights_bpm: surge heights (bpm, negative for a deceleration), one per onset.
        sigh_onsets_s: onsets (s) of the sighs that come with spontaneous arousals, sorted.
    """

    onsets_s: np.ndarray
    heights_bpm: np.ndarray
    sigh_onsets_s: np.ndarray


def apnea_minute_count(minutes: int, apnea_class: str, fraction: float) -> int:
    """Apnea minutes of a record: ``fraction`` of it, kept inside its class.

    Within the class's share (:data:`APNEA_FRACTION_RANGE`), the count also meets the challenge's
    class criteria whenever the record is long enough for them: C has fewer than 5 apnea minutes,
    B 5–99, A at least 100 (records shorter than a night cannot reach 100 at 60 %).

    Args:
        minutes: record length (min).
        apnea_class: ``A``, ``B`` or ``C``.
        fraction: drawn share of apnea minutes (0–1).

    Returns:
        Number of apnea minutes.
    """
    lo, hi = APNEA_FRACTION_RANGE[apnea_class]
    most = int(np.ceil(hi * minutes)) - 1 if apnea_class == "C" else int(np.floor(hi * minutes))
    least = {"A": 100, "B": 5, "C": 0}[apnea_class]
    count = int(round(fraction * minutes))
    if least <= most:
        count = max(count, least)
    if apnea_class == "C":
        count = min(count, most, 4)
    elif apnea_class == "B":
        count = min(count, 99)
    # A and B always carry at least one apnea minute, even in records of a few minutes.
    return int(np.clip(count, 0 if apnea_class == "C" else 1, minutes))


def draw_apnea_runs(
    rng: np.random.Generator, minutes: int, apnea_class: str, phys: Physiology
) -> list[tuple[int, int]]:
    """Runs of apnea minutes with the class's apnea share, clustered through the night.

    Args:
        rng: source of randomness.
        minutes: record length (min).
        apnea_class: ``A``, ``B`` or ``C``.
        phys: the record's constants (apnea share and mean run length in minutes).

    Returns:
        ``[(first, end), ...]`` minute indices, end exclusive, sorted, a normal minute between runs.
    """
    n_apnea = apnea_minute_count(minutes, apnea_class, phys.apnea_fraction)
    if n_apnea == 0:
        return []
    lengths: list[int] = []
    while sum(lengths) < n_apnea:
        lengths.append(min(int(rng.geometric(1.0 / phys.mean_run_min)), n_apnea - sum(lengths)))
    n_normal = minutes - n_apnea
    while len(lengths) > 1 and len(lengths) - 1 > n_normal:  # runs need a normal minute between
        lengths[-2] += lengths.pop()
    # A sparse Dirichlet makes most gaps short and a few long: runs cluster, as in real nights.
    gaps = rng.multinomial(
        n_normal - (len(lengths) - 1), rng.dirichlet(np.full(len(lengths) + 1, 0.3))
    )
    gaps[1:-1] += 1
    runs, start = [], 0
    for gap, length in zip(gaps, lengths):
        start += int(gap)
        runs.append((start, start + length))
        start += length
    return runs


def draw_cycles(
    rng: np.random.Generator, runs: list[tuple[int, int]], total_s: float, phys: Physiology
) -> Cycles:
    """Event/recovery cycles filling each episode.

    Each run of apnea minutes becomes an episode whose edges lie within 12 s of the run's minute
    boundaries; it is cut into cycles of 25–100 s, the event taking 55–75 % of each.

    Args:
        rng: source of randomness.
        runs: runs of apnea minutes from :func:`draw_apnea_runs`.
        total_s: record length (s).
        phys: the record's constants (cycle length, hypopnea share, surge and bradycardia sizes).

    Returns:
        The cycles (times in s, depths, heart-rate changes in bpm).
    """
    starts, ends = [], []
    for first, end in runs:
        s0 = max(0.0, first * MINUTE_S + rng.uniform(-_EDGE_JITTER_S, _EDGE_JITTER_S))
        s1 = min(total_s, end * MINUTE_S + rng.uniform(-_EDGE_JITTER_S, _EDGE_JITTER_S))
        length = s1 - s0
        cycle = float(np.clip(phys.cycle_s * rng.uniform(0.8, 1.25), 25.0, 100.0))
        n = int(np.clip(round(length / cycle), np.ceil(length / 100.0), max(1, length // 25.0)))
        weights = rng.uniform(0.85, 1.15, n)
        bounds = s0 + length * np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
        starts.append(bounds[:-1])
        ends.append(bounds[1:])
    start = np.concatenate(starts) if starts else np.zeros(0)
    end = np.concatenate(ends) if ends else np.zeros(0)
    n = start.size
    event_end = start + (end - start) * rng.uniform(0.55, 0.75, n)
    hypopnea = rng.random(n) < phys.hypopnea_share
    depth = np.where(hypopnea, rng.uniform(0.3, 0.6, n), rng.uniform(0.03, 0.15, n))
    # Hypopneas end with a weaker arousal, hence a smaller surge.
    surge = phys.surge_bpm * rng.uniform(0.7, 1.3, n) * np.where(hypopnea, 0.7, 1.0)
    brady = phys.brady_bpm * rng.uniform(0.7, 1.3, n)
    return Cycles(start=start, event_end=event_end, end=end, depth=depth, surge=surge, brady=brady)


def label_minutes(cycles: Cycles, minutes: int) -> str:
    """Per-minute labels: ``A`` for minutes more than half covered by an episode, else ``N``.

    An episode is a run of consecutive event/recovery cycles, so its coverage is the sum of its
    cycles' coverage. Minute ``i`` covers seconds ``[60 i, 60 (i + 1))``.

    Args:
        cycles: the record's cycles.
        minutes: record length (min).

    Returns:
        One ``A``/``N`` character per minute.
    """
    edges = np.arange(minutes + 1) * MINUTE_S
    covered = np.zeros(minutes)
    for s0, s1 in zip(cycles.start, cycles.end):
        covered += np.clip(np.minimum(edges[1:], s1) - np.maximum(edges[:-1], s0), 0.0, None)
    return "".join(np.where(covered > MINUTE_S / 2, "A", "N"))


def _far_from(times: np.ndarray, start: np.ndarray, end: np.ndarray, margin_s: float) -> np.ndarray:
    """Mask of times at least ``margin_s`` away from every interval ``[start, end)``."""
    if start.size == 0:
        return np.ones(times.shape, dtype=bool)
    gap = np.maximum(start[None, :] - times[:, None], times[:, None] - end[None, :])
    return gap.min(axis=1) >= margin_s


def draw_arousals(
    rng: np.random.Generator, cycles: Cycles, total_s: float, phys: Physiology
) -> Arousals:
    """Heart-rate surges outside apnea episodes (at least 30 s away from every cycle).

    Spontaneous arousals come alone, with a sigh. Periodic limb movements come in trains of
    20–40 s cycles for 2–6 minutes with no breathing change: a cyclic heart rate that is not apnea,
    the classic false positive of heart-rate-only detectors.

    Args:
        rng: source of randomness.
        cycles: the record's cycles.
        total_s: record length (s).
        phys: the record's constants (arousal and limb-movement train rates per hour, surge size).

    Returns:
        Onsets (s), heights (bpm) and sigh onsets (s).
    """
    hours = total_s / 3600.0
    spontaneous = rng.uniform(0.0, total_s, rng.poisson(phys.arousal_per_h * hours))
    trains = []
    for _ in range(rng.poisson(phys.plm_trains_per_h * hours)):
        start, period = rng.uniform(0.0, total_s), rng.uniform(20.0, 40.0)
        n = int(rng.uniform(120.0, 360.0) // period)
        trains.append(start + period * np.arange(n) + rng.uniform(-2.0, 2.0, n))
    plm = np.concatenate([np.zeros(0), *trains])
    spontaneous = spontaneous[_far_from(spontaneous, cycles.start, cycles.end, 30.0)]
    plm = plm[(plm < total_s) & _far_from(plm, cycles.start, cycles.end, 30.0)]
    onsets = np.concatenate([spontaneous, plm])
    heights = phys.surge_bpm * np.concatenate(
        [rng.uniform(0.3, 0.8, spontaneous.size), rng.uniform(0.3, 0.7, plm.size)]
    )
    return Arousals(onsets, heights, np.sort(spontaneous))


def scale_cycles(rng: np.random.Generator, cycles: Cycles, phys: Physiology) -> Cycles:
    """The cycles with each event's bradycardia and surge scaled; timing and depth unchanged.

    A log-normal factor per event (mean 1, log-sd :attr:`Confounders.event_gain_sd`): obstructions
    and the arousals that end them differ in strength, so some events barely move the heart rate.
    Hypopneas, with residual breathing and a weaker arousal, move it less again (x0.6).

    Args:
        rng: the confounder stream
            (:func:`~sleepbench.tasks.apnea_ecg.synth_physiology.confounder_rng`).
        cycles: the record's cycles (bpm).
        phys: the record's constants (:attr:`Physiology.confounders`).
    """
    conf, n = phys.confounders, cycles.start.size
    sd = conf.event_gain_sd
    gain = np.exp(sd * rng.standard_normal(n) - 0.5 * sd**2)
    gain *= np.where(cycles.depth >= 0.3, 0.6, 1.0)
    return replace(cycles, surge=cycles.surge * gain, brady=cycles.brady * gain)


def add_confounder_surges(
    rng: np.random.Generator, arousals: Arousals, cycles: Cycles, total_s: float, phys: Physiology
) -> Arousals:
    """``arousals`` plus the heart-rate swings of limb-movement clusters and of REM sleep.

    Periodic limb movements come in clusters of 5-30 minutes, one movement every
    :attr:`Confounders.plms_period_s` (20-40 s, ±10 %), each with a surge and no breathing change,
    at least 30 s from any apnea episode: cyclic heart rate in normal minutes, the classic false
    positive of heart-rate apnea detectors. REM periods come every 80-110 minutes, 10-20 minutes
    long plus 5 per earlier period (REM grows through the night); their phasic bursts (Poisson)
    speed the heart or, less often, slow it, inside apnea episodes or not.

    Args:
        rng: the confounder stream, continued after :func:`scale_cycles`.
        arousals: the record's arousals (:func:`draw_arousals`).
        cycles: the record's cycles (s).
        total_s: record length (s).
        phys: the record's constants (:attr:`Physiology.confounders`).

    Returns:
        The arousals with the new onsets (s) and heights (bpm) appended; sighs unchanged.
    """
    conf = phys.confounders
    clusters = [np.zeros(0)]
    for _ in range(rng.poisson(conf.plms_clusters_per_h * total_s / 3600.0)):
        start, length = rng.uniform(0.0, total_s), rng.uniform(300.0, 1800.0)
        period = conf.plms_period_s * rng.uniform(0.9, 1.1)
        n = int(length // period)
        clusters.append(start + period * np.arange(n) + rng.uniform(-2.0, 2.0, n))
    plm = np.concatenate(clusters)
    plm = plm[(plm < total_s) & _far_from(plm, cycles.start, cycles.end, 30.0)]
    plm_bpm = conf.plms_surge_bpm * rng.uniform(0.7, 1.3, plm.size)
    bursts = [np.zeros(0)]
    starts = np.arange(conf.rem_first_min, total_s / MINUTE_S, conf.rem_cycle_min) * MINUTE_S
    for i, start in enumerate(starts):
        length = (rng.uniform(10.0, 20.0) + 5.0 * i) * MINUTE_S
        n = rng.poisson(conf.rem_bursts_per_min * length / MINUTE_S)
        bursts.append(rng.uniform(start, min(start + length, total_s), n))
    rem = np.concatenate(bursts)
    rem_bpm = conf.rem_bpm * rng.uniform(-0.5, 1.0, rem.size)
    return Arousals(
        np.concatenate([arousals.onsets_s, plm, rem]),
        np.concatenate([arousals.heights_bpm, plm_bpm, rem_bpm]),
        arousals.sigh_onsets_s,
    )


def place_ectopic_beats(
    rng: np.random.Generator, phase: np.ndarray, end_phase: float, hours: float, phys: Physiology
) -> tuple[np.ndarray, np.ndarray]:
    """Turn some sinus beats into premature ventricular and atrial beats.

    Beats live in phase units: the sinus node fires whenever the integrated heart rate (in beats)
    crosses ``k + u``, so an interval of 1 is the running RR whatever the rate does. A ventricular
    beat comes at a coupling of 0.55-0.82 of the running RR and leaves the sinus node alone: its
    next sinus beat is blocked and the one after comes on time, a fully compensatory pause (the
    two intervals add up to two RR). An atrial beat resets the sinus node, which fires one RR plus
    :attr:`Ectopy.pac_reset_delay` later and keeps that phase: every later beat moves earlier,
    the pause is not compensatory, and a few sinus beats fit in at the end of the record. Ectopic
    beats are isolated (no couplets); bigeminy (every other beat) can occur.

    Args:
        rng: the ectopy stream (:func:`~sleepbench.tasks.apnea_ecg.synth_physiology.ectopy_rng`).
        phase: sinus beat phases, increasing by 1 (beats).
        end_phase: phase at the end of the record (beats); no beat at or after it.
        hours: record length (h), to turn the hourly rates into counts.
        phys: the record's constants (:attr:`Physiology.ectopy`).

    Returns:
        Beat phases (beats, increasing) and the kind of each beat (:data:`SINUS`, :data:`PVC`,
        :data:`PAC`, int8).
    """
    ect = phys.ectopy
    n = phase.size
    n_pvc, n_pac = rng.poisson(ect.pvc_per_h * hours), rng.poisson(ect.pac_per_h * hours)
    # Candidates have a sinus beat on either side; the later draws give way to the earlier.
    chosen = rng.choice(max(n - 2, 0), size=min(n_pvc + n_pac, max(n - 2, 0)), replace=False) + 1
    kind = np.zeros(n, dtype=np.int8)
    for rank, i in enumerate(chosen):
        if not kind[i - 1 : i + 2].any():
            kind[i] = PVC if rank < n_pvc else PAC
    pvc, pac = np.flatnonzero(kind == PVC), np.flatnonzero(kind == PAC)
    pvc_coupling = np.clip(ect.pvc_coupling + 0.03 * rng.standard_normal(pvc.size), 0.55, 0.82)
    pac_coupling = np.clip(ect.pac_coupling + 0.04 * rng.standard_normal(pac.size), 0.5, 0.85)
    reset = np.clip(ect.pac_reset_delay * rng.uniform(0.5, 1.5, pac.size), 0.0, 1.0 - pac_coupling)
    # Each atrial reset moves every later beat by coupling + delay - 1 (<= 0) beats.
    shift = np.zeros(n)
    np.add.at(shift, pac + 1, pac_coupling + reset - 1.0)
    out = phase + np.cumsum(shift)
    out[pvc] = out[pvc - 1] + pvc_coupling
    out[pac] = out[pac - 1] + pac_coupling
    if n:
        extra = out[-1] + np.arange(1, int(np.ceil(end_phase - out[-1])) + 1)
        out = np.concatenate([out, extra[extra < end_phase]])
        kind = np.concatenate([kind, np.full(out.size - n, SINUS, dtype=np.int8)])
    return out, kind
