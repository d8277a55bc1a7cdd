"""Sleep-EDF hypnogram labels and PSG/hypnogram pairing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import edfio
import numpy as np
import pytest

from sleepbench.errors import RecordingError
from sleepbench.io.sleep_edf_labels import (
    AASM_LABELS,
    STAGE_MAP,
    hypnogram_to_epochs,
    pair_psg_hypnogram,
    read_hypnogram,
    runs_to_epochs,
)
from sleepbench.recording import Event


def test_stage_map_merges_rk_stages_into_aasm():
    assert STAGE_MAP["Sleep stage 3"] == STAGE_MAP["Sleep stage 4"] == "N3"
    assert STAGE_MAP["Sleep stage R"] == "REM"
    assert STAGE_MAP["Sleep stage ?"] is None and STAGE_MAP["Movement time"] is None
    assert {v for v in STAGE_MAP.values() if v is not None} == set(AASM_LABELS)


def test_hypnogram_runs_expand_to_epochs():
    events = [
        Event(0, 60, "Sleep stage W"),
        Event(60, 30, "Sleep stage 1"),
        Event(90, 90, "Sleep stage 4"),
        Event(180, 30, "Movement time"),
        Event(210, 30, "Sleep stage R"),
        # gap of one epoch (240-270 s) left unscored
        Event(270, 30, "Sleep stage 3"),
    ]
    assert hypnogram_to_epochs(events) == [
        "W", "W", "N1", "N3", "N3", "N3", None, "REM", None, "N3"
    ]  # fmt: skip
    assert hypnogram_to_epochs(events, n_epochs=4) == ["W", "W", "N1", "N3"]
    assert hypnogram_to_epochs(events, n_epochs=12)[-3:] == ["N3", None, None]
    # 60-s epochs: each takes the run covering its midpoint.
    assert hypnogram_to_epochs(events, epoch_s=60) == ["W", "N3", "N3", "REM", "N3"]


def test_unknown_annotation_is_named():
    with pytest.raises(RecordingError, match="'Lights off'") as err:
        hypnogram_to_epochs([Event(0, 30, "Sleep stage W"), Event(30, 0, "Lights off")])
    assert err.value.path == "<hypnogram>"


def test_overlapping_runs_are_rejected():
    with pytest.raises(RecordingError, match="overlap at epoch 1"):
        runs_to_epochs([(0, 60, "W"), (30, 30, "N1")])
    # An identical label over the same epoch is harmless (duplicated annotation).
    assert runs_to_epochs([(0, 60, "W"), (30, 30, "W")]) == ["W", "W"]


def test_misaligned_runs_use_the_epoch_midpoint():
    # Run boundaries at 40 s and 95 s: epoch 0 (mid 15) W, epoch 1 (mid 45) N1,
    # epoch 2 (mid 75) N1, epoch 3 (mid 105) N2.
    assert runs_to_epochs([(0, 40, "W"), (40, 55, "N1"), (95, 25, "N2")]) == [
        "W", "N1", "N1", "N2"
    ]  # fmt: skip


@pytest.mark.samples
def test_real_hypnogram_epoch_counts(samples_dir):
    """SC4001EC: 154 contiguous runs from 0 to 86400 s, every boundary on the 30-s grid.

    Hand count (sum of run durations / 30 s per annotation text): W 1997, stage 1 58,
    stage 2 250, stage 3 101 + stage 4 119 = N3 220, R 125, '?' 230; total 2880 epochs = 24 h.
    """
    labels = read_hypnogram(samples_dir / "sleep_edf" / "SC4001EC-Hypnogram.edf")
    assert len(labels) == 2880
    assert Counter(labels) == {"W": 1997, "N1": 58, "N2": 250, "N3": 220, "REM": 125, None: 230}
    assert labels[:1021] == ["W"] * 1021  # 'Sleep stage W' 0-30630 s
    assert labels[1021:1025] == ["N1"] * 4  # 'Sleep stage 1' 30630-30750 s
    assert labels[-230:] == [None] * 230  # trailing 'Sleep stage ?' 79500-86400 s


def _touch_edf(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    edfio.Edf([edfio.EdfSignal(np.arange(10.0), 1, label="x")]).write(path)


def test_pairing_follows_the_physionet_naming_rule(tmp_path):
    names = [
        "sleep-cassette/SC4001E0-PSG.edf",
        "sleep-cassette/SC4001EC-Hypnogram.edf",
        "sleep-cassette/SC4002E0-PSG.edf",
        "sleep-cassette/SC4002EC-Hypnogram.edf",
        "sleep-cassette/SC4272F0-PSG.edf",
        "sleep-cassette/SC4272FM-Hypnogram.edf",
        "sleep-telemetry/ST7011J0-PSG.edf",
        "sleep-telemetry/ST7011JP-Hypnogram.edf",
        "sleep-telemetry/ST7012J0-PSG.edf",
        "sleep-telemetry/ST7012JO-Hypnogram.edf",
        "README.txt",
    ]
    for name in names:
        _touch_edf(tmp_path / name)
    pairs = pair_psg_hypnogram(tmp_path)
    assert [(p.record_id, p.subject_id, p.night) for p in pairs] == [
        ("SC4001E0", "SC400", 1),
        ("SC4002E0", "SC400", 2),
        ("SC4272F0", "SC427", 2),
        ("ST7011J0", "ST701", 1),
        ("ST7012J0", "ST701", 2),
    ]
    assert pairs[0].psg_path == tmp_path / "sleep-cassette/SC4001E0-PSG.edf"
    assert pairs[0].hyp_path == tmp_path / "sleep-cassette/SC4001EC-Hypnogram.edf"
    psg, hyp, record_id, subject_id, night = pairs[3]  # plain tuple unpacking works
    assert hyp.name == "ST7011JP-Hypnogram.edf" and night == 1


def test_pairing_orphans_and_ambiguity(tmp_path):
    _touch_edf(tmp_path / "SC4001E0-PSG.edf")
    _touch_edf(tmp_path / "SC4001EC-Hypnogram.edf")
    _touch_edf(tmp_path / "SC4011E0-PSG.edf")  # no hypnogram
    with pytest.raises(RecordingError, match="SC4011E0-PSG.edf"):
        pair_psg_hypnogram(tmp_path)
    assert [p.record_id for p in pair_psg_hypnogram(tmp_path, strict=False)] == ["SC4001E0"]
    _touch_edf(tmp_path / "SC4001EH-Hypnogram.edf")  # a second scorer for the same night
    with pytest.raises(RecordingError, match="several hypnograms"):
        pair_psg_hypnogram(tmp_path, strict=False)
    with pytest.raises(RecordingError, match="not found"):
        pair_psg_hypnogram(tmp_path / "missing")


# --- hardening: bounded runs, TALs that do not parse ---------------------------------------------


@pytest.mark.parametrize(
    ("runs", "reason"),
    [
        ([(1e300, 30, "W")], r"onset of stage run 'W' is 1e\+300 s, outside the allowed \[0, "),
        ([(0, float("inf"), "W")], "duration of stage run 'W' at 0 s is inf s"),
        ([(float("nan"), 30, "W")], "onset of stage run 'W' is nan s"),
        ([(-30, 30, "N1")], "onset of stage run 'N1' is -30 s"),
    ],
)
def test_runs_out_of_bounds_are_refused_before_allocating(runs, reason):
    with pytest.raises(RecordingError, match=reason) as err:
        runs_to_epochs(runs, source="night.xml")
    assert err.value.path == "night.xml"


@pytest.mark.parametrize("epoch_s", [1e-12, 0.0, -30.0, 301.0, float("nan")])
def test_epoch_length_out_of_bounds_is_refused(epoch_s):
    with pytest.raises(
        RecordingError, match=r"epoch length is .* s, outside the allowed \[1, 300\]"
    ):
        runs_to_epochs([(0, 30, "W")], epoch_s=epoch_s)


def test_hypnogram_without_annotations_is_refused():
    with pytest.raises(RecordingError, match="hypnogram holds no stage annotation"):
        hypnogram_to_epochs([], n_epochs=10, source="h.edf")


@pytest.mark.samples
@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        # edfio skipped a TAL whose onset does not parse: its 4 epochs became unscored.
        (b"+30630\x15120\x14", b"+306x0\x15120\x14", "malformed TAL"),
        (b"\x14Sleep stage 1\x14", b"\x14Sleep stage \xb9\x14", "not printable UTF-8"),
    ],
)
def test_real_hypnogram_with_a_corrupt_tal_is_refused(samples_dir, tmp_path, old, new, reason):
    raw = (samples_dir / "sleep_edf" / "SC4001EC-Hypnogram.edf").read_bytes()
    assert old in raw and len(old) == len(new)
    path = tmp_path / "SC4001EC-Hypnogram.edf"
    path.write_bytes(raw.replace(old, new, 1))
    with pytest.raises(RecordingError, match=reason) as err:
        read_hypnogram(path)
    assert err.value.path == str(path)
