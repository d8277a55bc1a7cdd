"""EDF+ annotations: agreement with mne and edfio, plain EDF and EDF+D, the real Sleep-EDF
hypnogram, and malformed TALs (time-stamped annotation lists)."""

from __future__ import annotations

import datetime

import edfio
import mne
import numpy as np
import pytest

from sleepbench.errors import RecordingError
from sleepbench.io.edf import read_edf, read_edf_annotations, read_edf_header
from tests.io.edf_files import make_signals, write_edf_file


def test_edf_plus_annotations_match_mne(tmp_path, rng):
    path = tmp_path / "annot.edf"
    written = [
        edfio.EdfAnnotation(0.0, 30.0, "Sleep stage W"),
        edfio.EdfAnnotation(30.0, 60.0, "Sleep stage 2"),
        edfio.EdfAnnotation(41.5, None, "Arousal"),
    ]
    write_edf_file(path, {"SaO2": make_signals(rng)["SaO2"]}, annotations=written)
    events = read_edf_annotations(path)
    assert [(e.onset_s, e.duration_s, e.label) for e in events] == [
        (0.0, 30.0, "Sleep stage W"),
        (30.0, 60.0, "Sleep stage 2"),
        (41.5, 0.0, "Arousal"),
    ]
    ref = mne.read_annotations(path)
    np.testing.assert_allclose([e.onset_s for e in events], ref.onset)
    assert [e.label for e in events] == list(ref.description)
    assert read_edf_header(path)["edf_plus"] == "EDF+C"
    rec = read_edf(path)
    assert list(rec.signals) == ["SaO2"]  # the annotation signal is not a channel
    assert rec.events == events


def test_plain_edf_has_no_annotations(tmp_path, rng):
    path = tmp_path / "plain.edf"
    write_edf_file(path, {"SaO2": make_signals(rng)["SaO2"]})
    assert read_edf_header(path)["edf_plus"] is None
    with pytest.raises(RecordingError, match="plain EDF"):
        read_edf_annotations(path)


def test_discontinuous_edf_plus_is_rejected(tmp_path, rng):
    path = tmp_path / "d.edf"
    write_edf_file(
        path, {"SaO2": make_signals(rng)["SaO2"]}, annotations=[edfio.EdfAnnotation(1, 1, "x")]
    )
    raw = bytearray(path.read_bytes())
    raw[192:197] = b"EDF+D"
    path.write_bytes(bytes(raw))
    with pytest.raises(RecordingError, match="EDF\\+D"):
        read_edf(path)


@pytest.mark.samples
def test_real_sleep_edf_hypnogram_matches_mne(samples_dir):
    path = samples_dir / "sleep_edf" / "SC4001EC-Hypnogram.edf"
    events = read_edf_annotations(path)
    assert len(events) == 154
    assert (events[0].onset_s, events[0].duration_s, events[0].label) == (
        0.0,
        30630.0,
        "Sleep stage W",
    )
    assert (events[-1].onset_s, events[-1].duration_s, events[-1].label) == (
        79500.0,
        6900.0,
        "Sleep stage ?",
    )
    ref = mne.read_annotations(path)
    np.testing.assert_array_equal([e.onset_s for e in events], ref.onset)
    np.testing.assert_array_equal([e.duration_s for e in events], ref.duration)
    assert [e.label for e in events] == list(ref.description)
    header = read_edf_header(path)
    assert header["channels"] == [] and header["edf_plus"] == "EDF+C"
    assert header["start_datetime"] == datetime.datetime(1989, 4, 24, 16, 13)


# --- hardening: TALs -----------------------------------------------------------------------


@pytest.fixture
def annotated_edf(tmp_path, rng):
    """An EDF+C of 60 one-second records carrying three annotations."""
    path = tmp_path / "annot.edf"
    written = [
        edfio.EdfAnnotation(0.0, 30.0, "Sleep stage W"),
        edfio.EdfAnnotation(30.0, 30.0, "Sleep stage 2"),
        edfio.EdfAnnotation(41.25, None, "Arousal"),
    ]
    write_edf_file(path, {"SaO2": make_signals(rng)["SaO2"]}, annotations=written)
    return path


def test_annotations_agree_with_edfio(annotated_edf):
    """Parsing the TALs ourselves gives edfio's annotations on a valid file."""
    ours = [(e.onset_s, e.duration_s, e.label) for e in read_edf_annotations(annotated_edf)]
    theirs = [
        (a.onset, a.duration or 0.0, a.text) for a in edfio.read_edf(annotated_edf).annotations
    ]
    assert ours == theirs and len(ours) == 3


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (b"+30\x1530", b"+3O\x1530", "malformed TAL"),  # onset that does not parse
        (b"+30\x1530", b"+30\x153O", "malformed TAL"),  # duration that does not parse
        (b"Sleep stage W", b"Sleep stage \xff", "not printable UTF-8"),
        (b"Sleep stage W", b"Sleep\tstage W", "not printable UTF-8"),
        (b"Arousal\x14\x00", b"Arousal\x14\x01", "malformed TAL"),  # no terminator
        (b"Arousal\x14\x00\x00\x00", b"Arousal\x14\x00\x00X", "bytes after the last TAL"),
    ],
)
def test_malformed_tal_is_refused(annotated_edf, old, new, reason):
    raw = annotated_edf.read_bytes()
    assert raw.count(old) == 1
    annotated_edf.write_bytes(raw.replace(old, new))
    for read in (read_edf_annotations, read_edf):
        with pytest.raises(RecordingError, match=reason):
            read(annotated_edf)


def test_onset_out_of_bounds_is_refused(annotated_edf):
    raw = annotated_edf.read_bytes()
    # The longer onset takes one byte of the record's zero padding, so the size is unchanged.
    old, new = b"+41.25\x14Arousal\x14\x00\x00", b"+999999\x14Arousal\x14\x00"
    annotated_edf.write_bytes(raw.replace(old, new))
    with pytest.raises(RecordingError, match=r"onset is 999999.0 s, outside the allowed"):
        read_edf_annotations(annotated_edf)


def test_records_must_carry_contiguous_timekeeping(annotated_edf):
    raw = annotated_edf.read_bytes()
    assert raw.count(b"+5\x14\x14\x00") == 1
    annotated_edf.write_bytes(raw.replace(b"+5\x14\x14\x00", b"+7\x14\x14\x00"))
    with pytest.raises(RecordingError, match="EDF\\+C data record 5 starts at 7 s, not 5 s"):
        read_edf_annotations(annotated_edf)
    annotated_edf.write_bytes(raw.replace(b"+5\x14\x14\x00\x00", b"+5\x14X\x14\x00"))
    with pytest.raises(RecordingError, match="data record 5 has no time-keeping annotation"):
        read_edf_annotations(annotated_edf)
