"""NSRR XML reader, respiratory helpers and AHI on a night counted by hand."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from sleepbench.errors import RecordingError
from sleepbench.io.nsrr_xml import (
    ahi_events,
    ahi_from_events,
    arousals,
    desaturations,
    read_nsrr_xml,
    respiratory_events,
    respiratory_kind,
)

RESP = "Respiratory|Respiratory"
DESAT = "SpO2 desaturation|SpO2 desaturation"


def _event(event_type: str, concept: str, start, duration, **children) -> str:
    extra = "".join(f"<{tag}>{value}</{tag}>" for tag, value in children.items())
    type_xml = f"<EventType>{event_type}</EventType>" if event_type else "<EventType/>"
    return (
        f"<ScoredEvent>{type_xml}<EventConcept>{concept}</EventConcept>"
        f"<Start>{start}</Start><Duration>{duration}</Duration>{extra}</ScoredEvent>"
    )


def _stage(concept: str, start: float, duration: float) -> str:
    return _event("Stages|Stages", concept, start, duration)


def _desat(start, duration, nadir, baseline) -> str:
    return _event(
        RESP, DESAT, start, duration, SignalLocation="SaO2", SpO2Nadir=nadir, SpO2Baseline=baseline
    )


def _hypopnea(start, duration) -> str:
    return _event(RESP, "Hypopnea|Hypopnea", start, duration, SignalLocation="ABDO RES")


def _arousal(start, duration=5.0) -> str:
    return _event("Arousals|Arousals", "Arousal|Arousal ()", start, duration, SignalLocation="C3")


def _document(events: list[str], root: str = "PSGAnnotation") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<{root}>'
        "<SoftwareVersion>Compumedics</SoftwareVersion><EpochLength>30</EpochLength>"
        f"<ScoredEvents>{''.join(events)}</ScoredEvents></{root}>"
    )


# A one-hour night. Stages (epochs of 30 s): W 10, N1 10, N2 40, S3 10, S4 10, REM 20,
# movement 1, unscored 1, W 18 -> 120 epochs, 90 of them sleep = 0.75 h.
STAGES = [
    ("Wake|0", 0, 300),
    ("Stage 1 sleep|1", 300, 300),
    ("Stage 2 sleep|2", 600, 1200),
    ("Stage 3 sleep|3", 1800, 300),
    ("Stage 4 sleep|4", 2100, 300),
    ("REM sleep|5", 2400, 600),
    ("Movement|6", 3000, 30),
    ("Unscored|9", 3030, 30),
    ("Wake|0", 3060, 540),
]
NIGHT = [
    _event("", "Recording Start Time", 0, 3600.0, ClockTime="00.00.00 22.00.00"),
    *(_stage(*s) for s in STAGES),
    # apneas: two in N2 (count), one in wake (counts only without sleep_only)
    _event(RESP, "Obstructive apnea|Obstructive Apnea", 700.0, 15.2, SignalLocation="NEW AIR"),
    _event(RESP, "Central apnea|Central Apnea", 1000.5, 12.0, SignalLocation="NEW AIR"),
    _event(RESP, "Mixed apnea|Mixed Apnea", 100.0, 11.0, SignalLocation="NEW AIR"),
    # H1 (N2): 4 % desaturation starting inside the event -> 3a and 4
    _hypopnea(1200.0, 20.0),
    _desat(1215.0, 20.0, 91, 95.0),
    # H2 (N2): 3 % desaturation starting 20 s after its end (window 30 s) -> 3a only
    _hypopnea(1400.0, 20.0),
    _desat(1440.0, 15.0, 92, 95.0),
    # H3 (N2): no desaturation, arousal 2 s after its end (window 5 s) -> 3a only
    _hypopnea(1600.0, 20.0),
    _arousal(1622.0),
    # H4 (N3): desaturation 40 s and arousal 10 s after its end -> neither
    _hypopnea(1900.0, 20.0),
    _desat(1960.0, 20.0, 90, 95.0),
    _arousal(1930.0),
    # H5 (REM): only a 2 % desaturation -> neither
    _hypopnea(2500.0, 25.4),
    _desat(2510.0, 20.0, 93, 95.0),
    # H6 (movement epoch) and H7 (wake) with 4 % desaturations -> only without sleep_only
    _hypopnea(3010.0, 10.0),
    _desat(3025.0, 12.0, 90, 94.0),
    _hypopnea(3100.0, 20.0),
    _desat(3130.0, 12.0, 90, 94.0),
    # decimal times and an artefact event, as in real SHHS files
    _event(RESP, "SpO2 artifact|SpO2 artifact", 964.8, 25.4, SignalLocation="SaO2"),
]


@pytest.fixture
def night(tmp_path) -> Path:
    path = tmp_path / "shhs1-200001-nsrr.xml"
    path.write_text(_document(NIGHT), encoding="utf-8")
    return path


def test_header_elements_and_recording_start(night):
    ann = read_nsrr_xml(night)
    assert ann.schema == "nsrr"
    assert ann.software_version == "Compumedics"
    assert ann.epoch_length_s == 30.0
    assert ann.recording_duration_s == 3600.0
    assert ann.start_clock_time == "00.00.00 22.00.00"
    assert ann.path == str(night)
    first = ann.events[0]
    assert (first.label, first.onset_s, first.duration_s) == ("Recording Start Time", 0.0, 3600.0)
    assert first.attrs == {"event_type": "", "clock_time": "00.00.00 22.00.00"}
    assert len(ann.events) == len(NIGHT)


def test_every_event_field(night):
    ann = read_nsrr_xml(night)
    apnea = next(e for e in ann.events if e.label == "Obstructive apnea")
    assert (apnea.onset_s, apnea.duration_s, apnea.channel) == (700.0, 15.2, "NEW AIR")
    assert apnea.attrs == {"event_type": "Respiratory", "code": "Obstructive Apnea"}
    desat = next(e for e in ann.events if e.label == "SpO2 desaturation")
    assert desat.channel == "SaO2"
    assert desat.attrs["spo2_nadir"] == 91.0 and isinstance(desat.attrs["spo2_nadir"], float)
    assert desat.attrs["spo2_baseline"] == 95.0
    artifact = next(e for e in ann.events if e.label == "SpO2 artifact")
    assert (artifact.onset_s, artifact.duration_s) == (964.8, 25.4)
    arousal = next(e for e in ann.events if e.label == "Arousal")
    assert arousal.attrs == {"event_type": "Arousals", "code": "Arousal ()"}
    stage = next(e for e in ann.events if e.label == "Stage 4 sleep")
    assert stage.channel is None and stage.attrs["code"] == "4"


def test_stage_runs_and_epochs(night):
    ann = read_nsrr_xml(night)
    assert ann.stages[:3] == [(0.0, 300.0, "W"), (300.0, 300.0, "N1"), (600.0, 1200.0, "N2")]
    assert [s[2] for s in ann.stages] == ["W", "N1", "N2", "N3", "N3", "REM", None, None, "W"]
    epochs = ann.epoch_stages()
    assert len(epochs) == 120
    assert Counter(epochs) == {"W": 28, "N1": 10, "N2": 40, "N3": 20, "REM": 20, None: 2}
    assert epochs[100:102] == [None, None]  # movement, unscored
    assert ann.sleep_time_s == 90 * 30
    # 60-s epochs take the label at their midpoint, i.e. of the second 30-s epoch.
    assert ann.epoch_stages(60) == [epochs[2 * i + 1] for i in range(60)]
    assert len(ann.epoch_stages(n_epochs=130)) == 130


def test_respiratory_helpers(night):
    ann = read_nsrr_xml(night)
    resp = respiratory_events(ann)
    assert [respiratory_kind(e) for e in resp] == [
        "mixed_apnea", "obstructive_apnea", "central_apnea", *["hypopnea"] * 7
    ]  # fmt: skip
    assert [e.onset_s for e in resp] == sorted(e.onset_s for e in resp)
    assert len(respiratory_events(ann, kinds=["hypopnea"])) == 7
    assert [e.onset_s for e in desaturations(ann)] == [1215, 1440, 1960, 2510, 3025, 3130]
    assert [e.onset_s for e in arousals(ann)] == [1622.0, 1930.0]
    # Stage, artefact, desaturation and arousal events are not respiratory events.
    assert all(respiratory_kind(e) is None for e in desaturations(ann) + arousals(ann))


def test_ahi_counted_by_hand(night):
    ann = read_nsrr_xml(night)
    # 3a in sleep: 2 apneas + H1, H2, H3 = 5 events over 0.75 h.
    assert ahi_from_events(ann, rule="3a") == pytest.approx(5 / 0.75)
    assert [e.onset_s for e in ahi_events(ann, "3a")] == [700.0, 1000.5, 1200.0, 1400.0, 1600.0]
    # 4 in sleep: 2 apneas + H1.
    assert ahi_from_events(ann, rule="4") == pytest.approx(3 / 0.75)
    # 3 (no arousal): + H1, H2; 4a: + H1, H3.
    assert ahi_from_events(ann, rule="3") == pytest.approx(4 / 0.75)
    assert ahi_from_events(ann, rule="4a") == pytest.approx(4 / 0.75)
    # Without the sleep restriction the wake apnea and H6, H7 count too (denominator unchanged).
    assert ahi_from_events(ann, rule="4", sleep_only=False) == pytest.approx(6 / 0.75)
    assert ahi_from_events(ann, rule="3a", sleep_only=False) == pytest.approx(8 / 0.75)
    # Windows are parameters: a 45-s desaturation window lets H4's desaturation in.
    assert ahi_from_events(ann, rule="4", desat_window_s=45) == pytest.approx(4 / 0.75)
    with pytest.raises(ValueError, match="rule"):
        ahi_from_events(ann, rule="5")  # type: ignore[arg-type]


def test_ahi_without_sleep_is_undefined(tmp_path):
    path = tmp_path / "awake.xml"
    path.write_text(_document([_stage("Wake|0", 0, 600), _hypopnea(10, 20)]), encoding="utf-8")
    with pytest.raises(RecordingError, match="no epoch is scored as sleep"):
        ahi_from_events(read_nsrr_xml(path))


def test_profusion_schema(tmp_path):
    events = "".join(
        f"<ScoredEvent><Name>{name}</Name><Start>{start}</Start><Duration>{dur}</Duration>"
        f"<Input>{channel}</Input>{extra}</ScoredEvent>"
        for name, start, dur, channel, extra in [
            ("Obstructive Apnea", 65.0, 12.0, "Airflow", ""),
            ("Hypopnea", 125.0, 20.0, "Abdo", ""),
            ("SpO2 desaturation", 140.0, 15.0, "SpO2", "<LowestSpO2>90</LowestSpO2>"
             "<Desaturation>4</Desaturation>"),
            ("Arousal (ASDA)", 200.0, 4.0, "C3", ""),
        ]
    )  # fmt: skip
    stages = "".join(f"<SleepStage>{s}</SleepStage>" for s in [0, 0, 1, 2, 2, 4, 5, 9])
    path = tmp_path / "profusion.xml"
    path.write_text(
        "<CMPStudyConfig><EpochLength>30</EpochLength>"
        f"<ScoredEvents>{events}</ScoredEvents><SleepStages>{stages}</SleepStages>"
        "</CMPStudyConfig>",
        encoding="utf-8",
    )
    ann = read_nsrr_xml(path)
    assert ann.schema == "profusion"
    assert ann.stages == [
        (0.0, 60.0, "W"), (60.0, 30.0, "N1"), (90.0, 60.0, "N2"), (150.0, 30.0, "N3"),
        (180.0, 30.0, "REM"), (210.0, 30.0, None),
    ]  # fmt: skip
    assert ann.epoch_stages() == ["W", "W", "N1", "N2", "N2", "N3", "REM", None]
    desat = desaturations(ann)[0]
    assert desat.attrs == {"spo2_nadir": 90.0, "spo2_baseline": 94.0}
    assert desat.channel == "SpO2"
    assert [e.label for e in arousals(ann)] == ["Arousal (ASDA)"]
    # 5 sleep epochs = 150 s; apnea + hypopnea with a 4 % desaturation.
    assert ahi_from_events(ann, rule="4") == pytest.approx(2 / (150 / 3600))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("<PSGAnnotation><ScoredEvents>", "malformed XML"),
        ("<Annotations><ScoredEvents/></Annotations>", "root element <Annotations>"),
        ("<PSGAnnotation><EpochLength>30</EpochLength></PSGAnnotation>", "no <ScoredEvents>"),
        (_document([_stage("Wake|0", "zero", 30)]), "Start is 'zero'"),
        (_document([_stage("Wake|0", 0, "")]), "Duration is"),
        (_document([_stage("Wake|0", 0, -30)]), r"Duration is -30.0 s, outside the allowed \[0, "),
        (_document([_stage("Stage 7 sleep|7", 0, 30)]), "unknown stage 'Stage 7 sleep'"),
        (_document([_desat(10, 10, "n/a", 95)]), "SpO2Nadir is 'n/a'"),
        (_document([]).replace(">30<", ">abc<"), "EpochLength is 'abc'"),
    ],
)
def test_bad_files_raise_recording_error(tmp_path, content, reason):
    path = tmp_path / "bad.xml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RecordingError, match=reason) as err:
        read_nsrr_xml(path)
    assert err.value.path == str(path)


def test_missing_file(tmp_path):
    with pytest.raises(RecordingError, match="file not found"):
        read_nsrr_xml(tmp_path / "none.xml")


def test_empty_scored_events_is_a_valid_empty_night(tmp_path):
    path = tmp_path / "empty.xml"
    path.write_text(_document([]), encoding="utf-8")
    ann = read_nsrr_xml(path)
    assert ann.events == [] and ann.stages == [] and ann.epoch_stages() == []
    assert ann.recording_duration_s is None


# --- hardening: numbers that would size absurd arrays are refused at read time ---------------


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            _document([_stage("Wake|0", 0, 30)]).replace(">30<", ">1e-12<", 1),
            r"EpochLength is 1e-12 s, outside the allowed \[1, 300\] s",
        ),
        (_document([_stage("Wake|0", 0, 30)]).replace(">30<", ">0<", 1), "EpochLength is 0.0 s"),
        (_document([_stage("Wake|0", "1e300", 30)]), r"Start is 1e\+300 s, outside the allowed"),
        (_document([_stage("Wake|0", 0, "1e300")]), r"Duration is 1e\+300 s, outside"),
        (_document([_stage("Wake|0", 0, 300000)]), r"Duration is 300000.0 s, outside"),
        (
            '<?xml version="1.0" encoding="UTF-8"?><CMPStudyConfig><EpochLength>300</EpochLength>'
            "<ScoredEvents/><SleepStages>"
            + "<SleepStage>0</SleepStage>" * 865
            + "</SleepStages></CMPStudyConfig>",
            r"length of the 865 SleepStage epochs is 259500.0 s, outside",
        ),
    ],
)
def test_out_of_bounds_numbers_are_refused(tmp_path, content, reason):
    path = tmp_path / "bad.xml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RecordingError, match=reason) as err:
        read_nsrr_xml(path)
    assert err.value.path == str(path)


def test_unreadable_encoding_declaration_is_a_recording_error(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_bytes(_document([]).replace("UTF-8", "UTF-16").encode())
    with pytest.raises(RecordingError, match="malformed XML"):
        read_nsrr_xml(path)
