"""Synthetic SHHS nights in NSRR's layout: EDF (SaO2 at 1 Hz), NSRR XML scoring, dataset CSVs.

Written tree (as downloaded from sleepdata.org)::

    root/
      polysomnography/edfs/shhs1/shhs1-200001.edf
      polysomnography/annotations-events-nsrr/shhs1/shhs1-200001-nsrr.xml
      datasets/shhs1-dataset-0.21.0.csv          nsrrid, ahi_a0h3a, ahi_a0h4, age_s1, ...
      (the same for shhs2: a follow-up visit of a subset of the shhs1 participants)

Each night carries the physiology the SpO2 severity task learns from:

- stages from :func:`sleepbench.tasks.sleep_edf.synth.synth_hypnogram` (R&K, 30-s runs), with
  respiratory events only inside sleep;
- obstructive / central apneas and hypopneas of 10-60 s, at least 40 s apart, more in REM and
  fewer in slow-wave sleep; after each a desaturation whose fall starts during the event (or up
  to 10 s after it) and whose nadir comes 18-28 s after the event ends, followed by the fast
  resaturation of real oximetry (time constant 3-4.5 s); apneas drop 3-10 %, hypopneas either
  >= 4 %, about 3 %, or < 3 % with an EEG arousal ending them (so the 3 %-or-arousal rule
  ``ahi_a0h3a`` and the 4 % rule ``ahi_a0h4`` differ), plus some hypopneas that meet neither;
- an SpO2 baseline of 94-98 % with slow drift (a little lower in REM), quantised to 1 % like the
  oximeter output, and a few artefact stretches (probe off = 0 %, or implausible 20-45 %)
  annotated ``SpO2 artifact``; heart rate (``H.R.``) with post-event surges;
- recording lengths of 75-112.5 % of ``hours`` (6-9 h for 8 h), so fixed-length models must
  truncate and pad.

The CSV's ``ahi_a0h3a`` / ``ahi_a0h4`` are computed from the XML just written, with the reader's
own rule (:func:`sleepbench.io.nsrr_xml.ahi_from_events`: every apnea; hypopneas with a
desaturation of >= 3 % / >= 4 % starting in [onset, end + 30 s], or for 3a an arousal starting
in [onset, end + 5 s]; events starting in sleep epochs; per hour of N1-N4 + REM), so labels and
events can never disagree.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter1d

from sleepbench.io.edf_write import write_edf
from sleepbench.io.nsrr_xml import ahi_from_events, read_nsrr_xml
from sleepbench.io.nsrr_xml_write import write_nsrr_xml
from sleepbench.recording import Event, Signal
from sleepbench.tasks.sleep_edf.synth import EPOCH_S, synth_hypnogram

__all__ = [
    "DATASET_VERSION",
    "FIRST_NSRRID",
    "SEVERITY_CUTS",
    "ShhsNight",
    "ShhsSynthRecord",
    "severity_class",
    "synth_shhs_night",
    "write_synthetic_shhs",
]

DATASET_VERSION = "0.21.0"
FIRST_NSRRID = 200001  # SHHS nsrrids run 200001-205804
#: AHI cut-offs (events/h) between normal, mild, moderate and severe.
SEVERITY_CUTS: tuple[float, float, float] = (5.0, 15.0, 30.0)
# Target AHI (3 %-or-arousal rule) drawn per class, kept clear of the cut-offs.
_TARGET_AHI = ((0.5, 3.5), (7.0, 12.0), (18.0, 26.0), (35.0, 45.0))
_MIN_GAP_S = 40.0  # between one event's end and the next one's onset
_RUN_MARGIN_S = 10.0  # no event in the first seconds of a sleep run (>= 30 s wake + 10 s = gap)
_SHHS2_FRACTION = 0.7  # share of shhs1 participants with a follow-up night
# Stage weights for where events fall (REM-predominant, rare in slow-wave sleep).
_EVENT_WEIGHT = {"1": 1.0, "2": 1.0, "3": 0.4, "4": 0.3, "R": 1.8}


def severity_class(ahi: float) -> int:
    """0 normal (< 5), 1 mild (5-15), 2 moderate (15-30), 3 severe (>= 30 events/h)."""
    return int(np.searchsorted(SEVERITY_CUTS, ahi, side="right"))


@dataclass
class ShhsNight:
    """One synthetic night in memory.

    Args:
        spo2: SaO2 at 1 Hz in %, integer-valued (0 during probe-off artefacts).
        heart_rate: H.R. at 1 Hz in beats per minute.
        stages: one R&K code (``W 1 2 3 4 R``) per 30-s epoch.
        events: scored events (short NSRR labels, see
            :data:`sleepbench.io.nsrr_xml_write.EVENT_CONCEPTS`), desaturations carrying
            ``attrs["spo2_baseline"]`` / ``attrs["spo2_nadir"]``.
        kinds: count of generated respiratory events per design group (``apnea``,
            ``hypopnea_4`` (>= 4 % intended), ``hypopnea_3``, ``hypopnea_arousal``,
            ``hypopnea_none``).
    """

    spo2: np.ndarray
    heart_rate: np.ndarray
    stages: list[str]
    events: list[Event]
    kinds: dict[str, int] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        """Recording length in seconds."""
        return float(self.spo2.size)


@dataclass(frozen=True)
class ShhsSynthRecord:
    """One synthetic SHHS night on disk.

    Args:
        record_id: ``"shhs1-200001"``.
        nsrrid: participant id (shared by the shhs1 and shhs2 nights of one person).
        visit: ``"shhs1"`` or ``"shhs2"``.
        edf_path: the EDF file.
        xml_path: the NSRR XML file.
        duration_s: recording length in seconds.
        sleep_time_s: total sleep time in seconds.
        ahi_a0h3a: AHI (events/h), 3 % desaturation or arousal rule.
        ahi_a0h4: AHI (events/h), 4 % desaturation rule.
        severity: :func:`severity_class` of ``ahi_a0h3a``.
    """

    record_id: str
    nsrrid: int
    visit: str
    edf_path: Path
    xml_path: Path
    duration_s: float
    sleep_time_s: float
    ahi_a0h3a: float
    ahi_a0h4: float
    severity: int


# --------------------------------------------------------------------------------------------
# event placement


def _sleep_runs(stages: Sequence[str]) -> list[tuple[int, int]]:
    """(first, stop) epoch indices of maximal runs of sleep (non-wake) epochs."""
    sleep = np.array([s != "W" for s in stages])
    edges = np.flatnonzero(np.diff(np.concatenate([[0], sleep.astype(int), [0]])))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def _place_events(
    rng: np.random.Generator, stages: Sequence[str], durations: np.ndarray
) -> np.ndarray:
    """Onsets (s) for events of the given durations, inside sleep runs, >= 40 s apart.

    Events go one by one to a sleep run drawn in proportion to its stage-weighted length among
    the runs that still have room; inside each run the free time is spread at random between
    them (exact spacing, no rejection). Events that fit nowhere get ``nan``.
    """
    runs = _sleep_runs(stages)
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


# --------------------------------------------------------------------------------------------
# one night


def synth_shhs_night(
    rng: np.random.Generator, duration_s: float, target_ahi: float, baseline: float | None = None
) -> ShhsNight:
    """Synthesise one night's SpO2, heart rate, stages and scored events.

    Args:
        rng: random generator.
        duration_s: recording length in seconds (rounded down to 30-s epochs; at least 20 min).
        target_ahi: intended AHI (events per hour of sleep) under the 3 %-or-arousal rule; the
            realised value (computed from the events) is close but not identical.
        baseline: awake SpO2 baseline in %; ``None`` draws 94-98 %.

    Returns:
        The night (see :class:`ShhsNight`).
    """
    n_epochs = int(duration_s // EPOCH_S)
    stages = synth_hypnogram(rng, n_epochs, slow_wave=float(rng.uniform(0.5, 1.0)))
    # SHHS scoring rarely uses movement/unscored; keep the stage set to W 1 2 3 4 R so that
    # every reader agrees on total sleep time.
    stages = ["W" if s == "M" else "2" if s == "?" else s for s in stages]
    n = n_epochs * int(EPOCH_S)
    sleep_h = sum(s != "W" for s in stages) * EPOCH_S / 3600.0
    severity = min(target_ahi / 45.0, 1.0)

    # ---- respiratory events: which kinds, how long, where
    n_counted = (
        int(rng.poisson(target_ahi * sleep_h)) if target_ahi < 5 else round(target_ahi * sleep_h)
    )
    apnea_frac = 0.25 + 0.3 * severity
    rest = 1.0 - apnea_frac
    groups = rng.multinomial(n_counted, [apnea_frac, 0.5 * rest, 0.25 * rest, 0.25 * rest])
    n_none = int(rng.binomial(max(n_counted, 2), 0.12))
    kind = np.repeat(
        np.array(["apnea", "hypopnea_4", "hypopnea_3", "hypopnea_arousal", "hypopnea_none"]),
        [*groups.tolist(), n_none],
    )
    # Shorter events when they are dense, so that severe nights still fit in the sleep time.
    durations = np.clip(10.0 + rng.gamma(2.0, 9.0 - 5.0 * severity, kind.size), 10.0, 60.0)
    durations = np.round(durations, 1)
    onsets = _place_events(rng, stages, durations)
    keep = np.isfinite(onsets)
    # Floor to 0.1 s (NSRR's resolution) so no event is pushed past the end of its sleep run.
    kind, durations, onsets = kind[keep], durations[keep], np.floor(onsets[keep] * 10.0) / 10.0
    order = np.argsort(onsets)
    kind, durations, onsets = kind[order], durations[order], onsets[order]
    ends = onsets + durations

    # ---- intended desaturation depth (integer %) and timing per event
    depth = np.select(
        [kind == "apnea", kind == "hypopnea_4", kind == "hypopnea_3", kind == "hypopnea_arousal"],
        [
            4 + rng.binomial(5, 0.3 + 0.4 * severity, kind.size),
            5 + rng.binomial(4, 0.3, kind.size),
            np.full(kind.size, 3),
            rng.integers(1, 3, kind.size),
        ],
        default=rng.integers(0, 2, kind.size),
    ).astype(float)
    lag = rng.uniform(18.0, 28.0, kind.size)  # event end -> nadir (circulation delay)
    nadir_t = ends + lag
    # The fall starts during the event (>= 5 s in) or up to 10 s after it, and lasts 18-40 s.
    fall_lo = np.maximum(lag - 10.0, 18.0)
    fall_hi = np.maximum(np.minimum(lag + durations - 5.0, 40.0), fall_lo)
    fall = rng.uniform(fall_lo, fall_hi)
    fall_t = nadir_t - fall
    tau = rng.uniform(3.0, 4.5, kind.size)  # resaturation time constant (s)

    # ---- SpO2: drifting baseline minus event dips, sensor noise, 1-% quantisation
    t = np.arange(n, dtype=float)
    base = float(rng.uniform(94.0, 98.0)) if baseline is None else float(baseline)
    drift = uniform_filter1d(rng.standard_normal(n), size=900, mode="nearest")
    drift = 0.6 * drift / max(float(np.std(drift)), 1e-9)
    stage_s = np.repeat(np.array(stages), int(EPOCH_S))
    stage_shift = uniform_filter1d(
        np.select([stage_s == "R", stage_s == "W"], [-0.4, 0.3], default=0.0), size=60
    )
    level = np.clip(base + drift + stage_shift, 92.6, 99.4)
    deficit = np.zeros(n)
    for k in np.flatnonzero(depth > 0):
        a, b = int(np.floor(fall_t[k])), min(int(nadir_t[k] + 8 * tau[k]) + 1, n)
        if a >= n:
            continue
        seg = t[a:b]
        x = np.clip((seg - fall_t[k]) / fall[k], 0.0, 1.0) ** 1.5
        dip = np.where(
            seg <= nadir_t[k], depth[k] * x, depth[k] * np.exp(-(seg - nadir_t[k]) / tau[k])
        )
        deficit[a:b] = np.maximum(deficit[a:b], dip)
    noise = rng.uniform(-0.2, 0.2, n)
    spo2 = np.clip(np.round(level - deficit + noise), 0.0, 100.0)

    # ---- desaturation annotations measured on the quantised signal, as a scorer would
    events: list[Event] = []
    for k in range(kind.size):
        label = "Hypopnea"
        if kind[k] == "apnea":
            central = rng.random() < 0.1 + 0.1 * (1.0 - severity)
            label = "Central apnea" if central else "Obstructive apnea"
        events.append(Event(float(onsets[k]), float(durations[k]), label))
        a = int(fall_t[k])
        b = min(int(np.ceil(nadir_t[k] + 3 * tau[k])), n)
        if depth[k] > 0 and a < n:
            # baseline: median of the 5 s before the fall (odd count: an integer %)
            base_m = float(np.median(spo2[max(a - 4, 0) : a + 1]))
            nadir_m = float(spo2[a:b].min())
            if base_m - nadir_m >= 2:
                # annotated from the start of the fall until back within 0.5 % of baseline
                recovered = nadir_t[k] + tau[k] * np.log(2.0 * max(depth[k], 1.0))
                events.append(
                    Event(
                        round(float(fall_t[k]), 1),
                        round(float(recovered - fall_t[k]), 1),
                        "SpO2 desaturation",
                        attrs={"spo2_baseline": base_m, "spo2_nadir": nadir_m},
                    )
                )
        # Arousals end the event: always for the arousal group, often otherwise.
        if kind[k] == "hypopnea_arousal" or (kind[k] != "hypopnea_none" and rng.random() < 0.5):
            events.append(
                Event(
                    round(float(ends[k] + rng.uniform(-1.0, 3.0)), 1),
                    round(float(rng.uniform(3.0, 15.0)), 1),
                    "Arousal",
                )
            )

    # ---- spontaneous arousals, away from respiratory events
    sleep_idx = np.flatnonzero(np.repeat(np.array(stages) != "W", int(EPOCH_S)))
    for cand in rng.choice(sleep_idx, size=min(int(rng.poisson(4 * sleep_h)), sleep_idx.size)):
        if np.any((cand >= onsets - 15.0) & (cand <= ends + 20.0)):
            continue
        events.append(Event(float(cand), round(float(rng.uniform(3.0, 15.0)), 1), "Arousal"))

    # ---- SpO2 artefacts: probe off (0 %) or implausible values, away from every dip
    busy = np.zeros(n, dtype=bool)
    for k in range(kind.size):
        busy[max(int(onsets[k]) - 40, 0) : min(int(nadir_t[k] + 40), n)] = True
    for _ in range(int(rng.integers(1, 5))):
        length = int(rng.integers(3, 21))
        for _try in range(50):
            s0 = int(rng.integers(0, max(n - length, 1)))
            if not busy[max(s0 - 5, 0) : s0 + length + 5].any():
                break
        else:
            continue
        busy[s0 : s0 + length] = True
        if rng.random() < 0.6:
            spo2[s0 : s0 + length] = 0.0
        else:
            spo2[s0 : s0 + length] = np.round(rng.uniform(20.0, 45.0, length))
        events.append(Event(float(s0), float(length), "SpO2 artifact"))

    # ---- heart rate: baseline, stage effects, surges after events, 0 when the probe is off
    hr_drift = uniform_filter1d(rng.standard_normal(n), size=600, mode="nearest")
    hr = float(rng.uniform(55.0, 75.0)) + 3.0 * hr_drift / max(float(np.std(hr_drift)), 1e-9)
    hr += uniform_filter1d(np.select([stage_s == "R", stage_s == "W"], [4.0, 6.0], 0.0), size=60)
    surge = np.zeros(n)
    for k in range(kind.size):
        a, b = int(ends[k]), min(int(ends[k]) + 20, n)
        surge[a:b] += rng.uniform(6.0, 15.0) * np.exp(-(((t[a:b] - ends[k] - 6.0) / 5.0) ** 2))
    hr = np.round(hr + surge + rng.normal(0.0, 1.0, n))
    hr[spo2 == 0.0] = 0.0

    events.sort(key=lambda e: (e.onset_s, e.label))
    return ShhsNight(
        spo2=spo2.astype(np.float32),
        heart_rate=hr.astype(np.float32),
        stages=stages,
        events=events,
        kinds=dict(Counter(kind.tolist())),
    )


# --------------------------------------------------------------------------------------------
# files


def _write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    """Write ``rows`` (same keys) as CSV, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _clock(start: dt.datetime) -> str:
    return f"00.00.00 {start:%H.%M.%S}"


