"""Philips Respironics RML annotation files (PSG-Audio ``APNEA_RML/<id>.rml``).

An RML file is namespaced XML (root ``PatientStudy``, default namespace
``http://www.respironics.com/PatientStudy.xsd``; every tag carries it). What is read
(SPECS §1.8):

- ``Acquisition/Sessions/Session``: ``RecordingStart`` (ISO date-time), ``Duration`` (s),
  ``LightsOff`` / ``LightsOn`` and ``Segments/Segment`` (``StartTime``, ``Duration``: one per
  continuous recording stretch). Times may be written as seconds from the recording start or as
  ISO date-times; both come back as seconds from the recording start.
- ``ScoringData/Events/Event`` with attributes ``Family``, ``Type``, ``Start``, ``Duration`` (s)
  and optional ``Machine="true"``, and children ``Input`` (the channel) and, for SpO2
  desaturations, ``O2Before`` / ``O2Min`` (%).
- ``ScoringData/StagingData/UserStaging/NeuroAdultAASMStaging/Stage`` (``Type``, ``Start``):
  **change points**, each stage holding until the next one (the last until the session's end).
  Only the human (``UserStaging``) scoring is read; ``MachineStaging`` is ignored.

A malformed file (not XML, wrong root, no session, a time that is not a number or outside the
night, an unknown stage or respiratory type) raises :class:`~sleepbench.errors.RecordingError`
naming the file and the problem.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from sleepbench.errors import RecordingError
from sleepbench.io.bounds import check_recording_length, check_time
from sleepbench.io.sleep_edf_labels import runs_to_epochs
from sleepbench.io.xml_parse import parse_xml
from sleepbench.recording import Event

__all__ = [
    "RESPIRATORY_CLASSES",
    "RML_NAMESPACE",
    "RML_STAGES",
    "RmlAnnotations",
    "read_rml",
]

#: The default namespace of RML files.
RML_NAMESPACE = "http://www.respironics.com/PatientStudy.xsd"

#: ``UserStaging`` stage type -> AASM label (NonREM3 and NonREM4 merge into N3; not scored -> None).
RML_STAGES: dict[str, str | None] = {
    "Wake": "W",
    "NonREM1": "N1",
    "NonREM2": "N2",
    "NonREM3": "N3",
    "NonREM4": "N3",
    "REM": "REM",
    "NotScored": None,
}

#: Respiratory event type -> frame class of SPECS §1.1 (1 hypopnea, 2 apnea); ``None``: a known
#: respiratory type that is not an apnea or hypopnea. Any other respiratory type is an error.
RESPIRATORY_CLASSES: dict[str, int | None] = {
    "ObstructiveApnea": 2,
    "CentralApnea": 2,
    "MixedApnea": 2,
    "Hypopnea": 1,
    "ObstructiveHypopnea": 1,
    "PeriodicRespiration": None,
}

_SLEEP = frozenset({"N1", "N2", "N3", "REM"})


@dataclass
class RmlAnnotations:
    """The content of one RML file; times in seconds from the recording start.

    Args:
        path: the ``.rml`` file.
        recording_start: ``RecordingStart`` (naive local date-time), ``None`` when absent.
        duration_s: the session's ``Duration``.
        lights_off_s, lights_on_s: ``LightsOff`` / ``LightsOn``, ``None`` when absent.
        segments: ``(start_s, duration_s)`` of each continuous recording stretch, by start.
        events: every scored event by onset: ``label`` the ``Type``, ``channel`` the ``Input``,
            ``attrs`` with ``family``, ``machine`` (bool) and, where given, ``o2_before`` /
            ``o2_min`` (%).
        stages: stage runs ``(onset_s, duration_s, label)`` from the user staging, label in
            W/N1/N2/N3/REM or ``None`` (not scored).
    """

    path: str
    recording_start: dt.datetime | None
    duration_s: float
    lights_off_s: float | None = None
    lights_on_s: float | None = None
    segments: list[tuple[float, float]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    stages: list[tuple[float, float, str | None]] = field(default_factory=list)

    def respiratory_events(self) -> list[tuple[Event, int]]:
        """Apneas and hypopneas with their frame class (2 apnea, 1 hypopnea), by onset."""
        out = []
        for event in self.events:
            if event.attrs.get("family") == "Respiratory":
                cls = RESPIRATORY_CLASSES[event.label]
                if cls is not None:
                    out.append((event, cls))
        return out

    def epoch_stages(self, epoch_s: float = 30.0, n_epochs: int | None = None) -> list[str | None]:
        """The user staging as one label per ``epoch_s`` epoch (``None``: not scored/uncovered).

        ``n_epochs`` defaults to the epochs the session's duration holds (rounded up).
        """
        if n_epochs is None:
            n_epochs = int(-(-self.duration_s // epoch_s))
        return runs_to_epochs(self.stages, epoch_s, n_epochs, source=self.path)

    def gaps(self, tolerance_s: float = 1.0) -> list[tuple[float, float]]:
        """Stretches ``(start_s, end_s)`` of the session no segment covers (longer than
        ``tolerance_s``); empty when the file lists no segments (one continuous recording)."""
        if not self.segments:
            return []
        out, covered = [], 0.0
        for start, duration in self.segments:
            if start - covered > tolerance_s:
                out.append((covered, start))
            covered = max(covered, start + duration)
        if self.duration_s - covered > tolerance_s:
            out.append((covered, self.duration_s))
        return out

    def region_of_interest(self, epoch_s: float = 30.0) -> tuple[float, float]:
        """The night's region of interest in seconds (SPECS §1.1 assumption).

        Lights off -> lights on when both are given, else first -> last scored sleep epoch, else
        the whole session.
        """
        if self.lights_off_s is not None and self.lights_on_s is not None:
            if self.lights_on_s > self.lights_off_s:
                return self.lights_off_s, self.lights_on_s
        epochs = self.epoch_stages(epoch_s)
        asleep = [i for i, label in enumerate(epochs) if label in _SLEEP]
        if asleep:
            return asleep[0] * epoch_s, min((asleep[-1] + 1) * epoch_s, self.duration_s)
        return 0.0, self.duration_s

    def sleep_time_s(self, start_s: float = 0.0, end_s: float | None = None) -> float:
        """Total sleep time in seconds (epochs staged N1/N2/N3/REM) whose midpoint lies in
        ``[start_s, end_s)`` (the whole session by default)."""
        end_s = self.duration_s if end_s is None else end_s
        epoch_s = 30.0
        return epoch_s * sum(
            label in _SLEEP and start_s <= (i + 0.5) * epoch_s < end_s
            for i, label in enumerate(self.epoch_stages(epoch_s))
        )


def read_rml(path: str | Path) -> RmlAnnotations:
    """Read a Respironics RML file.

    Args:
        path: the ``.rml`` file.

    Returns:
        Its session, segments, events and user staging (seconds from the recording start).

    Raises:
        RecordingError: missing file, malformed XML, a root other than ``PatientStudy``, no
            ``Session`` or session ``Duration``, a time that is not a number or lies outside the
            session, an unknown stage type or respiratory event type.
    """
    path = Path(path)
    root = parse_xml(path)
    if _local(root.tag) != "PatientStudy":
        raise RecordingError(path, f"root element <{_local(root.tag)}> is not <PatientStudy>")
    session = _find(root, "Acquisition", "Sessions", "Session")
    if session is None:
        raise RecordingError(path, "no Acquisition/Sessions/Session element")
    start = _iso(path, _text(session, "RecordingStart"), "RecordingStart", required=False)
    duration_text = _text(session, "Duration")
    if duration_text is None:
        raise RecordingError(path, "the session has no Duration")
    duration = check_recording_length(
        path, "session Duration", _number(path, duration_text, "Duration")
    )

    def when(text: str | None, what: str) -> float | None:
        """A time given as seconds or as an ISO date-time, as seconds from the start."""
        if text is None or not text.strip():
            return None
        try:
            seconds = float(text)
        except ValueError:
            moment = _iso(path, text, what, required=True)
            if start is None:
                raise RecordingError(
                    path, f"{what} is a date-time but RecordingStart is missing"
                ) from None
            seconds = (moment - start).total_seconds()
        return check_time(path, what, seconds)

    segments = []
    for seg in _children(_find(session, "Segments"), "Segment"):
        seg_start = when(_text(seg, "StartTime"), "Segment StartTime")
        seg_len = check_time(
            path, "Segment Duration", _number(path, _text(seg, "Duration"), "Segment Duration")
        )
        if seg_start is None:
            raise RecordingError(path, "a Segment has no StartTime")
        segments.append((seg_start, seg_len))

    scoring = _find(root, "ScoringData")
    events = [_event(path, el, duration) for el in _children(_find(scoring, "Events"), "Event")]
    staging = _find(scoring, "StagingData", "UserStaging", "NeuroAdultAASMStaging")
    return RmlAnnotations(
        path=str(path),
        recording_start=start,
        duration_s=duration,
        lights_off_s=when(_text(session, "LightsOff"), "LightsOff"),
        lights_on_s=when(_text(session, "LightsOn"), "LightsOn"),
        segments=sorted(segments),
        events=sorted(events, key=lambda e: e.onset_s),
        stages=_stage_runs(path, _children(staging, "Stage"), duration),
    )


# --------------------------------------------------------------------------------------------
# parsing helpers (namespace-agnostic: real files are namespaced, hand-written ones may not be)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _children(parent: ET.Element | None, name: str) -> list[ET.Element]:
    return [] if parent is None else [c for c in parent if _local(c.tag) == name]


def _find(parent: ET.Element | None, *names: str) -> ET.Element | None:
    node = parent
    for name in names:
        found = _children(node, name)
        node = found[0] if found else None
    return node


def _text(parent: ET.Element, name: str) -> str | None:
    node = _find(parent, name)
    return None if node is None or node.text is None else node.text.strip()


def _number(path: Path, text: str | None, what: str) -> float:
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise RecordingError(path, f"{what} is {text!r}, not a number") from None


def _iso(path: Path, text: str | None, what: str, *, required: bool) -> dt.datetime | None:
    if text is None or not text.strip():
        if required:
            raise RecordingError(path, f"{what} is missing")
        return None
    try:
        return dt.datetime.fromisoformat(text.strip()).replace(tzinfo=None)
    except ValueError:
        raise RecordingError(path, f"{what} is {text!r}, not an ISO date-time") from None


def _event(path: Path, el: ET.Element, session_s: float) -> Event:
    family, kind = el.get("Family", ""), el.get("Type", "")
    onset = check_time(
        path, f"Start of {family}/{kind} event", _number(path, el.get("Start"), "event Start")
    )
    length = check_time(
        path,
        f"Duration of {family}/{kind} event",
        _number(path, el.get("Duration", "0"), "event Duration"),
    )
    if onset > session_s:
        raise RecordingError(
            path, f"{family}/{kind} event at {onset:g} s starts after the session's {session_s:g} s"
        )
    if family == "Respiratory" and kind not in RESPIRATORY_CLASSES:
        raise RecordingError(
            path,
            f"unknown respiratory event type {kind!r} at {onset:g} s; known: {sorted(RESPIRATORY_CLASSES)}",
        )
    attrs: dict[str, object] = {
        "family": family,
        "machine": el.get("Machine", "").lower() == "true",
    }
    for tag, key in (("O2Before", "o2_before"), ("O2Min", "o2_min")):
        value = _text(el, tag)
        if value is not None:
            attrs[key] = _number(path, value, tag)
    return Event(
        onset_s=onset, duration_s=length, label=kind, channel=_text(el, "Input"), attrs=attrs
    )


def _stage_runs(
    path: Path, stages: list[ET.Element], session_s: float
) -> list[tuple[float, float, str | None]]:
    """Change points -> runs: each stage lasts until the next start, the last until the end."""
    points = []
    for el in stages:
        kind = el.get("Type", "")
        if kind not in RML_STAGES:
            raise RecordingError(path, f"unknown stage type {kind!r}; known: {sorted(RML_STAGES)}")
        onset = check_time(
            path, f"Start of stage {kind}", _number(path, el.get("Start"), "stage Start")
        )
        points.append((onset, RML_STAGES[kind]))
    points.sort(key=lambda p: p[0])
    runs = []
    for i, (onset, label) in enumerate(points):
        end = points[i + 1][0] if i + 1 < len(points) else max(session_s, onset)
        runs.append((onset, end - onset, label))
    return runs
