"""NSRR XML writer: exact schema, stage runs, number formats, and a read-back with the reader."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sleepbench.io.nsrr_xml_write import write_nsrr_xml
from sleepbench.recording import Event

EVENTS = [
    Event(964.8, 25.4, "Obstructive apnea"),
    Event(980.0, 30.0, "SpO2 desaturation", attrs={"spo2_nadir": 91.0, "spo2_baseline": 95.0}),
    Event(991.0, 6.5, "Arousal"),
    Event(1200.0, 12.0, "Hypopnea", channel="ABDO RES"),
    Event(1300.0, 14.0, "Central apnea|Central Apnea"),
    Event(2000.0, 8.0, "SpO2 artifact"),
]
# per-epoch stages: W W 1 2 2 2 3 4 R R
STAGES = [(i * 30.0, 30.0, s) for i, s in enumerate("W W 1 2 2 2 3 4 R R".split())]


@pytest.fixture
def xml_path(tmp_path: Path) -> Path:
    return write_nsrr_xml(
        tmp_path / "shhs1-200001-nsrr.xml", EVENTS, STAGES, 3000.0, "00.00.00 22.30.00"
    )


def _scored(path: Path) -> list[dict[str, str | None]]:
    root = ET.parse(path).getroot()
    return [{c.tag: c.text for c in ev} for ev in root.find("ScoredEvents")]


def test_root_and_header(xml_path: Path) -> None:
    assert xml_path.read_text().startswith('<?xml version="1.0" encoding="UTF-8"')
    root = ET.parse(xml_path).getroot()
    assert root.tag == "PSGAnnotation"
    assert [c.tag for c in root] == ["SoftwareVersion", "EpochLength", "ScoredEvents"]
    assert root.findtext("SoftwareVersion") == "Compumedics"
    assert root.findtext("EpochLength") == "30"
    first = _scored(xml_path)[0]
    assert first == {
        "EventType": None,
        "EventConcept": "Recording Start Time",
        "Start": "0",
        "Duration": "3000.0",
        "ClockTime": "00.00.00 22.30.00",
    }


def test_event_concepts_and_fields(xml_path: Path) -> None:
    events = [e for e in _scored(xml_path)[1:] if e["EventType"] != "Stages|Stages"]
    assert [(e["EventType"], e["EventConcept"], e["SignalLocation"]) for e in events] == [
        ("Respiratory|Respiratory", "Obstructive apnea|Obstructive Apnea", "NEW AIR"),
        ("Respiratory|Respiratory", "SpO2 desaturation|SpO2 desaturation", "SaO2"),
        ("Arousals|Arousals", "Arousal|Arousal ()", "EEG"),
        ("Respiratory|Respiratory", "Hypopnea|Hypopnea", "ABDO RES"),
        ("Respiratory|Respiratory", "Central apnea|Central Apnea", "NEW AIR"),
        ("Respiratory|Respiratory", "SpO2 artifact|SpO2 artifact", "SaO2"),
    ]
    assert (events[0]["Start"], events[0]["Duration"]) == ("964.8", "25.4")
    assert (events[1]["SpO2Nadir"], events[1]["SpO2Baseline"]) == ("91", "95.0")
    assert "SpO2Nadir" not in events[0]


def test_stages_written_as_runs(xml_path: Path) -> None:
    stages = [e for e in _scored(xml_path) if e["EventType"] == "Stages|Stages"]
    assert [(s["EventConcept"], s["Start"], s["Duration"]) for s in stages] == [
        ("Wake|0", "0.0", "60.0"),
        ("Stage 1 sleep|1", "60.0", "30.0"),
        ("Stage 2 sleep|2", "90.0", "90.0"),
        ("Stage 3 sleep|3", "180.0", "30.0"),
        ("Stage 4 sleep|4", "210.0", "30.0"),
        ("REM sleep|5", "240.0", "60.0"),
    ]
    assert all("SignalLocation" not in s for s in stages)


def test_unknown_labels_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Snore"):
        write_nsrr_xml(tmp_path / "x.xml", [Event(0, 1, "Snore")], STAGES, 300.0)
    with pytest.raises(ValueError, match="N5"):
        write_nsrr_xml(tmp_path / "x.xml", [], [(0.0, 30.0, "N5")], 300.0)
    assert not list(tmp_path.iterdir())


def test_reader_roundtrip(xml_path: Path) -> None:
    nsrr = pytest.importorskip("sleepbench.io.nsrr_xml")
    ann = nsrr.read_nsrr_xml(xml_path)
    assert ann.recording_duration_s == 3000.0
    assert ann.start_clock_time == "00.00.00 22.30.00"
    assert ann.epoch_stages() == ["W", "W", "N1", "N2", "N2", "N2", "N3", "N3", "REM", "REM"]
    desat = nsrr.desaturations(ann)[0]
    assert (desat.attrs["spo2_baseline"], desat.attrs["spo2_nadir"]) == (95.0, 91.0)
    kinds = [nsrr.respiratory_kind(e) for e in nsrr.respiratory_events(ann)]
    assert kinds == ["obstructive_apnea", "hypopnea", "central_apnea"]
