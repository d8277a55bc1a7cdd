"""Respironics RML reader (PSG-Audio): session, segments, events, user staging, bad files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sleepbench.errors import RecordingError
from sleepbench.io.rml import RESPIRATORY_CLASSES, read_rml
from sleepbench.io.rml_write import write_rml
from sleepbench.recording import Event

START = dt.datetime(2010, 5, 7, 22, 14, 3)

# As SPECS §1.8 describes real files: namespaced, ISO segment times, a machine staging block
# beside the user staging, SpO2 children, a machine-scored event, a periodic-respiration event.
HAND_WRITTEN = """<?xml version="1.0" encoding="utf-8"?>
<PatientStudy xmlns="http://www.respironics.com/PatientStudy.xsd">
  <Acquisition><Sessions><Session>
    <RecordingStart>2010-05-07T22:14:03</RecordingStart>
    <Duration>7200</Duration>
    <LightsOff>60</LightsOff>
    <LightsOn>7140</LightsOn>
    <Segments>
      <Segment><StartTime>2010-05-07T22:14:03</StartTime><Duration>3600</Duration></Segment>
      <Segment><StartTime>2010-05-07T23:24:03</StartTime><Duration>3000</Duration></Segment>
    </Segments>
  </Session></Sessions></Acquisition>
  <ScoringData>
    <Events>
      <Event Family="Respiratory" Type="ObstructiveApnea" Start="1200.5" Duration="22.4"><Input>Flow</Input></Event>
      <Event Family="Respiratory" Type="Hypopnea" Start="900" Duration="15" Machine="true"/>
      <Event Family="Respiratory" Type="PeriodicRespiration" Start="3000" Duration="300"/>
      <Event Family="SpO2" Type="RelativeDesaturation" Start="1230" Duration="20"><O2Before>95</O2Before><O2Min>89</O2Min></Event>
      <Event Family="Neuro" Type="Arousal" Start="1225" Duration="6"/>
    </Events>
    <StagingData>
      <MachineStaging><NeuroAdultAASMStaging><Stage Type="REM" Start="0"/></NeuroAdultAASMStaging></MachineStaging>
      <UserStaging><NeuroAdultAASMStaging>
        <Stage Type="Wake" Start="0"/>
        <Stage Type="NonREM1" Start="600"/>
        <Stage Type="NonREM2" Start="660"/>
        <Stage Type="NonREM4" Start="3600"/>
        <Stage Type="NotScored" Start="4200"/>
        <Stage Type="REM" Start="4230"/>
        <Stage Type="Wake" Start="6900"/>
      </NeuroAdultAASMStaging></UserStaging>
    </StagingData>
  </ScoringData>
