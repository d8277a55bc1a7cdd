"""Synthetic SHHS, part 2: the oximeter's channels (SaO2 and H.R. at 1 Hz) for a night's plan.

The SpO2 waveform (:func:`synth_oximetry`):

- a baseline of 90-99 % (the participant's, :class:`~.synth_events.Phenotype`) with slow drift,
  a little lower in REM and higher in wake;
- after each respiratory event of the plan, its desaturation: the fall starts during the event
  (or up to 10 s after it), the nadir comes 18-28 s after the event ends (circulation delay)
  and lasts 2-8 s, then the fast resaturation of real oximetry (time constant 4-6 s);
- desaturations with **no scored event** (:func:`unscored_desaturations`): 3-7 % drops at
  ``Phenotype.unscored_desat_per_h`` per hour of recording, in wake and in sleep away from the
  scored events, slower to recover; they count towards an oxygen desaturation index but never
  towards the AHI;
- shallow dips of 1-2 % with no scored event (:func:`minor_dips`) at
  ``Phenotype.minor_dip_per_h``, which look like the dips after arousal-scored hypopneas;
- short-term variability (breath-to-breath and sensor noise, :func:`sensor_noise`: SD 0.45 %,
  a few seconds' correlation) and 1-% quantisation, so that the output flickers between
  neighbouring whole-% values like a real oximeter's and a 1-2 % dip is hard to tell from it;
- artefacts (:func:`add_artefacts`), each annotated ``SpO2 artifact``: probe-off dropouts (0 %)
  of seconds to half an hour at ``Phenotype.dropout_per_h`` (and one of 15-90 min in 15 % of
  nights), which may hide an event's
  desaturation; a few implausible stretches (20-45 %); and **motion artefacts**, abrupt drops
  of 4-12 % for 5-25 s that stay inside the plausible range (mostly in wake), which a
  preprocessing that only removes values outside 50-100 % keeps.

The scorer's ``SpO2 desaturation`` annotations are measured on the finished signal
(:func:`desaturation_annotations`): baseline = median of the 5 s before the fall, nadir = the
lowest value up to three time constants after the planned nadir; none is scored where an
artefact overlaps the desaturation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import lfilter

from sleepbench.recording import Event
from sleepbench.tasks.shhs_spo2.synth_events import EventPlan, Phenotype
from sleepbench.tasks.sleep_edf.synth import EPOCH_S

__all__ = [
    "Artefact",
    "Dips",
    "OximetryNight",
    "add_artefacts",
    "desaturation_annotations",
    "heart_rate",
    "minor_dips",
    "sensor_noise",
    "spo2_level",
    "synth_oximetry",
    "unscored_desaturations",
]


@dataclass
class Dips:
    """Desaturations in the signal, one entry per dip (all arrays the same length).

    Args:
        depth: depth below the current level (% points).
        fall_t: start of the fall (s).
        nadir_t: time the nadir is reached (s).
        hold: seconds at the nadir before the recovery.
        tau: resaturation time constant (s).
        scored: the dip follows a scored respiratory event (False: unscored desaturation).
    """

    depth: np.ndarray
    fall_t: np.ndarray
    nadir_t: np.ndarray
    hold: np.ndarray
    tau: np.ndarray
    scored: np.ndarray

    @classmethod
    def of_plan(cls, plan: EventPlan) -> Dips:
        """The planned desaturation of every respiratory event."""
        scored = np.ones(len(plan), dtype=bool)
        return cls(plan.depth, plan.fall_t, plan.nadir_t, plan.hold, plan.tau, scored)

    def __add__(self, other: Dips) -> Dips:
        return Dips(
            *(np.concatenate([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self))
        )

    def __len__(self) -> int:
        return int(self.depth.size)


@dataclass(frozen=True)
class Artefact:
    """One annotated artefact: ``start`` and ``length`` in seconds, ``kind`` one of
    ``probe_off``, ``implausible``, ``motion``."""

    start: int
    length: int
    kind: str


def spo2_level(
    rng: np.random.Generator, n: int, stages: Sequence[str], baseline: float
) -> np.ndarray:
    """SpO2 (%) without desaturations: ``baseline`` with slow drift (15-min smoothing, SD 0.6 %),
    0.4 % lower in REM and 0.3 % higher in wake."""
    drift = uniform_filter1d(rng.standard_normal(n), size=900, mode="nearest")
    drift = 0.6 * drift / max(float(np.std(drift)), 1e-9)
    stage_s = np.repeat(np.array(stages), int(EPOCH_S))[:n]
    stage_shift = uniform_filter1d(
        np.select([stage_s == "R", stage_s == "W"], [-0.4, 0.3], default=0.0), size=60
    )
    return np.clip(baseline + drift + stage_shift, baseline - 2.0, 99.6)


def _free_onsets(
    rng: np.random.Generator, n: int, plan: EventPlan, count: int, min_gap_s: float
) -> np.ndarray:
    """Up to ``count`` dip onsets (s, sorted) anywhere in ``n`` seconds except within 60 s
    before a respiratory event of ``plan`` to 30 s after its nadir (so the AHI rule can never
    associate them), at least ``min_gap_s`` apart."""
    busy = np.zeros(n, dtype=bool)
    for a, b in zip(plan.onset - 60.0, plan.nadir_t + 30.0):
        busy[max(int(a), 0) : min(int(b) + 1, n)] = True
    free = np.flatnonzero(~busy[: max(n - 60, 0)])
    if count == 0 or free.size == 0:
        return np.zeros(0)
    fall_t = np.sort(rng.choice(free, size=min(count, free.size), replace=False)).astype(float)
    keep = np.concatenate([[True], np.diff(fall_t) >= min_gap_s])
    return fall_t[keep] + rng.uniform(0.0, 1.0, int(keep.sum()))


def unscored_desaturations(rng: np.random.Generator, n: int, plan: EventPlan, per_h: float) -> Dips:
    """Desaturations with no scored event: Poisson(``per_h`` x hours) of them, away from the
    respiratory events (:func:`_free_onsets`, 60 s apart), 3-7 % deep, falling over 15-35 s,
    2-10 s at the nadir and recovering with a time constant of 5-9 s."""
    fall_t = _free_onsets(rng, n, plan, int(rng.poisson(per_h * n / 3600.0)), 60.0)
    m = fall_t.size
    fall = rng.uniform(15.0, 35.0, m)
    return Dips(
        depth=np.minimum(3.0 + rng.gamma(1.5, 0.8, m), 7.0).round(),
        fall_t=fall_t,
        nadir_t=fall_t + fall,
        hold=rng.uniform(2.0, 10.0, m),
        tau=rng.uniform(5.0, 9.0, m),
        scored=np.zeros(m, dtype=bool),
    )


def minor_dips(rng: np.random.Generator, n: int, plan: EventPlan, per_h: float) -> Dips:
    """Dips of 1-2 % with no respiratory event (sighs, position changes, irregular REM
    breathing): Poisson(``per_h`` x hours), away from the events (:func:`_free_onsets`, 40 s
    apart), shaped like an event's desaturation (fall 18-40 s, 2-8 s at the nadir, recovery
    time constant 4-6 s). They look like the < 3 % dips after arousal-scored hypopneas, so
    counting shallow dips cannot recover the events oximetry misses."""
    fall_t = _free_onsets(rng, n, plan, int(rng.poisson(per_h * n / 3600.0)), 40.0)
    m = fall_t.size
    return Dips(
        depth=rng.choice([1.0, 2.0], size=m, p=[0.4, 0.6]),
        fall_t=fall_t,
        nadir_t=fall_t + rng.uniform(18.0, 40.0, m),
        hold=rng.uniform(2.0, 8.0, m),
        tau=rng.uniform(4.0, 6.0, m),
        scored=np.zeros(m, dtype=bool),
    )


def sensor_noise(
    rng: np.random.Generator, n: int, sd: float = 0.45, tau_s: float = 4.0
) -> np.ndarray:
    """Short-term SpO2 variability (%): a first-order autoregressive process with standard
    deviation ``sd`` and correlation time ``tau_s`` seconds."""
    phi = float(np.exp(-1.0 / tau_s))
    innovation = rng.normal(0.0, sd * np.sqrt(1.0 - phi**2), n)
    start = rng.normal(0.0, sd)
    return lfilter([1.0], [1.0, -phi], innovation, zi=[phi * start])[0]


def _deficit(n: int, dips: Dips) -> np.ndarray:
    """How far SpO2 lies below its level (% points), per second: each dip falls as
    ``x ** 1.2`` to its nadir, stays there ``hold`` seconds and recovers exponentially;
    overlapping dips take the deeper."""
    t = np.arange(n, dtype=float)
    deficit = np.zeros(n)
    for k in np.flatnonzero(dips.depth > 0):
        a = max(int(np.floor(dips.fall_t[k])), 0)
        rise = dips.nadir_t[k] + dips.hold[k]
        b = min(int(rise + 8 * dips.tau[k]) + 1, n)
        if a >= n:
            continue
        seg = t[a:b]
        fall = dips.nadir_t[k] - dips.fall_t[k]
        x = np.clip((seg - dips.fall_t[k]) / fall, 0.0, 1.0) ** 1.2
        dip = np.where(
            seg <= rise,
            dips.depth[k] * x,
            dips.depth[k] * np.exp(-(seg - rise) / dips.tau[k]),
        )
        deficit[a:b] = np.maximum(deficit[a:b], dip)
    return deficit


def add_artefacts(
    rng: np.random.Generator, spo2: np.ndarray, stages: Sequence[str], phenotype: Phenotype
) -> list[Artefact]:
    """Write artefacts into ``spo2`` (in place) and return them; they never overlap each other.

    - probe off (0 %): Poisson(``dropout_per_h`` x hours), at least one; lengths log-normal
      (median 40 s, 5 s to 30 min), anywhere; in 15 % of nights one more of 15-90 min;
    - implausible values (20-45 %): 0-2 stretches of 3-20 s;
    - motion (plausible values): Poisson(``motion_per_h`` x hours of wake) in wake plus
      Poisson(0.2 x hours of sleep) in sleep, an abrupt drop of 4-12 % (jittering by 1 %) for
      5-25 s.
    """
    n = spo2.size
    hours = n / 3600.0
    wake = np.repeat(np.array(stages) == "W", int(EPOCH_S))[:n]
    taken = np.zeros(n, dtype=bool)
    out: list[Artefact] = []

    def put(length: int, where: np.ndarray | None) -> int | None:
        length = int(min(length, n - 1))
        for _ in range(50):
            if where is not None and where.size:
                s0 = int(rng.choice(where))
            else:
                s0 = int(rng.integers(0, max(n - length, 1)))
            s0 = min(s0, n - length)
            if not taken[max(s0 - 5, 0) : s0 + length + 5].any():
                taken[s0 : s0 + length] = True
                return s0
        return None

    n_off = max(1, int(rng.poisson(phenotype.dropout_per_h * hours)))
    lengths = [int(np.clip(rng.lognormal(np.log(40.0), 1.2), 5, 1800)) for _ in range(n_off)]
    if rng.random() < 0.15:  # a probe that came off for a long stretch
        lengths.append(int(rng.uniform(15.0, 90.0) * 60))
    for length in lengths:
        s0 = put(length, None)
        if s0 is not None:
            spo2[s0 : s0 + length] = 0.0
            out.append(Artefact(s0, length, "probe_off"))
    for _ in range(int(rng.integers(0, 3))):
        length = int(rng.integers(3, 21))
        s0 = put(length, None)
        if s0 is not None:
            spo2[s0 : s0 + length] = np.round(rng.uniform(20.0, 45.0, length))
            out.append(Artefact(s0, length, "implausible"))
    wake_idx, sleep_idx = np.flatnonzero(wake), np.flatnonzero(~wake)
    n_motion = [
        (int(rng.poisson(phenotype.motion_per_h * wake_idx.size / 3600.0)), wake_idx),
        (int(rng.poisson(0.2 * sleep_idx.size / 3600.0)), sleep_idx),
    ]
    for count, where in n_motion:
        for _ in range(count if where.size else 0):
            length = int(rng.integers(5, 26))
            s0 = put(length, where)
            if s0 is None:
                continue
            seg = spo2[s0 : s0 + length]
            drop = rng.uniform(4.0, 12.0)
            seg[:] = np.clip(np.round(seg - drop + rng.integers(-1, 2, length)), 55.0, 100.0)
            out.append(Artefact(s0, length, "motion"))
    return sorted(out, key=lambda a: a.start)


def desaturation_annotations(
    spo2: np.ndarray, dips: Dips, artefact_mask: np.ndarray
) -> list[Event]:
    """The scorer's ``SpO2 desaturation`` events, measured on the finished signal.

    For each dip: baseline = median of the 5 s before the fall (an odd count: a whole %), nadir
    = the lowest value from the fall start to three time constants after the recovery starts;
    annotated (from the fall start until back within 0.5 % of baseline) when the drop is at least
    2 % and no artefact touches the stretch from 5 s before the fall to its end.
    """
    n = spo2.size
    out = []
    for k in range(len(dips)):
        a = int(dips.fall_t[k])
        b = min(int(np.ceil(dips.nadir_t[k] + dips.hold[k] + 3 * dips.tau[k])), n)
        if dips.depth[k] <= 0 or a >= n or a < 4 or artefact_mask[a - 4 : b].any():
            continue
        base_m = float(np.median(spo2[a - 4 : a + 1]))
        at_nadir = a + int(np.argmin(spo2[a:b]))
        nadir_m = float(spo2[at_nadir])
        if base_m - nadir_m < 2:
            continue
        rise = dips.nadir_t[k] + dips.hold[k]
        recovered = rise + dips.tau[k] * np.log(2.0 * max(dips.depth[k], 1.0))
        # sensor noise can put a shallow dip's lowest value after its planned recovery: the
        # annotation always reaches the nadir it reports
        recovered = max(recovered, at_nadir + 1.0)
        out.append(
            Event(
                round(float(dips.fall_t[k]), 1),
                round(float(recovered - dips.fall_t[k]), 1),
                "SpO2 desaturation",
                attrs={"spo2_baseline": base_m, "spo2_nadir": nadir_m},
            )
        )
    return out


def heart_rate(
    rng: np.random.Generator, n: int, stages: Sequence[str], plan: EventPlan, probe_off: np.ndarray
) -> np.ndarray:
    """H.R. (bpm, whole numbers): a 55-75 bpm baseline with drift, higher in REM and wake,
    surges after respiratory events, 0 while the probe is off."""
    t = np.arange(n, dtype=float)
    stage_s = np.repeat(np.array(stages), int(EPOCH_S))[:n]
    hr_drift = uniform_filter1d(rng.standard_normal(n), size=600, mode="nearest")
    hr = float(rng.uniform(55.0, 75.0)) + 3.0 * hr_drift / max(float(np.std(hr_drift)), 1e-9)
    hr += uniform_filter1d(np.select([stage_s == "R", stage_s == "W"], [4.0, 6.0], 0.0), size=60)
    surge = np.zeros(n)
    for end in plan.end:
        a, b = int(end), min(int(end) + 20, n)
        surge[a:b] += rng.uniform(6.0, 15.0) * np.exp(-(((t[a:b] - end - 6.0) / 5.0) ** 2))
    hr = np.round(hr + surge + rng.normal(0.0, 1.0, n))
    hr[probe_off] = 0.0
    return hr


@dataclass
class OximetryNight:
    """The oximeter's output for one night.

    Args:
        spo2: SaO2 (%, whole numbers, 1 Hz; 0 while the probe is off).
        heart_rate: H.R. (bpm, 1 Hz).
        events: ``SpO2 desaturation`` and ``SpO2 artifact`` annotations.
        dips: every desaturation put into the signal.
        artefacts: every artefact put into the signal.
    """

    spo2: np.ndarray
    heart_rate: np.ndarray
    events: list[Event]
    dips: Dips
    artefacts: list[Artefact]


def synth_oximetry(
    rng: np.random.Generator, stages: Sequence[str], plan: EventPlan, phenotype: Phenotype
) -> OximetryNight:
    """SaO2 and H.R. of a night (one sample per second of the staged epochs) for ``plan``."""
    n = len(stages) * int(EPOCH_S)
    level = spo2_level(rng, n, stages, phenotype.baseline)
    dips = (
        Dips.of_plan(plan)
        + unscored_desaturations(rng, n, plan, phenotype.unscored_desat_per_h)
        + minor_dips(rng, n, plan, phenotype.minor_dip_per_h)
    )
    spo2 = np.clip(np.round(level - _deficit(n, dips) + sensor_noise(rng, n)), 0.0, 100.0)
    artefacts = add_artefacts(rng, spo2, stages, phenotype)
    mask = np.zeros(n, dtype=bool)
    probe_off = np.zeros(n, dtype=bool)
    for art in artefacts:
        mask[art.start : art.start + art.length] = True
        if art.kind == "probe_off":
            probe_off[art.start : art.start + art.length] = True
    events = desaturation_annotations(spo2, dips, mask)
    events += [Event(float(a.start), float(a.length), "SpO2 artifact") for a in artefacts]
    return OximetryNight(
        spo2=spo2,
        heart_rate=heart_rate(rng, n, stages, plan, probe_off),
        events=events,
        dips=dips,
        artefacts=artefacts,
    )
