"""Synthetic SHHS, part 1: who sleeps how, and which respiratory events the scorer marks.

One night's *plan*, before any signal exists:

- a :class:`Phenotype` per participant: awake SpO2 baseline (90-99 %), how deeply they desaturate
  for a given event (``desat_gain``), how many of their hypopneas end in an arousal without a
  3 % desaturation (``arousal_share``), how often they desaturate with no scored event, their
  sleep efficiency and how often the oximeter probe drops out. These vary *within* each severity
  class, so SpO2 and AHI disagree the way they do in real cohorts;
- a target AHI per severity class that covers the whole class range, a share of it close to the
  5 / 15 / 30 cut-offs (:func:`draw_target_ahi`); the realised AHI (from the scored events, a
  Poisson count per hour of sleep) then lands on either side of a cut-off now and then;
- stages from :func:`sleepbench.tasks.sleep_edf.synth.synth_hypnogram` with long wake periods
  added until the night's sleep efficiency is reached
  (:mod:`~sleepbench.tasks.shhs_spo2.synth_stages`): a long sleep latency, wake after sleep
  onset in blocks of 5-60 min, early-morning awakening. The AHI is per
  hour of *sleep*, the SpO2 recording covers the whole night;
- apneas and hypopneas of 10-60 s, only in sleep, at least 40 s apart, more in REM and fewer in
  slow-wave sleep (:func:`plan_events`), each with its intended desaturation (depth, fall start,
  nadir 18-28 s after the event end, 2-8 s at the nadir, resaturation time constant 4-6 s) and
  whether an arousal ends it.

The SpO2 waveform that realises the plan is :mod:`sleepbench.tasks.shhs_spo2.synth_spo2`; the
files are written by :mod:`sleepbench.tasks.shhs_spo2.synth`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from sleepbench.recording import Event
from sleepbench.tasks.shhs_spo2.synth_stages import sleep_runs
from sleepbench.tasks.sleep_edf.synth import EPOCH_S

__all__ = [
    "CLASS_AHI",
    "EVENT_KINDS",
    "NEAR_CUT_REL",
    "NEAR_CUT_SHARE",
    "NEAR_15_WEIGHT",
    "SEVERITY_CUTS",
    "EventPlan",
    "Phenotype",
    "draw_target_ahi",
    "plan_events",
    "respiratory_and_arousal_events",
    "severity_class",
    "spontaneous_arousals",
]

#: AHI cut-offs (events/h) between normal, mild, moderate and severe.
SEVERITY_CUTS: tuple[float, float, float] = (5.0, 15.0, 30.0)
#: Target AHI range (events/h, 3 %-or-arousal rule) per severity class: contiguous, no gap at the
#: cut-offs.
CLASS_AHI: tuple[tuple[float, float], ...] = ((0.5, 5.0), (5.0, 15.0), (15.0, 30.0), (30.0, 60.0))
#: Share of nights whose target AHI lies within ``NEAR_CUT_REL`` (relative) of a cut-off of their
#: class; the rest are log-uniform over the class range.
NEAR_CUT_SHARE = 0.35
NEAR_CUT_REL = 0.2
#: How much more often a mild or moderate night lies near 15 (the cut-off that decides
#: treatment) than near its other cut-off (5 or 30).
NEAR_15_WEIGHT = 2.0
#: Respiratory event design groups: counted by the 3 %-or-arousal rule (``apnea``,
#: ``hypopnea_4`` (>= 4 % intended), ``hypopnea_3`` (3 %), ``hypopnea_arousal`` (< 3 %, arousal))
#: or by neither rule (``hypopnea_none``: < 3 %, no arousal).
EVENT_KINDS = ("apnea", "hypopnea_4", "hypopnea_3", "hypopnea_arousal", "hypopnea_none")

_MIN_GAP_S = 40.0  # between one event's end and the next one's onset
_RUN_MARGIN_S = 10.0  # no event in the first seconds of a sleep run (>= 30 s wake + 10 s = gap)
# Stage weights for where events fall (REM-predominant, rare in slow-wave sleep).
_EVENT_WEIGHT = {"1": 1.0, "2": 1.0, "3": 0.4, "4": 0.3, "R": 1.8}


def severity_class(ahi: float) -> int:
    """0 normal (< 5), 1 mild (5-15), 2 moderate (15-30), 3 severe (>= 30 events/h)."""
    return int(np.searchsorted(SEVERITY_CUTS, ahi, side="right"))


def draw_target_ahi(
    rng: np.random.Generator, cls: int, near_share: float = NEAR_CUT_SHARE
) -> float:
    """A target AHI (events/h) for severity class ``cls``.

    With probability ``near_share`` it lies within :data:`NEAR_CUT_REL` of one of the class's own
    cut-offs (inside the class; mild and moderate nights :data:`NEAR_15_WEIGHT` times as often
    near 15, the cut-off that decides treatment, as near 5 or 30), otherwise log-uniform over
    :data:`CLASS_AHI` ``[cls]``.
    """
    lo, hi = CLASS_AHI[cls]
    if rng.random() < near_share:
        cuts = [c for c in SEVERITY_CUTS if c in (lo, hi)]
        weights = np.array([NEAR_15_WEIGHT if c == 15.0 else 1.0 for c in cuts])
        cut = float(cuts[int(rng.choice(len(cuts), p=weights / weights.sum()))])
        if cut == lo:
            return float(rng.uniform(cut, cut * (1.0 + NEAR_CUT_REL)))
        return float(rng.uniform(cut * (1.0 - NEAR_CUT_REL), cut))
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


# --------------------------------------------------------------------------------------------
# participants


@dataclass(frozen=True)
class Phenotype:
    """What makes one participant's SpO2 differ from another's at the same AHI.

    Args:
        baseline: awake SpO2 baseline in %, 90-99.
        desat_gain: multiplier on apnea desaturation depths, and raising the share of deeper
            hypopnea desaturations (lung volume, obesity, the steeper dissociation curve at a
            low baseline); 0.3-2.5.
        arousal_share: share of the counted hypopneas that end in an arousal with a desaturation
            below 3 % (counted by ``ahi_a0h3a`` only, invisible to oximetry);
            0-0.95, mean 0.41 whatever the severity: the spread keeps the ODI from ranking
            nights near AHI 15 perfectly.
        unscored_desat_per_h: desaturations of 3-7 % with no scored event, per hour of recording
            (wake, REM hypoventilation, missed events); 0-20, mean 4.2.
        minor_dip_per_h: 1-2 % dips with no scored event per hour of recording; 0-30, mean 6,
            independent of severity.
        sleep_efficiency: share of the recording staged asleep (0.4-0.97).
        apnea_shift: added to the share of apneas among the counted events (which grows with
            severity from 0.25 to 0.45).
        hyp4_share: share of the desaturating counted hypopneas that drop by >= 4 % (the rest
            drop by about 3 %, which a 3 % ODI often misses).
        dropout_per_h: probe-off dropouts per hour of recording.
        motion_per_h: motion artefacts (plausible-looking abrupt SpO2 drops) per hour of wake.
    """

    baseline: float = 96.0
    desat_gain: float = 1.0
    arousal_share: float = 0.3
    unscored_desat_per_h: float = 2.0
    minor_dip_per_h: float = 6.0
    sleep_efficiency: float = 0.8
    apnea_shift: float = 0.0
    hyp4_share: float = 0.65
    dropout_per_h: float = 0.3
    motion_per_h: float = 1.5

    @classmethod
    def sample(cls, rng: np.random.Generator, severity: int = 1) -> Phenotype:
        """A participant of severity class ``severity`` (0-3): lower baselines and deeper
        desaturations with severity (obesity), more arousal-terminated hypopneas in milder
        disease; every trait overlaps between classes."""
        baseline = float(np.clip(rng.normal(96.3 - 0.6 * severity, 1.9), 90.0, 99.0))
        gain = rng.lognormal(-0.25 + 0.08 * severity, 0.5) * (1.0 + 0.06 * (96.0 - baseline))
        return cls(
            baseline=baseline,
            desat_gain=float(np.clip(gain, 0.3, 2.5)),
            arousal_share=float(min(rng.beta(0.7, 1.0), 0.95)),
            unscored_desat_per_h=float(min(rng.gamma(1.2, 3.5), 20.0)),
            sleep_efficiency=float(np.clip(rng.normal(0.78, 0.14), 0.4, 0.97)),
            apnea_shift=float(rng.normal(0.0, 0.06)),
            hyp4_share=float(rng.beta(3.0, 2.0)),
            dropout_per_h=float(min(rng.gamma(1.0, 0.3), 2.0)),
            motion_per_h=float(rng.uniform(0.5, 3.0)),
            minor_dip_per_h=float(min(rng.gamma(1.5, 4.0), 30.0)),
        )

    def follow_up(self, rng: np.random.Generator) -> Phenotype:
        """The same person five years on (SHHS2): baseline a little lower, traits drifted."""
        return replace(
            self,
            baseline=float(np.clip(self.baseline - rng.uniform(0.0, 0.8), 90.0, 99.0)),
            desat_gain=float(np.clip(self.desat_gain * rng.lognormal(0.05, 0.1), 0.3, 2.5)),
            arousal_share=float(np.clip(self.arousal_share + rng.normal(0.0, 0.05), 0.0, 0.9)),
            unscored_desat_per_h=float(self.unscored_desat_per_h * rng.lognormal(0.0, 0.3)),
            sleep_efficiency=float(
                np.clip(self.sleep_efficiency - rng.normal(0.03, 0.05), 0.4, 0.97)
            ),
        )


# --------------------------------------------------------------------------------------------
# respiratory events


def _place_events(
    rng: np.random.Generator, stages: Sequence[str], durations: np.ndarray
) -> np.ndarray:
    """Onsets (s) for events of the given durations, inside sleep runs, >= 40 s apart.

    Events go one by one to a sleep run drawn in proportion to its stage-weighted length among
    the runs that still have room; inside each run the free time is spread at random between
    them (exact spacing, no rejection). Events that fit nowhere get ``nan``.
    """
    runs = sleep_runs(stages)
    weights = np.array(
        [sum(_EVENT_WEIGHT.get(s, 0.0) for s in stages[a:b]) for a, b in runs], dtype=float
    )
    room = np.array([(b - a) * EPOCH_S - _RUN_MARGIN_S + _MIN_GAP_S for a, b in runs])
    members: list[list[int]] = [[] for _ in runs]
    for i in rng.permutation(durations.size):
        need = durations[i] + _MIN_GAP_S
        ok = (room >= need) & (weights > 0)
        if not ok.any():
            continue
        p = np.where(ok, weights, 0.0)
        r = int(rng.choice(len(runs), p=p / p.sum()))
        members[r].append(int(i))
        room[r] -= need
    onsets = np.full(durations.size, np.nan)
    for r, idx in enumerate(members):
        if not idx:
            continue
        idx = [idx[j] for j in rng.permutation(len(idx))]
        slots = durations[idx] + _MIN_GAP_S
        # room[r] is now the free time left in the run; spread it randomly between events.
        offsets = np.sort(rng.uniform(0.0, room[r], len(idx)))
        start = runs[r][0] * EPOCH_S + _RUN_MARGIN_S
        onsets[idx] = start + offsets + np.concatenate([[0.0], np.cumsum(slots)[:-1]])
    return onsets


@dataclass
class EventPlan:
    """The respiratory events of one night and the desaturation each should cause.

    All arrays have one entry per event, sorted by onset.

    Args:
        kind: design group (:data:`EVENT_KINDS`).
        label: NSRR short label (``Obstructive apnea``, ``Central apnea``, ``Hypopnea``).
        onset: start (s, 0.1-s resolution).
        duration: length (s).
        depth: intended desaturation depth (% points; 0: none).
        fall_t: time (s) the SpO2 fall starts (during the event or up to 10 s after it).
        nadir_t: time (s) the nadir is reached, 18-28 s after the event end.
        hold: seconds SpO2 stays at the nadir before it recovers.
        tau: resaturation time constant (s).
        arousal: an arousal ends the event.
    """

    kind: np.ndarray
    label: list[str]
    onset: np.ndarray
    duration: np.ndarray
    depth: np.ndarray
    fall_t: np.ndarray
    nadir_t: np.ndarray
    hold: np.ndarray
    tau: np.ndarray
    arousal: np.ndarray

    @property
    def end(self) -> np.ndarray:
        """Event ends (s)."""
        return self.onset + self.duration

    def __len__(self) -> int:
        return int(self.kind.size)


def plan_events(
    rng: np.random.Generator, stages: Sequence[str], target_ahi: float, phenotype: Phenotype
) -> EventPlan:
    """Respiratory events of one night (see :class:`EventPlan`).

    The number counted by the 3 %-or-arousal rule is Poisson with mean ``target_ahi`` x hours of
    sleep; apneas make up 25-45 % of them (more when severe; ``phenotype.apnea_shift``), the
    hypopneas end in an arousal without a 3 % desaturation in ``phenotype.arousal_share`` of
    cases, the rest desaturate by >= 4 % (``phenotype.hyp4_share``) or by about 3 %. About 15 % more hypopneas meet neither rule. Apnea depths scale with
    ``phenotype.desat_gain`` (a lean sleeper's apnea may drop SpO2 by only 2 %).
    """
    sleep_h = sum(s != "W" for s in stages) * EPOCH_S / 3600.0
    severity = min(target_ahi / 50.0, 1.0)
    n_counted = int(rng.poisson(target_ahi * sleep_h))
    shift = phenotype.apnea_shift + rng.normal(0.0, 0.03)
    apnea_frac = float(np.clip(0.25 + 0.2 * severity + shift, 0.05, 0.8))
    hyp = 1.0 - apnea_frac
    a, h4 = phenotype.arousal_share, phenotype.hyp4_share
    groups = rng.multinomial(
        n_counted, [apnea_frac, h4 * (1 - a) * hyp, (1 - h4) * (1 - a) * hyp, a * hyp]
    )
    n_none = int(rng.binomial(max(n_counted, 3), 0.15))
    kind = np.repeat(np.array(EVENT_KINDS), [*groups.tolist(), n_none])
    # Shorter events when they are dense, so that severe nights still fit in the sleep time.
    durations = np.clip(10.0 + rng.gamma(2.0, 9.0 - 5.0 * severity, kind.size), 10.0, 60.0)
    durations = np.round(durations, 1)
    onsets = _place_events(rng, stages, durations)
    keep = np.isfinite(onsets)
    # Floor to 0.1 s (NSRR's resolution) so no event is pushed past the end of its sleep run.
    kind, durations, onsets = kind[keep], durations[keep], np.floor(onsets[keep] * 10.0) / 10.0
    order = np.argsort(onsets)
    kind, durations, onsets = kind[order], durations[order], onsets[order]
    n = kind.size

    gain = phenotype.desat_gain
    depth = np.select(
        [kind == "apnea", kind == "hypopnea_4", kind == "hypopnea_3"],
        [
            np.round((2.5 + rng.gamma(2.0, 1.2 + 0.8 * severity, n)) * gain),
            np.minimum(4 + rng.binomial(6, 0.15 + 0.1 * gain, n), 10),
            np.full(n, 3),
        ],
        default=rng.integers(0, 3, n),  # < 3 %: arousal-terminated or uncounted hypopneas
    ).astype(float)
    depth = np.clip(depth, 0.0, 20.0)
    ends = onsets + durations
    lag = rng.uniform(18.0, 28.0, n)  # event end -> nadir (circulation delay)
    nadir_t = ends + lag
    # The fall starts during the event (>= 5 s in) or up to 10 s after it, and lasts 18-40 s.
    fall_lo = np.maximum(lag - 10.0, 18.0)
    fall_hi = np.maximum(np.minimum(lag + durations - 5.0, 40.0), fall_lo)
    fall_t = nadir_t - rng.uniform(fall_lo, fall_hi)
    hold = rng.uniform(2.0, 8.0, n)  # at the nadir
    tau = rng.uniform(4.0, 6.0, n)  # resaturation time constant (s)

    labels = []
    for k in kind:
        if k == "apnea":
            central = rng.random() < 0.1 + 0.1 * (1.0 - severity)
            labels.append("Central apnea" if central else "Obstructive apnea")
        else:
            labels.append("Hypopnea")
    arousal = (kind == "hypopnea_arousal") | ((kind != "hypopnea_none") & (rng.random(n) < 0.5))
    return EventPlan(
        kind=kind,
        label=labels,
        onset=onsets,
        duration=durations,
        depth=depth,
        fall_t=fall_t,
        nadir_t=nadir_t,
        hold=hold,
        tau=tau,
        arousal=arousal,
    )


def respiratory_and_arousal_events(rng: np.random.Generator, plan: EventPlan) -> list[Event]:
    """Scored respiratory events of ``plan`` and the arousals that end them (onset 1 s before to
    3 s after the event end, 3-15 s long)."""
    events = []
    for k in range(len(plan)):
        events.append(Event(float(plan.onset[k]), float(plan.duration[k]), plan.label[k]))
        if plan.arousal[k]:
            events.append(
                Event(
                    round(float(plan.end[k] + rng.uniform(-1.0, 3.0)), 1),
                    round(float(rng.uniform(3.0, 15.0)), 1),
                    "Arousal",
                )
            )
    return events


def spontaneous_arousals(
    rng: np.random.Generator, stages: Sequence[str], plan: EventPlan, per_h: float = 4.0
) -> list[Event]:
    """Arousals with no respiratory event (about ``per_h`` per hour of sleep), kept at least
    15 s before and 20 s after every respiratory event."""
    sleep_idx = np.flatnonzero(np.repeat(np.array(stages) != "W", int(EPOCH_S)))
    sleep_h = sleep_idx.size / 3600.0
    out = []
    n = min(int(rng.poisson(per_h * sleep_h)), sleep_idx.size)
    for cand in rng.choice(sleep_idx, size=n) if n else ():
        if np.any((cand >= plan.onset - 15.0) & (cand <= plan.end + 20.0)):
            continue
        out.append(Event(float(cand), round(float(rng.uniform(3.0, 15.0)), 1), "Arousal"))
    return out