</PatientStudy>
"""


@pytest.fixture
def hand_written(tmp_path: Path) -> Path:
    path = tmp_path / "00000995-100507.rml"
    path.write_text(HAND_WRITTEN)
    return path


def test_reads_session_events_and_user_staging(hand_written: Path) -> None:
    rml = read_rml(hand_written)
    assert rml.recording_start == START and rml.duration_s == 7200
    assert (rml.lights_off_s, rml.lights_on_s) == (60, 7140)
    assert rml.segments == [(0.0, 3600.0), (4200.0, 3000.0)]
    assert rml.gaps() == [(3600.0, 4200.0)]  # a missing hour-part, never silently closed
    assert [e.label for e in rml.events] == [
        "Hypopnea",
        "ObstructiveApnea",
        "Arousal",
        "RelativeDesaturation",
        "PeriodicRespiration",
    ]
    apnea = rml.events[1]
    assert (apnea.onset_s, apnea.duration_s, apnea.channel) == (1200.5, 22.4, "Flow")
    assert rml.events[0].attrs["machine"] is True and apnea.attrs["machine"] is False
    assert rml.events[3].attrs == {
        "family": "SpO2",
        "machine": False,
        "o2_before": 95,
        "o2_min": 89,
    }
    # periodic respiration is respiratory but not an event of the task
    assert [(e.label, c) for e, c in rml.respiratory_events()] == [
        ("Hypopnea", 1),
        ("ObstructiveApnea", 2),
    ]
    epochs = rml.epoch_stages()
    assert len(epochs) == 240
    assert epochs[0] == "W" and epochs[20] == "N1" and epochs[22] == "N2"
    assert epochs[120] == "N3" and epochs[140] is None and epochs[141] == "REM"
    assert epochs[230] == "W"  # the last change point holds to the end of the session
    assert rml.region_of_interest() == (60, 7140)  # lights off -> on
    # sleep: 600..4200 s and 4230..6900 s
    assert rml.sleep_time_s() == (4200 - 600) + (6900 - 4230)
    assert rml.sleep_time_s(0, 1200) == 600


def test_roi_falls_back_to_the_first_and_last_sleep_epoch(tmp_path: Path) -> None:
    path = write_rml(
        tmp_path / "n.rml",
        recording_start=START,
        duration_s=3000,
        stage_runs=[(0, 300, "W"), (300, 2400, "N2"), (2700, 300, "W")],
    )
    assert read_rml(path).region_of_interest() == (300, 2700)


def test_writer_and_reader_round_trip(tmp_path: Path) -> None:
    events = [
        Event(100.0, 12.0, kind, attrs={"family": "Respiratory"}) for kind in RESPIRATORY_CLASSES
    ] + [
        Event(
            50.0,
            20.0,
            "RelativeDesaturation",
            attrs={"family": "SpO2", "o2_before": 96.0, "o2_min": 90.0},
        )
    ]
    runs = [
        (0.0, 600.0, "W"),
        (600.0, 1200.0, "N2"),
        (1800.0, 600.0, "N2"),
        (2400.0, 1200.0, "REM"),
    ]
    path = write_rml(
        tmp_path / "x.rml",
        recording_start=START,
        duration_s=3600,
        events=events,
        stage_runs=runs,
        segments=[(0, 1800), (1800, 1800)],
        lights_off_s=30,
        lights_on_s=3500,
    )
    rml = read_rml(path)
    assert rml.gaps() == [] and rml.duration_s == 3600
    assert sorted(e.label for e in rml.events) == sorted(e.label for e in events)
    desat = next(e for e in rml.events if e.attrs["family"] == "SpO2")
    assert (desat.attrs["o2_before"], desat.attrs["o2_min"]) == (96.0, 90.0)
    classes = sorted(c for _, c in rml.respiratory_events())
    assert classes == sorted(c for c in RESPIRATORY_CLASSES.values() if c is not None)
    # consecutive N2 runs are one change point; the staging comes back epoch for epoch
    assert rml.stages == [(0.0, 600.0, "W"), (600.0, 1800.0, "N2"), (2400.0, 1200.0, "REM")]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t[:200], "malformed XML"),
        (lambda t: t.replace("PatientStudy", "Study"), "is not <PatientStudy>"),
        (lambda t: t.replace("<Duration>7200</Duration>", ""), "no Duration"),
        (
            lambda t: t.replace("<Duration>7200</Duration>", "<Duration>long</Duration>"),
            "not a number",
        ),
        (lambda t: t.replace("<Duration>7200</Duration>", "<Duration>1e300</Duration>"), "outside"),
        (lambda t: t.replace('Type="NonREM2"', 'Type="Stage2"'), "unknown stage type 'Stage2'"),
        (
            lambda t: t.replace('Type="ObstructiveApnea"', 'Type="Apnoea"'),
            "unknown respiratory event type",
        ),
        (lambda t: t.replace('Start="1200.5"', 'Start="1e300"'), "outside"),
        (lambda t: t.replace('Start="1200.5"', 'Start="9000"'), "starts after the session"),
        (lambda t: t.replace('Start="900"', 'Start="soon"'), "not a number"),
        (
            lambda t: t.replace("<LightsOff>60</LightsOff>", "<LightsOff>tonight</LightsOff>"),
            "not an ISO",
        ),
        (
            lambda t: t.replace("<Session>", "<Sessio>").replace("</Session>", "</Sessio>"),
            "no Acquisition",
        ),
    ],
)
def test_malformed_files_are_one_clear_recording_error(
    hand_written: Path, edit, message: str
) -> None:
    hand_written.write_text(edit(HAND_WRITTEN))
    with pytest.raises(RecordingError, match=message) as err:
        read_rml(hand_written)
    assert str(hand_written) in str(err.value)


def test_missing_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="file not found"):
        read_rml(tmp_path / "absent.rml")
    bad = tmp_path / "bad.rml"
    bad.write_bytes(b"<?xml version='1.0' encoding='utf-8'?><PatientStudy>\xff\xfe</PatientStudy>")
    with pytest.raises(RecordingError, match="malformed XML"):
        read_rml(bad)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(HAND_WRITTEN) - 1), st.integers(0, 3), st.binary(max_size=4)),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_files_read_or_raise_recording_error(tmp_path_factory, edits) -> None:
    """Byte mutations (overwrite, insert, delete, truncate) never escape as another exception."""
    data = bytearray(HAND_WRITTEN.encode())
    for position, kind, chunk in edits:
        position = min(position, len(data))
        if kind == 0:
            data[position : position + len(chunk)] = chunk
        elif kind == 1:
            data[position:position] = chunk
        elif kind == 2:
            del data[position : position + 1 + len(chunk)]
        else:
            del data[position:]
    path = tmp_path_factory.mktemp("fuzz") / "night.rml"
    path.write_bytes(bytes(data))
    try:
        rml = read_rml(path)
    except RecordingError:
        return
    rml.epoch_stages()
    rml.region_of_interest()
    rml.gaps()
