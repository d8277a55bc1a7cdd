"""Synthetic SHHS: NSRR layout, CSV AHI labels that match the events, single nights and
determinism (the physiology is in ``test_synth_physiology.py``; the shared set in ``conftest.py``)."""

from __future__ import annotations

import csv
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import edfio
import numpy as np
import pytest

from sleepbench.io.edf import read_edf
from sleepbench.io.nsrr_xml import (
    ahi_events,
    read_nsrr_xml,
)
from sleepbench.tasks.shhs_spo2.synth import (
    DATASET_VERSION,
    severity_class,
    synth_shhs_night,
    write_synthetic_shhs,
)
from tests.tasks.shhs_spo2.conftest import HOURS

CUTS = (5.0, 15.0, 30.0)


def _csv(root: Path, visit: str) -> dict[int, dict[str, str]]:
    path = root / "datasets" / f"{visit}-dataset-{DATASET_VERSION}.csv"
    with path.open(newline="") as fh:
        return {int(r["nsrrid"]): r for r in csv.DictReader(fh)}


def _xml_events(path: Path) -> list[dict[str, str]]:
    root = ET.parse(path).getroot()
    return [{c.tag: (c.text or "") for c in ev} for ev in root.find("ScoredEvents")]


def _ahi_by_hand(path: Path, rule: str) -> float:
    """NSRR rule re-implemented from the raw XML (independent of the package's reader).

    Every apnea counts; a hypopnea counts when a desaturation of >= 3 % (rule 3a) / >= 4 %
    (rule 4) starts in [onset, end + 30 s], or (3a only) an arousal starts in [onset, end + 5 s].
    Events must start in a sleep epoch; the denominator is the time staged 1-4 or REM.
    """
    events = _xml_events(path)
    thr = 3.0 if rule == "3a" else 4.0
    concept = [e.get("EventConcept", "") for e in events]
    start = [float(e.get("Start", 0)) for e in events]
    dur = [float(e.get("Duration", 0)) for e in events]
    sleep = [
        (s, s + d)
        for c, s, d, e in zip(concept, start, dur, events)
        if e.get("EventType") == "Stages|Stages" and not c.startswith("Wake")
    ]
    desats = [
        s
        for c, s, e in zip(concept, start, events)
        if c.startswith("SpO2 desaturation")
        and float(e["SpO2Baseline"]) - float(e["SpO2Nadir"]) >= thr
    ]
    arousals = [s for c, s in zip(concept, start) if c.startswith("Arousal")]
    n = 0
    for c, s, d in zip(concept, start, dur):
        if not any(a <= s < b for a, b in sleep):
            continue
        if "apnea" in c.lower().split("|")[0]:
            n += 1
        elif c.startswith("Hypopnea"):
            if any(s <= x <= s + d + 30 for x in desats) or (
                rule == "3a" and any(s <= x <= s + d + 5 for x in arousals)
            ):
                n += 1
    return n / (sum(b - a for a, b in sleep) / 3600.0)


# ---------------------------------------------------------------------------- layout


def test_layout(dataset) -> None:
    root, records = dataset
    for rec in records:
        assert rec.edf_path == root / "polysomnography/edfs" / rec.visit / f"{rec.record_id}.edf"
        assert rec.xml_path == (
            root
            / "polysomnography/annotations-events-nsrr"
            / rec.visit
            / f"{rec.record_id}-nsrr.xml"
        )
        assert rec.edf_path.is_file() and rec.xml_path.is_file()
        assert rec.record_id == f"{rec.visit}-{rec.nsrrid}"
    s1, s2 = _csv(root, "shhs1"), _csv(root, "shhs2")
    assert sorted(s1) == list(range(200001, 200041))
    assert set(s2) < set(s1) and len(s2) >= 20  # follow-up visit of a subset of participants
    row = next(iter(s1.values()))
    for col in ("nsrrid", "ahi_a0h3a", "ahi_a0h4", "age_s1", "gender", "bmi_s1", "nsrr_age"):
        assert col in row
    assert "age_s2" in next(iter(s2.values()))
    assert not list(root.rglob("*.part"))


def test_edf_channels(dataset) -> None:
    _, records = dataset
    durations = []
    for rec in records[:8]:
        edf = edfio.read_edf(rec.edf_path)
        assert edf.labels == ("SaO2", "H.R.")
        sao2 = edf.get_signal("SaO2")
        assert sao2.sampling_frequency == 1.0 and sao2.physical_dimension == "%"
        assert sao2.physical_range == (0.0, 100.0)
        assert sao2.data.size == rec.duration_s
        assert edf.patient.name == "X"
        durations.append(rec.duration_s / 3600.0)
    # 75-112.5 % of the nominal length: fixed-length models must both truncate and pad
    assert all(0.75 * HOURS <= d <= 1.125 * HOURS for d in durations)
    assert min(durations) < HOURS < max(durations)


