"""NSRR annotation XML reader (SHHS, MESA, ...) and an AHI computed from its scored events.

Two schemas are read:

- **NSRR XML** (``annotations-events-nsrr``): root ``PSGAnnotation`` with ``SoftwareVersion``,
  ``EpochLength`` and ``ScoredEvents``. Each ``ScoredEvent`` has ``EventType`` and
  ``EventConcept`` written ``name|code`` (``Respiratory|Respiratory``,
  ``Obstructive apnea|Obstructive Apnea``, ``Stage 2 sleep|2``), decimal-second ``Start`` and
  ``Duration``, and optionally ``SignalLocation`` (the channel), ``SpO2Nadir`` and
  ``SpO2Baseline`` (desaturations) and ``ClockTime`` (on the first event, ``Recording Start
  Time``, whose ``Duration`` is the recording length). Sleep stages are *runs*: one ``Stages``
  event spans consecutive epochs of one stage.
- **Compumedics Profusion XML** (``annotations-events-profusion``): root ``CMPStudyConfig`` with
  ``EpochLength``, ``ScoredEvents`` (``Name``, ``Start``, ``Duration``, ``Input``,
  ``LowestSpO2``, ``Desaturation``) and ``SleepStages`` holding one integer per epoch.

Both come back as :class:`NsrrAnnotations`. Stage codes follow NSRR/Profusion: 0 wake, 1-4 R&K
stages (3 and 4 -> N3), 5 REM, 6 movement and 9 unscored (-> ``None``).

The AHI here (:func:`ahi_from_events`, in :mod:`sleepbench.io.nsrr_events` with the other
event selections) recomputes NSRR's ``ahi_a0h3a`` / ``ahi_a0h4`` from the
events. NSRR documents that SHHS annotation files do not always match the dataset's summary
variables (desaturations were altered by a software conversion), so the harmonised CSV value is
the reference label for real SHHS nights; this function serves synthetic nights and checks.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sleepbench.errors import RecordingError
from sleepbench.io.bounds import check_epoch_length, check_recording_length, check_time
from sleepbench.io.nsrr_events import (
    SLEEP_LABELS,
    RespiratoryKind,
    ahi_events,
    ahi_from_events,
    arousals,
    desaturations,
    respiratory_events,
    respiratory_kind,
)
from sleepbench.io.sleep_edf_labels import runs_to_epochs
from sleepbench.io.xml_parse import parse_xml
from sleepbench.recording import Event

__all__ = [
    "SLEEP_LABELS",
    "NsrrAnnotations",
    "RespiratoryKind",
    "ahi_events",
    "ahi_from_events",
    "arousals",
    "desaturations",
    "read_nsrr_xml",
    "respiratory_events",
    "respiratory_kind",
]

#: Stage code (NSRR ``EventConcept`` code or Profusion ``SleepStage``) -> AASM label.
STAGE_CODES: dict[str, str | None] = {
    "0": "W",
    "1": "N1",
    "2": "N2",
    "3": "N3",
    "4": "N3",
    "5": "REM",
    "6": None,  # movement
    "9": None,  # unscored
}
# Stage concept names, for files whose concept carries no code.
_STAGE_NAMES: dict[str, str | None] = {
    "wake": "W",
    "stage 1 sleep": "N1",
    "stage 2 sleep": "N2",
    "stage 3 sleep": "N3",
    "stage 4 sleep": "N3",
    "rem sleep": "REM",
    "movement": None,
    "unscored": None,
}
RECORDING_START = "Recording Start Time"
_DEFAULT_EPOCH_S = 30.0
_KNOWN_TAGS = {
    "EventType",
    "EventConcept",
    "Name",
    "Start",
    "Duration",
    "SignalLocation",
    "Input",
    "SpO2Nadir",
    "SpO2Baseline",
    "LowestSpO2",
    "Desaturation",
    "ClockTime",
}


@dataclass
class NsrrAnnotations:
    """The content of one NSRR (or Profusion) annotation XML.

    Args:
        path: the XML file.
        events: every ``ScoredEvent`` in file order. ``label`` is the concept name
            (``"Obstructive apnea"``, ``"Stage 2 sleep"``, ``"Recording Start Time"``);
            ``channel`` the ``SignalLocation`` / ``Input``; ``attrs`` holds ``event_type``
            (the ``EventType`` name, ``""`` when empty; absent for Profusion), ``code`` (the
            concept code), ``spo2_nadir`` / ``spo2_baseline`` (floats, %), ``clock_time`` and
            any other child element as its raw text under its tag name.
        stages: stage runs ``(onset_s, duration_s, label)`` with ``label`` in
            W/N1/N2/N3/REM or ``None`` (movement, unscored).
        epoch_length_s: ``EpochLength`` in seconds (30 when the file has none).
        recording_duration_s: ``Duration`` of the ``Recording Start Time`` event (``None``
            when absent).
        start_clock_time: its ``ClockTime`` (``"00.00.00 22.00.00"``), or ``None``.
        software_version: ``SoftwareVersion`` (``"Compumedics"``), or ``None``.
        schema: ``"nsrr"`` or ``"profusion"``.
    """

    path: str
    events: list[Event]
    stages: list[tuple[float, float, str | None]]
    epoch_length_s: float = _DEFAULT_EPOCH_S
    recording_duration_s: float | None = None
    start_clock_time: str | None = None
    software_version: str | None = None
    schema: Literal["nsrr", "profusion"] = "nsrr"

    def epoch_stages(
        self, epoch_s: float | None = None, n_epochs: int | None = None
    ) -> list[str | None]:
        """Expand the stage runs into one label per epoch.

        Args:
            epoch_s: epoch length in seconds (default ``epoch_length_s``).
            n_epochs: output length; ``None`` ends at the last stage run, a larger value pads
                with ``None``, a smaller one truncates.

        Returns:
            Labels W/N1/N2/N3/REM, ``None`` for movement, unscored and unstaged epochs.
        """
        epoch_s = self.epoch_length_s if epoch_s is None else float(epoch_s)
        return runs_to_epochs(self.stages, epoch_s, n_epochs, source=self.path)

    @property
    def sleep_time_s(self) -> float:
        """Total sleep time in seconds: epochs staged N1, N2, N3 or REM."""
        epochs = self.epoch_stages()
        return sum(label in SLEEP_LABELS for label in epochs) * self.epoch_length_s


def read_nsrr_xml(path: str | Path) -> NsrrAnnotations:
    """Read an NSRR ``PSGAnnotation`` or Profusion ``CMPStudyConfig`` annotation XML.

    Args:
        path: the ``.xml`` file.

    Returns:
        The file's events, stage runs, epoch length and recording duration (seconds).

    Raises:
        RecordingError: missing file, malformed XML, an unknown root element, no
            ``ScoredEvents`` element, a non-numeric SpO2 value, an ``EpochLength``,
            ``Start`` or ``Duration`` outside :mod:`sleepbench.io.bounds` (epochs of 1-300 s,
            times from 0 to the longest recording), a Profusion ``SleepStages`` list longer
            than that, or an unknown stage code.
    """
    path = Path(path)
    root = parse_xml(path)
    if root.tag not in ("PSGAnnotation", "CMPStudyConfig"):
        raise RecordingError(
            path,
            f"root element <{root.tag}> is neither <PSGAnnotation> (NSRR) "
            "nor <CMPStudyConfig> (Profusion)",
        )
    scored = root.find("ScoredEvents")
    if scored is None:
        raise RecordingError(path, f"no <ScoredEvents> element under <{root.tag}>")
    epoch_s = _epoch_length(path, root)
    profusion = root.tag == "CMPStudyConfig"
    events = [_parse_event(path, i, el, profusion) for i, el in enumerate(scored)]

    if profusion:
        stages = _profusion_stage_runs(path, root, epoch_s)
    else:
        stages = [
            (e.onset_s, e.duration_s, _stage_label(path, e))
            for e in events
            if e.attrs.get("event_type", "").lower() == "stages"
        ]
    start = next((e for e in events if e.label == RECORDING_START), None)
    version = root.findtext("SoftwareVersion")
    return NsrrAnnotations(
        path=str(path),
        events=events,
        stages=sorted(stages, key=lambda run: run[0]),
        epoch_length_s=epoch_s,
        recording_duration_s=start.duration_s if start is not None else None,
        start_clock_time=start.attrs.get("clock_time") if start is not None else None,
        software_version=version.strip() if version is not None else None,
        schema="profusion" if profusion else "nsrr",
    )


# --------------------------------------------------------------------------------------------
# parsing helpers


def _epoch_length(path: Path, root: ET.Element) -> float:
    text = root.findtext("EpochLength")
    if text is None or not text.strip():
        return _DEFAULT_EPOCH_S
    return check_epoch_length(path, "EpochLength", _number(path, text, "EpochLength"))


def _number(path: Path, text: str | None, what: str) -> float:
    try:
        value = float(text.strip()) if text is not None else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise RecordingError(path, f"{what} is {text!r}, not a number")
    return value


def _split(text: str | None) -> tuple[str, str | None]:
    """``"Stage 2 sleep|2"`` -> ``("Stage 2 sleep", "2")``; no ``|`` -> ``(text, None)``."""
    text = (text or "").strip()
    name, sep, code = text.partition("|")
    return name.strip(), (code.strip() if sep else None)


def _parse_event(path: Path, index: int, el: ET.Element, profusion: bool) -> Event:
    if profusion:
        label, code = (el.findtext("Name") or "").strip(), None
        attrs: dict[str, Any] = {}
        channel = el.findtext("Input")
    else:
        label, code = _split(el.findtext("EventConcept"))
        event_type, _ = _split(el.findtext("EventType"))
        attrs = {"event_type": event_type}
        channel = el.findtext("SignalLocation")
    where = f"ScoredEvent #{index} ({label or 'no name'})"
    onset = check_time(
        path, f"{where}: Start", _number(path, el.findtext("Start"), f"{where}: Start")
    )
    duration = check_time(
        path, f"{where}: Duration", _number(path, el.findtext("Duration"), f"{where}: Duration")
    )
    if code is not None:
        attrs["code"] = code

    if profusion:
        nadir = el.findtext("LowestSpO2")
        drop = el.findtext("Desaturation")
        if nadir is not None and nadir.strip():
            attrs["spo2_nadir"] = _number(path, nadir, f"{where}: LowestSpO2")
            if drop is not None and drop.strip():
                attrs["spo2_baseline"] = attrs["spo2_nadir"] + _number(
                    path, drop, f"{where}: Desaturation"
                )
    else:
        for tag, key in (("SpO2Nadir", "spo2_nadir"), ("SpO2Baseline", "spo2_baseline")):
            text = el.findtext(tag)
            if text is not None and text.strip():
                attrs[key] = _number(path, text, f"{where}: {tag}")
    clock = el.findtext("ClockTime")
    if clock is not None and clock.strip():
        attrs["clock_time"] = clock.strip()
    for child in el:
        if child.tag not in _KNOWN_TAGS and child.text is not None and child.text.strip():
            attrs[child.tag] = child.text.strip()

    channel = channel.strip() if channel is not None and channel.strip() else None
    return Event(onset_s=onset, duration_s=duration, label=label, channel=channel, attrs=attrs)


def _stage_label(path: Path, event: Event) -> str | None:
    code = event.attrs.get("code")
    if code is not None and code in STAGE_CODES:
        return STAGE_CODES[code]
    name = event.label.lower()
    if name in _STAGE_NAMES:
        return _STAGE_NAMES[name]
    raise RecordingError(
        path, f"unknown stage {event.label!r} (code {code!r}) at {event.onset_s:g} s"
    )


def _profusion_stage_runs(
    path: Path, root: ET.Element, epoch_s: float
) -> list[tuple[float, float, str | None]]:
    """Profusion's one-integer-per-epoch ``SleepStages`` list, merged into runs."""
    block = root.find("SleepStages")
    if block is None:
        return []
    epochs = block.findall("SleepStage")
    check_recording_length(
        path, f"length of the {len(epochs)} SleepStage epochs", len(epochs) * epoch_s
    )
    runs: list[tuple[float, float, str | None]] = []
    for i, el in enumerate(epochs):
        code = (el.text or "").strip()
        if code not in STAGE_CODES:
            raise RecordingError(path, f"unknown SleepStage {code!r} at epoch {i}")
        label = STAGE_CODES[code]
        if runs and runs[-1][2] == label:
            onset, duration, _ = runs[-1]
            runs[-1] = (onset, duration + epoch_s, label)
        else:
            runs.append((i * epoch_s, epoch_s, label))
    return runs
