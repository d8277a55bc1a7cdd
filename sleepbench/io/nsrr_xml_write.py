"""Write NSRR-harmonised annotation XML (``*-nsrr.xml``), the schema SHHS ships for scoring.

Layout written (as observed on real SHHS files)::

    <PSGAnnotation>
      <SoftwareVersion>Compumedics</SoftwareVersion>
      <EpochLength>30</EpochLength>
      <ScoredEvents>
        <ScoredEvent>                       first: the recording itself
          <EventType/> <EventConcept>Recording Start Time</EventConcept>
          <Start>0</Start> <Duration>32400.0</Duration> <ClockTime>00.00.00 22.00.00</ClockTime>
        </ScoredEvent>
        <ScoredEvent>                       scored events, by start time
          <EventType>Respiratory|Respiratory</EventType>
          <EventConcept>SpO2 desaturation|SpO2 desaturation</EventConcept>
          <Start>964.8</Start> <Duration>25.4</Duration> <SignalLocation>SaO2</SignalLocation>
          <SpO2Nadir>91</SpO2Nadir> <SpO2Baseline>95.0</SpO2Baseline>
        </ScoredEvent>
        ...
        <ScoredEvent>                       sleep stages as runs of 30-s epochs (no SignalLocation)
          <EventType>Stages|Stages</EventType> <EventConcept>Stage 2 sleep|2</EventConcept>
          <Start>930.0</Start> <Duration>270.0</Duration>
        </ScoredEvent>
      </ScoredEvents>
    </PSGAnnotation>

The file is written atomically (temporary file, then ``os.replace``).
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from sleepbench.recording import Event

__all__ = ["EVENT_CONCEPTS", "STAGE_CONCEPTS", "write_nsrr_xml"]

_RESP = "Respiratory|Respiratory"

#: short label -> (EventType, EventConcept, default SignalLocation) for scored events.
EVENT_CONCEPTS: dict[str, tuple[str, str, str]] = {
    "Obstructive apnea": (_RESP, "Obstructive apnea|Obstructive Apnea", "NEW AIR"),
    "Central apnea": (_RESP, "Central apnea|Central Apnea", "NEW AIR"),
    "Mixed apnea": (_RESP, "Mixed apnea|Mixed Apnea", "NEW AIR"),
    "Hypopnea": (_RESP, "Hypopnea|Hypopnea", "NEW AIR"),
    "SpO2 desaturation": (_RESP, "SpO2 desaturation|SpO2 desaturation", "SaO2"),
    "SpO2 artifact": (_RESP, "SpO2 artifact|SpO2 artifact", "SaO2"),
    "Arousal": ("Arousals|Arousals", "Arousal|Arousal ()", "EEG"),
}

#: stage name (R&K code, AASM name or NSRR concept) -> NSRR ``Stages`` EventConcept.
STAGE_CONCEPTS: dict[str, str] = {
    "W": "Wake|0",
    "Wake": "Wake|0",
    "1": "Stage 1 sleep|1",
    "N1": "Stage 1 sleep|1",
    "2": "Stage 2 sleep|2",
    "N2": "Stage 2 sleep|2",
    "3": "Stage 3 sleep|3",
    "N3": "Stage 3 sleep|3",
    "4": "Stage 4 sleep|4",
    "R": "REM sleep|5",
    "REM": "REM sleep|5",
    "M": "Movement|6",
    "Movement": "Movement|6",
    "?": "Unscored|9",
    "Unscored": "Unscored|9",
}
STAGE_CONCEPTS.update({c: c for c in list(STAGE_CONCEPTS.values())})

_CONCEPT_TO_TYPE = {concept: (etype, loc) for etype, concept, loc in EVENT_CONCEPTS.values()}


def _seconds(value: float) -> str:
    """Decimal seconds as NSRR writes them: at least one decimal (``964.8``, ``30.0``)."""
    text = f"{round(float(value), 6):.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _resolve(event: Event) -> tuple[str, str, str]:
    """(EventType, EventConcept, SignalLocation) for an event labelled by short name or concept."""
    if event.label in EVENT_CONCEPTS:
        etype, concept, loc = EVENT_CONCEPTS[event.label]
    elif event.label in _CONCEPT_TO_TYPE:
        concept = event.label
        etype, loc = _CONCEPT_TO_TYPE[concept]
    else:
        known = sorted(EVENT_CONCEPTS) + sorted(_CONCEPT_TO_TYPE)
        raise ValueError(f"no NSRR concept for event label {event.label!r}; known: {known}")
    return etype, concept, event.channel or loc


def _stage_runs(
    stages: Sequence[tuple[float, float, str]],
) -> list[tuple[float, float, str]]:
    """Merge consecutive, contiguous stage entries of one concept into a single run."""
    runs: list[tuple[float, float, str]] = []
    for onset, duration, name in sorted(stages, key=lambda s: s[0]):
        if name not in STAGE_CONCEPTS:
            raise ValueError(f"unknown stage {name!r}; known: {sorted(STAGE_CONCEPTS)}")
        concept = STAGE_CONCEPTS[name]
        if runs and runs[-1][2] == concept and abs(runs[-1][0] + runs[-1][1] - onset) < 1e-6:
            runs[-1] = (runs[-1][0], runs[-1][1] + duration, concept)
        else:
            runs.append((float(onset), float(duration), concept))
    return runs


def _add(parent: ET.Element, tag: str, text: str | None) -> None:
    ET.SubElement(parent, tag).text = text


def write_nsrr_xml(
    path: str | Path,
    events: Sequence[Event],
    stages: Sequence[tuple[float, float, str]],
    recording_duration_s: float,
    clock_time: str = "00.00.00 22.00.00",
) -> Path:
    """Write one night's scoring as an NSRR ``PSGAnnotation`` XML file.

    Args:
        path: target ``*-nsrr.xml``; parent folders are created.
        events: scored events. ``label`` is a short name (``"Obstructive apnea"``,
            ``"Central apnea"``, ``"Mixed apnea"``, ``"Hypopnea"``, ``"SpO2 desaturation"``,
            ``"SpO2 artifact"``, ``"Arousal"``) or the NSRR EventConcept itself; ``channel``
            becomes ``SignalLocation`` (default per concept: ``NEW AIR``, ``SaO2``, ``EEG``);
            ``attrs["spo2_nadir"]`` / ``attrs["spo2_baseline"]`` (%) become ``SpO2Nadir`` /
            ``SpO2Baseline`` on desaturations. Times in seconds from recording start.
        stages: ``(onset_s, duration_s, stage)`` entries, per epoch or already as runs; stage is
            an R&K code (``W 1 2 3 4 R M ?``), an AASM name (``Wake N1 N2 N3 REM``) or an NSRR
            concept (``Stage 2 sleep|2``). Contiguous entries of one stage are merged into runs.
        recording_duration_s: length of the recording in seconds (``Recording Start Time``
            event's ``Duration``).
        clock_time: wall-clock start as NSRR writes it, ``"00.00.00 HH.MM.SS"``.

    Returns:
        The written path.

    Raises:
        ValueError: an event label or stage name has no NSRR concept.
    """
    root = ET.Element("PSGAnnotation")
    _add(root, "SoftwareVersion", "Compumedics")
    _add(root, "EpochLength", "30")
    scored = ET.SubElement(root, "ScoredEvents")

    first = ET.SubElement(scored, "ScoredEvent")
    _add(first, "EventType", None)
    _add(first, "EventConcept", "Recording Start Time")
    _add(first, "Start", "0")
    _add(first, "Duration", _seconds(recording_duration_s))
    _add(first, "ClockTime", clock_time)

    for event in sorted(events, key=lambda e: (e.onset_s, e.label)):
        etype, concept, location = _resolve(event)
        node = ET.SubElement(scored, "ScoredEvent")
        _add(node, "EventType", etype)
        _add(node, "EventConcept", concept)
        _add(node, "Start", _seconds(event.onset_s))
        _add(node, "Duration", _seconds(event.duration_s))
        _add(node, "SignalLocation", location)
        if "spo2_nadir" in event.attrs:
            # Real files write the nadir integer-looking and the baseline with one decimal.
            _add(node, "SpO2Nadir", f"{float(event.attrs['spo2_nadir']):g}")
        if "spo2_baseline" in event.attrs:
            _add(node, "SpO2Baseline", f"{float(event.attrs['spo2_baseline']):.1f}")

    for onset, duration, concept in _stage_runs(stages):
        node = ET.SubElement(scored, "ScoredEvent")
        _add(node, "EventType", "Stages|Stages")
        _add(node, "EventConcept", concept)
        _add(node, "Start", _seconds(onset))
        _add(node, "Duration", _seconds(duration))

    ET.indent(root, space="")
    body = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    text = '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n' + body + "\n"

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; published files should be readable
        os.replace(tmp_name, out)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return out