def write_synthetic_shhs(
    root: str | Path,
    n_subjects: int = 40,
    visits: Sequence[str] = ("shhs1", "shhs2"),
    hours: float = 8.0,
    seed: int = 0,
) -> list[ShhsSynthRecord]:
    """Write synthetic SHHS nights, annotations and dataset CSVs in NSRR's folder layout.

    Args:
        root: output folder (created).
        n_subjects: participants in ``shhs1``; their severity classes are balanced (a quarter
            each of normal, mild, moderate, severe by target AHI).
        visits: ``"shhs1"`` and/or ``"shhs2"``. ``shhs2`` holds the follow-up night of about
            70 % of the participants (same ``nsrrid``), whose AHI has drifted since visit 1.
        hours: nominal recording length; each night lasts 75-112.5 % of it (6-9 h for 8 h).
        seed: seed; a given (seed, nsrrid, visit) always produces the same night.

    Returns:
        One :class:`ShhsSynthRecord` per night, by visit then nsrrid.
    """
    unknown = set(visits) - {"shhs1", "shhs2"}
    if unknown:
        raise ValueError(f"unknown SHHS visits {sorted(unknown)}; use 'shhs1' and/or 'shhs2'")
    if n_subjects < 1:
        raise ValueError(f"n_subjects must be positive, got {n_subjects}")
    root = Path(root)
    people = []
    for i in range(n_subjects):
        prng = np.random.default_rng((seed, FIRST_NSRRID + i))
        cls = i % 4
        male = bool(prng.random() < 0.45 + 0.1 * cls)
        people.append(
            {
                "nsrrid": FIRST_NSRRID + i,
                "target": float(prng.uniform(*_TARGET_AHI[cls])),
                "age": int(np.clip(round(prng.normal(63.0, 10.0)), 40, 90)),
                "male": male,
                "race": int(prng.choice([1, 2, 3], p=[0.85, 0.09, 0.06])),
                "bmi": round(float(prng.normal(26.0 + 1.5 * cls, 3.5)), 2),
                "baseline": float(prng.uniform(94.5, 98.0) - 0.4 * cls),
                "followup": bool(prng.random() < _SHHS2_FRACTION),
            }
        )
    out: list[ShhsSynthRecord] = []
    for visit in visits:
        v = int(visit[-1])
        rows = []
        for person in people:
            if v == 2 and not person["followup"]:
                continue
            nid = person["nsrrid"]
            rng = np.random.default_rng((seed, nid, v))
            target = person["target"]
            if v == 2:  # five years on: the AHI drifts, mostly upwards
                target = float(np.clip(target * rng.lognormal(0.1, 0.25), 0.3, 45.0))
            duration = EPOCH_S * int(hours * 3600.0 * rng.uniform(0.75, 1.125) // EPOCH_S)
            night = synth_shhs_night(rng, duration, target, person["baseline"])
            start = dt.datetime(1985, 1, 1, 21, 0, 0) + dt.timedelta(
                minutes=int(rng.integers(0, 150))
            )
            record_id = f"{visit}-{nid}"
            edf_path = write_edf(
                root / "polysomnography" / "edfs" / visit / f"{record_id}.edf",
                [
                    Signal("SaO2", night.spo2, 1.0, "%"),
                    Signal("H.R.", night.heart_rate, 1.0, "bpm"),
                ],
                start=start,
                record_duration_s=1.0,
                physical_ranges={"SaO2": (0.0, 100.0), "H.R.": (0.0, 250.0)},
            )
            xml_path = write_nsrr_xml(
                root
                / "polysomnography"
                / "annotations-events-nsrr"
                / visit
                / f"{record_id}-nsrr.xml",
                night.events,
                [(i * EPOCH_S, EPOCH_S, s) for i, s in enumerate(night.stages)],
                recording_duration_s=night.duration_s,
                clock_time=_clock(start),
            )
            # Labels from the file just written, with the reader's own AHI rule.
            ann = read_nsrr_xml(xml_path)
            ahi3a = ahi_from_events(ann, rule="3a")
            ahi4 = ahi_from_events(ann, rule="4")
            age = person["age"] + (5 if v == 2 else 0)
            bmi = round(person["bmi"] + (float(rng.normal(0.5, 1.0)) if v == 2 else 0.0), 2)
            rows.append(
                {
                    "nsrrid": nid,
                    "visitnumber": v,
                    f"age_s{v}": age,
                    "gender": 1 if person["male"] else 2,
                    "race": person["race"],
                    f"bmi_s{v}": bmi,
                    "ahi_a0h3a": ahi3a,
                    "ahi_a0h4": ahi4,
                    "nsrr_age": min(age, 90),
                    "nsrr_sex": "male" if person["male"] else "female",
                    "nsrr_bmi": bmi,
                }
            )
            out.append(
                ShhsSynthRecord(
                    record_id=record_id,
                    nsrrid=nid,
                    visit=visit,
                    edf_path=edf_path,
                    xml_path=xml_path,
                    duration_s=night.duration_s,
                    sleep_time_s=ann.sleep_time_s,
                    ahi_a0h3a=ahi3a,
                    ahi_a0h4=ahi4,
                    severity=severity_class(ahi3a),
                )
            )
        if rows:
            _write_csv(root / "datasets" / f"{visit}-dataset-{DATASET_VERSION}.csv", rows)
    return out
