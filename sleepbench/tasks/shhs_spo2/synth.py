"""Synthetic SHHS nights in NSRR's layout: EDF (SaO2 and H.R. at 1 Hz), NSRR XML scoring, dataset CSVs.

Written tree (as downloaded from sleepdata.org)::

    root/
      polysomnography/edfs/shhs1/shhs1-200001.edf
      polysomnography/annotations-events-nsrr/shhs1/shhs1-200001-nsrr.xml
      datasets/shhs1-dataset-0.21.0.csv          nsrrid, ahi_a0h3a, ahi_a0h4, age_s1, ...
      (the same for shhs2: a follow-up visit of a subset of the shhs1 participants)

A night is made in two steps, each in its own module:

- :mod:`~sleepbench.tasks.shhs_spo2.synth_events`: the participant's :class:`Phenotype`
  (SpO2 baseline 90-99 %, desaturation gain, share of arousal-only hypopneas, unscored
  desaturations, sleep efficiency, dropouts), a target AHI covering each class range with many
  nights near the 5 / 15 / 30 cut-offs, stages with long wake periods, and the respiratory events
  with the desaturation each should cause;
- :mod:`~sleepbench.tasks.shhs_spo2.synth_spo2`: the SpO2 waveform (delayed desaturations,
  unscored desaturations, noise, 1-% quantisation, probe-off dropouts and motion artefacts), the
  scorer's desaturation annotations measured on it, and the heart rate.

Recording lengths are 75-112.5 % of ``hours`` (6-9 h for 8 h), so fixed-length models must
truncate and pad. The CSV's ``ahi_a0h3a`` / ``ahi_a0h4`` are computed from the XML just written,
with the reader's own rule (:func:`sleepbench.io.nsrr_xml.ahi_from_events`: every apnea;
hypopneas with a desaturation of >= 3 % / >= 4 % starting in [onset, end + 30 s], or for 3a an
arousal starting in [onset, end + 5 s]; events starting in sleep epochs; per hour of N1-N4 +
REM), so labels and events can never disagree. What the generated files look like, measured, is
in ``tests/tasks/shhs_spo2/test_synth.py`` and the data card (``data_cards/shhs.md``).
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from sleepbench.io.edf_write import write_edf
from sleepbench.io.nsrr_xml import ahi_from_events, read_nsrr_xml
from sleepbench.io.nsrr_xml_write import write_nsrr_xml
from sleepbench.recording import Event, Signal
from sleepbench.tasks.shhs_spo2.synth_events import (
    SEVERITY_CUTS,
    Phenotype,
    draw_target_ahi,
    plan_events,
    respiratory_and_arousal_events,
    severity_class,
    spontaneous_arousals,
)
from sleepbench.tasks.shhs_spo2.synth_spo2 import synth_oximetry
from sleepbench.tasks.shhs_spo2.synth_stages import hypnogram_with_wake
from sleepbench.tasks.sleep_edf.synth import EPOCH_S

__all__ = [
    "DATASET_VERSION",
    "FIRST_NSRRID",
    "SEVERITY_CUTS",
    "Phenotype",
    "ShhsNight",
    "ShhsSynthRecord",
    "severity_class",
    "synth_shhs_night",
    "write_synthetic_shhs",
]

DATASET_VERSION = "0.21.0"
FIRST_NSRRID = 200001  # SHHS nsrrids run 200001-205804
_SHHS2_FRACTION = 0.7  # share of shhs1 participants with a follow-up night


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
        kinds: count of generated respiratory events per design group
            (:data:`~sleepbench.tasks.shhs_spo2.synth_events.EVENT_KINDS`) plus
            ``unscored_desaturation``.
        phenotype: the participant's traits this night was made with.
    """

    spo2: np.ndarray
    heart_rate: np.ndarray
    stages: list[str]
    events: list[Event]
    kinds: dict[str, int] = field(default_factory=dict)
    phenotype: Phenotype = field(default_factory=Phenotype)

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
# one night


def synth_shhs_night(
    rng: np.random.Generator,
    duration_s: float,
    target_ahi: float,
    baseline: float | None = None,
    phenotype: Phenotype | None = None,
) -> ShhsNight:
    """Synthesise one night's SpO2, heart rate, stages and scored events.

    Args:
        rng: random generator.
        duration_s: recording length in seconds (rounded down to 30-s epochs; at least 20 min).
        target_ahi: intended AHI (events per hour of sleep) under the 3 %-or-arousal rule; the
            realised value (computed from the events) scatters around it.
        baseline: awake SpO2 baseline in %; overrides the phenotype's.
        phenotype: the participant's traits; ``None`` draws them for ``target_ahi``'s class.

    Returns:
        The night (see :class:`ShhsNight`).
    """
    n_epochs = int(duration_s // EPOCH_S)
    if phenotype is None:
        phenotype = Phenotype.sample(rng, severity_class(target_ahi))
    if baseline is not None:
        phenotype = replace(phenotype, baseline=float(baseline))
    stages = hypnogram_with_wake(
        rng, n_epochs, phenotype.sleep_efficiency, slow_wave=float(rng.uniform(0.5, 1.0))
    )
    plan = plan_events(rng, stages, target_ahi, phenotype)
    oxi = synth_oximetry(rng, stages, plan, phenotype)
    events = respiratory_and_arousal_events(rng, plan) + oxi.events
    events += spontaneous_arousals(rng, stages, plan)
    events.sort(key=lambda e: (e.onset_s, e.label))
    kinds = Counter(plan.kind.tolist())
    kinds["unscored_desaturation"] = int(np.count_nonzero(~oxi.dips.scored))
    return ShhsNight(
        spo2=oxi.spo2.astype(np.float32),
        heart_rate=oxi.heart_rate.astype(np.float32),
        stages=list(stages),
        events=events,
        kinds=dict(kinds),
        phenotype=phenotype,
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
        n_subjects: participants in ``shhs1``; their severity classes are balanced by target
            AHI (a quarter each of normal, mild, moderate, severe); the realised AHI of a night
            near a cut-off may fall in the neighbouring class.
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
                "target": draw_target_ahi(prng, cls),
                "age": int(np.clip(round(prng.normal(63.0, 10.0)), 40, 90)),
                "male": male,
                "race": int(prng.choice([1, 2, 3], p=[0.85, 0.09, 0.06])),
                "bmi": round(float(prng.normal(26.0 + 1.5 * cls, 3.5)), 2),
                "phenotype": Phenotype.sample(prng, cls),
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
            phenotype = person["phenotype"]
            if v == 2:  # five years on: the AHI drifts, mostly upwards
                target = float(np.clip(target * rng.lognormal(0.1, 0.25), 0.3, 60.0))
                phenotype = phenotype.follow_up(rng)
            duration = EPOCH_S * int(hours * 3600.0 * rng.uniform(0.75, 1.125) // EPOCH_S)
            night = synth_shhs_night(rng, duration, target, phenotype=phenotype)
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
