"""Byte-mutation fuzz of the audio-side readers (ICBHI cycle files, official split and patient
metadata, the ESC-50 table, WAV files): a corrupted file gives a RecordingError or a valid result.
The mutation machinery is :mod:`tests.io.fuzz`; the other readers are fuzzed in
``test_fuzz_readers.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sleepbench.io.audio import read_wav
from sleepbench.io.bounds import MAX_FS_HZ, MAX_RECORDING_S
from sleepbench.io.esc50 import N_CLASSES, N_FOLDS, parse_esc50_name, read_esc50_meta
from sleepbench.io.icbhi import (
    CLASSES,
    parse_icbhi_name,
    read_cycles,
    read_demographics,
    read_diagnoses,
    read_patient_folds,
)
from sleepbench.io.icbhi_layout import (
    read_filename_differences,
    read_official_split,
)
from tests.io.fuzz import FUZZ, fuzz_once, lay_out

# --------------------------------------------------------------------------------------------
# ICBHI and ESC-50: cycle annotations, the official split and patient metadata, the ESC-50
# table, and audio files (a 4-kHz ICBHI recording and a 44.1-kHz ESC-50 clip, 44-byte headers)


def _cycles_call(folder: Path) -> None:
    for cycle in read_cycles(folder / "cycles.txt"):
        assert 0 <= cycle.start_s < cycle.end_s <= MAX_RECORDING_S
        assert 0 <= cycle.label < len(CLASSES)


def _split_call(known: list[str]) -> Callable[[Path], None]:
    def call(folder: Path) -> None:
        split = read_official_split(folder / "official_split.txt", known)
        assert split and set(split.values()) <= {"train", "test"}
        for stem in split:
            parse_icbhi_name(stem)

    return call


def _esc50_call(folder: Path) -> None:
    clips = read_esc50_meta(folder / "esc50.csv")
    assert clips and len({c.filename for c in clips}) == len(clips)
    for clip in clips:
        assert 1 <= clip.fold <= N_FOLDS and 0 <= clip.target < N_CLASSES
        assert parse_esc50_name(clip.filename) == (clip.fold, clip.src_file, clip.take, clip.target)


def _wav_call(folder: Path) -> None:
    samples, info = read_wav(folder / "audio.wav")
    assert 0 < info.fs_hz <= MAX_FS_HZ and info.duration_s <= MAX_RECORDING_S
    assert samples.dtype == np.float32 and samples.shape == (info.n_samples,)
    assert samples.size > 0 and np.isfinite(samples).all()


def _icbhi_sources(samples_dir: Path) -> dict[str, Path]:
    icbhi = samples_dir / "icbhi"
    return {
        "cycles.txt": icbhi / "annotations_all_920" / "101_1b1_Al_sc_Meditron.txt",
        "official_split.txt": icbhi / "metadata" / "official_split.txt",
        "esc50.csv": samples_dir / "esc50" / "meta" / "esc50.csv",
        "icbhi.wav": icbhi / "audio_and_txt_files" / "104_1b1_Lr_sc_Litt3200.wav",
        "esc50.wav": samples_dir / "esc50" / "audio" / "4-102844-A-49.wav",
    }


def _known_stems(samples_dir: Path) -> list[str]:
    return sorted(p.stem for p in (samples_dir / "icbhi" / "annotations_all_920").glob("*.txt"))


@pytest.mark.samples
@pytest.mark.parametrize("name", ["cycles.txt", "official_split.txt", "esc50.csv"])
@FUZZ
@given(data=st.data())
def test_fuzz_icbhi_esc50_tables(
    samples_dir: Path, tmp_path: Path, name: str, data: st.DataObject
) -> None:
    source = _icbhi_sources(samples_dir)[name]
    call = {
        "cycles.txt": _cycles_call,
        "official_split.txt": _split_call(_known_stems(samples_dir)),
        "esc50.csv": _esc50_call,
    }[name]
    fuzz_once(data, tmp_path, {name: source}, name, call, hot=source.stat().st_size)


@pytest.mark.samples
@pytest.mark.parametrize("source", ["icbhi.wav", "esc50.wav"])
@FUZZ
@given(data=st.data())
def test_fuzz_wav(samples_dir: Path, tmp_path: Path, source: str, data: st.DataObject) -> None:
    wav = _icbhi_sources(samples_dir)[source]
    fuzz_once(data, tmp_path, {"audio.wav": wav}, "audio.wav", _wav_call, hot=64)


_ICBHI_METADATA: dict[str, Callable[[Path], object]] = {
    "patient_list_foldwise.txt": read_patient_folds,
    "patient_diagnosis.csv": read_diagnoses,
    "demographic_info.txt": read_demographics,
    "filename_differences.txt": read_filename_differences,
}


@pytest.mark.samples
@pytest.mark.parametrize("name", sorted(_ICBHI_METADATA))
@FUZZ
@given(data=st.data())
def test_fuzz_icbhi_metadata(
    samples_dir: Path, tmp_path: Path, name: str, data: st.DataObject
) -> None:
    def call(folder: Path) -> None:
        assert _ICBHI_METADATA[name](folder / name)

    path = samples_dir / "icbhi" / "metadata" / name
    fuzz_once(data, tmp_path, {name: path}, name, call, hot=path.stat().st_size)


@pytest.mark.samples
def test_unmutated_icbhi_esc50_sources_are_read(samples_dir: Path, tmp_path: Path) -> None:
    sources = _icbhi_sources(samples_dir)
    _cycles_call(lay_out(tmp_path, {"cycles.txt": sources["cycles.txt"]}))
    split = {"official_split.txt": sources["official_split.txt"]}
    _split_call(_known_stems(samples_dir))(lay_out(tmp_path, split))
    _esc50_call(lay_out(tmp_path, {"esc50.csv": sources["esc50.csv"]}))
    for wav in ("icbhi.wav", "esc50.wav"):
        _wav_call(lay_out(tmp_path, {"audio.wav": sources[wav]}))
    for name, read in _ICBHI_METADATA.items():
        assert read(samples_dir / "icbhi" / "metadata" / name)