def test_sleepbench_readers(dataset) -> None:
    rec = dataset[1][0]
    recording = read_edf(rec.edf_path, channels={"spo2": ["SpO2", "SaO2"]})
    assert recording.signals["spo2"].name == "SaO2"
    assert recording.signals["spo2"].fs_hz == 1.0


# ---------------------------------------------------------------------------- AHI labels


def test_csv_ahi_matches_events(dataset) -> None:
    root, records = dataset
    for visit in ("shhs1", "shhs2"):
        rows = _csv(root, visit)
        for rec in (r for r in records if r.visit == visit):
            row = rows[rec.nsrrid]
            ann = read_nsrr_xml(rec.xml_path)
            assert float(row["ahi_a0h3a"]) == rec.ahi_a0h3a
            assert math.isclose(float(row["ahi_a0h3a"]), _ahi_by_hand(rec.xml_path, "3a"))
            assert math.isclose(float(row["ahi_a0h4"]), _ahi_by_hand(rec.xml_path, "4"))
            assert float(row["ahi_a0h4"]) <= float(row["ahi_a0h3a"])
            # the denominator is sleep time, not recording time
            n_counted = len(ahi_events(ann, "3a"))
            assert n_counted == pytest.approx(rec.ahi_a0h3a * ann.sleep_time_s / 3600.0)


def test_severity_classes_and_cutoffs(dataset) -> None:
    _, records = dataset
    shhs1 = [r for r in records if r.visit == "shhs1"]
    counts = np.bincount([r.severity for r in shhs1], minlength=4)
    assert np.all(counts >= 6), counts
    assert all(r.severity == severity_class(r.ahi_a0h3a) for r in records)
    # the two rules differ: the 3 %/arousal rule counts more hypopneas
    assert sum(r.ahi_a0h3a > r.ahi_a0h4 for r in shhs1) >= len(shhs1) // 2
    assert [severity_class(x) for x in (0.0, 4.99, 5.0, 14.9, 15.0, 29.9, 30.0, 80.0)] == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        3,
    ]


def test_ahi_values_crowd_the_cutoffs(dataset) -> None:
    """Many nights lie close to 5 / 15 / 30 events/h, on both sides of each cut-off."""
    ahi = np.array([r.ahi_a0h3a for r in dataset[1]])
    rel = np.min(np.abs(ahi[:, None] - np.array(CUTS)[None, :]) / np.array(CUTS), axis=1)
    assert np.mean(rel < 0.2) >= 0.3
    # ~68 nights: about two expected within 20 % on each side of each cut-off, so at least one
    for cut in CUTS:
        assert np.sum((ahi >= 0.8 * cut) & (ahi < cut)) >= 1, cut
        assert np.sum((ahi >= cut) & (ahi < 1.2 * cut)) >= 1, cut
    assert ahi.min() < 2.0 and ahi.max() > 40.0


# ---------------------------------------------------------------------------- single nights


@pytest.fixture(scope="module")
def severe_night():
    return synth_shhs_night(np.random.default_rng(5), duration_s=3 * 3600, target_ahi=40.0)


def test_events_only_in_sleep_and_spaced(severe_night) -> None:
    night = severe_night
    stages = np.array(night.stages)
    assert set(stages) <= {"W", "1", "2", "3", "4", "R"}
    resp = [e for e in night.events if "apnea" in e.label or e.label == "Hypopnea"]
    assert len(resp) > 60
    for e in resp:
        first, last = int(e.onset_s // 30), math.ceil(e.offset_s / 30) - 1
        assert np.all(stages[first : last + 1] != "W")
    spans = sorted((e.onset_s, e.offset_s) for e in resp)
    gaps = [b[0] - a[1] for a, b in zip(spans, spans[1:])]
    assert min(gaps) >= 40 - 0.2
    np.testing.assert_array_equal(night.spo2, np.round(night.spo2))  # whole %


def test_deterministic(tmp_path: Path, dataset) -> None:
    root, records = dataset
    again = write_synthetic_shhs(tmp_path, n_subjects=1, visits=("shhs1",), hours=HOURS, seed=0)
    assert again[0].xml_path.read_bytes() == records[0].xml_path.read_bytes()
    assert again[0].edf_path.read_bytes() == records[0].edf_path.read_bytes()
    other = synth_shhs_night(np.random.default_rng(6), 3 * 3600, 40.0)
    assert not np.array_equal(
        other.spo2[:1000], synth_shhs_night(np.random.default_rng(5), 3 * 3600, 40.0).spo2[:1000]
    )
