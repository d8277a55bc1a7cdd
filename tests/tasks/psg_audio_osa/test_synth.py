"""Synthetic PSG-Audio: the real layout (bracketed EDF parts, channels at their own rates, RML
with staging), and physiology in the audio (apneas silent, hypopneas quieter, all severities)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sleepbench.io.edf import read_edf, read_edf_header
from sleepbench.io.psg_audio import discover_nights
from sleepbench.io.rml import read_rml
from sleepbench.tasks.psg_audio_osa.synth import write_synthetic_psg_audio

PART_S = 300.0


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    root = tmp_path_factory.mktemp("psga")
    nights = write_synthetic_psg_audio(
        root, n_subjects=8, minutes=12.0, fs_hz=8000.0, seed=1, part_s=PART_S, drop_parts={1: [2]}
    )
    return root, nights


def test_real_layout_and_headers(synth) -> None:
    root, nights = synth
    found = {n.night_id: n for n in discover_nights(root)}
    assert set(found) == {n.night_id for n in nights}
    for night in nights:
        n_parts = math.ceil(night.duration_s / PART_S) - len(night.dropped_parts)
        assert len(night.parts) == n_parts == len(found[night.night_id].parts)
        assert all(p.name.startswith(f"{night.night_id}[") for p in night.parts)
        header = read_edf_header(night.parts[0])
        rates = dict(zip(header["channels"], header["fs_hz"]))
        assert rates == {"Mic": 8000.0, "Tracheal": 8000.0, "Snore": 500.0, "SpO2": 1.0}
        rml = read_rml(night.rml)
        stages = rml.epoch_stages()
        assert stages[0] == "W" and stages[-1] == "W" and {"N2", "REM"} <= set(stages)
        assert 0 < rml.lights_off_s < rml.lights_on_s <= rml.duration_s == night.duration_s
        assert rml.segments == [(0.0, night.duration_s)]
        clean = read_rml(root / "APNEA_RML_clean" / f"{night.night_id}.rml")
        assert [e.onset_s for e in clean.events] == [e.onset_s for e in rml.events]
    starts = [read_edf_header(p)["start_datetime"] for p in nights[0].parts]
    assert [(b - a).total_seconds() for a, b in zip(starts, starts[1:])] == [PART_S] * (
        len(starts) - 1
    )


def test_dropped_part_is_absent(synth) -> None:
    _, nights = synth
    assert nights[1].dropped_parts == (2,)
    assert [p.name[-9:-4] for p in nights[1].parts][:2] == ["[001]", "[003]"]


def test_all_severity_classes_and_some_snorers(synth) -> None:
    _, nights = synth
    assert {n.severity for n in nights} == {0, 1, 2, 3}
    for n in nights:  # the reported AHI is the task's rule applied to the written RML
        assert n.ahi == pytest.approx((n.n_apnea + n.n_hypopnea) / (n.tst_s / 3600.0))
    assert 0 < sum(n.snorer for n in nights) < len(nights)


def _rms(x: np.ndarray, fs: float, spans) -> np.ndarray:
    return np.array([np.sqrt(np.mean(x[int(a * fs) : int(b * fs)] ** 2)) for a, b in spans])


def test_apneas_are_silent_and_hypopneas_quieter_than_breathing(synth) -> None:
    _, nights = synth
    apnea, hypopnea, normal = [], [], []
    for night in nights:
        if night.dropped_parts:
            continue
        mic = np.concatenate([read_edf(p, ["Mic"]).signals["Mic"].data for p in night.parts])
        fs = night.fs_hz
        rml = read_rml(night.rml)
        events = [(e.onset_s, e.onset_s + e.duration_s, c) for e, c in rml.respiratory_events()]
        # the room noise differs per subject: compare within the night
        stages = rml.epoch_stages()
        quiet = [
            (t, t + 10.0)
            for t in np.arange(0.0, night.duration_s - 10.0, 10.0)
            if stages[int(t // 30)] in ("N2", "N3")
            and all(t + 10 < a - 20 or t > b + 20 for a, b, _ in events)
        ]
        if not events or not quiet:
            continue
        base = np.median(_rms(mic, fs, quiet))
        normal.append(1.0)
        for a, b, c in events:
            level = float(_rms(mic, fs, [(a + 2.0, b - 2.0)])[0]) / base
            (apnea if c == 2 else hypopnea).append(level)
    assert len(apnea) >= 5 and len(hypopnea) >= 3
    assert np.median(apnea) < 0.6  # breath sounds absent: room noise only
    assert np.median(apnea) < np.median(hypopnea) < 1.0  # reduced, not absent


def test_same_seed_same_night(tmp_path: Path) -> None:
    a = write_synthetic_psg_audio(tmp_path / "a", n_subjects=1, minutes=6.0, fs_hz=4000.0, seed=5)
    b = write_synthetic_psg_audio(tmp_path / "b", n_subjects=1, minutes=6.0, fs_hz=4000.0, seed=5)
    assert a[0].parts[0].read_bytes() == b[0].parts[0].read_bytes()
    assert a[0].ahi == b[0].ahi
