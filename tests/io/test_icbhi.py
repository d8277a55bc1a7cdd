"""ICBHI readers: the real database files (cycle counts, official split, old names, patient
metadata, recordings and their cycles) and every malformed-input error on hand-made files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sleepbench.errors import RecordingError
from sleepbench.io.audio import read_wav
from sleepbench.io.icbhi import (
    CLASSES,
    CYCLE_END_TOLERANCE_S,
    Cycle,
    IcbhiName,
    check_cycles_within,
    cycle_samples,
    parse_icbhi_name,
    read_cycles,
    read_demographics,
    read_diagnoses,
    read_patient_folds,
)
from sleepbench.io.icbhi_layout import (
    current_stem,
    discover_icbhi,
    read_filename_differences,
    read_official_split,
)


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _reason(call, *args) -> str:
    with pytest.raises(RecordingError) as info:
        call(*args)
    assert info.value.path
    return info.value.reason


# --- real files ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def icbhi(samples_dir: Path) -> Path:
    return samples_dir / "icbhi"


@pytest.fixture(scope="module")
def all_cycles(icbhi: Path) -> dict[str, list[Cycle]]:
    files = sorted((icbhi / "annotations_all_920").glob("*.txt"))
    return {f.stem: read_cycles(f) for f in files}


@pytest.mark.samples
def test_real_cycle_counts(all_cycles: dict[str, list[Cycle]]) -> None:
    assert len(all_cycles) == 920
    labels = Counter(CLASSES[c.label] for cycles in all_cycles.values() for c in cycles)
    assert sum(labels.values()) == 6898
    assert labels == {"normal": 3642, "crackle": 1864, "wheeze": 886, "both": 506}
    for stem in all_cycles:
        assert parse_icbhi_name(stem).stem == stem
    assert len({parse_icbhi_name(s).patient for s in all_cycles}) == 126


@pytest.mark.samples
def test_real_official_split(icbhi: Path, all_cycles: dict[str, list[Cycle]]) -> None:
    split = read_official_split(icbhi / "metadata" / "official_split.txt", all_cycles)
    assert set(split) == set(all_cycles)
    assert Counter(split.values()) == {"train": 539, "test": 381}
    cycles = Counter()
    for stem, side in split.items():
        cycles[side] += len(all_cycles[stem])
    assert cycles == {"train": 4142, "test": 2756}
    sides: dict[str, set[str]] = {}
    for stem, side in split.items():
        sides.setdefault(parse_icbhi_name(stem).patient, set()).add(side)
    assert sorted(p for p, s in sides.items() if len(s) == 2) == ["156", "218"]


@pytest.mark.samples
def test_real_old_names_map_to_meditron(
    icbhi: Path, all_cycles: dict[str, list[Cycle]], tmp_path: Path
) -> None:
    old = read_filename_differences(icbhi / "metadata" / "filename_differences.txt")
    assert len(old) == 91 and "226_1b1_Al_sc_LittC2SE" in old
    assert not set(old) & set(all_cycles)
    mapped = {name: current_stem(name, all_cycles) for name in old}
    assert mapped["226_1b1_Al_sc_LittC2SE"] == "226_1b1_Al_sc_Meditron"
    assert len(set(mapped.values())) == 91
    for name, new in mapped.items():
        before, after = parse_icbhi_name(name), parse_icbhi_name(new)
        assert after.key == before.key and after.device == "Meditron"
        assert before.device in ("AKGC417L", "LittC2SE") and before.mode == "sc"
    # a split written with the old names (as an older database version) reads the same
    text = (icbhi / "metadata" / "official_split.txt").read_text()
    renamed = {new: name for name, new in mapped.items()}
    lines = [line.split("\t") for line in text.splitlines()]
    older = "\n".join(f"{renamed.get(s, s)}\t{side}" for s, side in lines) + "\n"
    assert older.count("LittC2SE") > text.count("LittC2SE")
    older_split = read_official_split(_write(tmp_path, "old_split.txt", older), all_cycles)
    assert older_split == read_official_split(icbhi / "metadata" / "official_split.txt")


@pytest.mark.samples
def test_real_patient_metadata(icbhi: Path, all_cycles: dict[str, list[Cycle]]) -> None:
    meta = icbhi / "metadata"
    patients = {parse_icbhi_name(s).patient for s in all_cycles}
    folds = read_patient_folds(meta / "patient_list_foldwise.txt")
    assert set(folds) == patients
    assert sorted(Counter(folds.values()).items()) == [(0, 26), (1, 25), (2, 25), (3, 25), (4, 25)]
    diagnoses = read_diagnoses(meta / "patient_diagnosis.csv")
    assert diagnoses == read_diagnoses(meta / "patient_diagnosis.txt")
    assert set(diagnoses) == patients
    assert Counter(diagnoses.values())["COPD"] == 64 and diagnoses["101"] == "URTI"
    demo = read_demographics(meta / "demographic_info.txt")
    assert set(demo) == patients
    assert demo["101"] == {"age": 3.0, "sex": "F", "bmi": None, "weight": 19.0, "height": 99.0}
    assert demo["103"] == {"age": 70.0, "sex": "F", "bmi": 33.0, "weight": None, "height": None}
    assert set(demo["223"].values()) == {None}
    for record in demo.values():
        if record["age"] is not None and record["age"] < 18:
            assert record["bmi"] is None  # children: weight and height, never a BMI
        elif record["age"] is not None:
            assert record["weight"] is None and record["height"] is None
    # Patch-Mix's tab-separated variant with a 7th column carries the same values
    assert read_demographics(meta / "metadata.txt") == demo


@pytest.mark.samples
def test_real_layout_and_recordings(icbhi: Path, all_cycles: dict[str, list[Cycle]]) -> None:
    layout = discover_icbhi(icbhi)
    assert set(layout.recordings) == set(all_cycles)
    meta = icbhi / "metadata"
    assert layout.official_split == meta / "official_split.txt"
    assert layout.patient_folds == meta / "patient_list_foldwise.txt"
    assert layout.diagnoses == meta / "patient_diagnosis.csv"
    assert layout.demographics == meta / "demographic_info.txt"
    assert layout.filename_differences == meta / "filename_differences.txt"
    with_audio = {s: pair for s, pair in layout.recordings.items() if pair[0] is not None}
    assert len(with_audio) == 10
    for stem, (wav, txt) in with_audio.items():
        assert txt is not None and txt.parent == wav.parent  # the .txt beside the .wav
        cycles = read_cycles(txt)
        assert cycles == all_cycles[stem]
        x, info = read_wav(wav)
        assert info.fs_hz == sf.info(str(wav)).samplerate
        start, stop = cycle_samples(txt, cycles, info.fs_hz, x.size)
        for cycle, a, b in zip(cycles, start, stop):
            assert a == round(cycle.start_s * info.fs_hz)
            assert b == min(round(cycle.end_s * info.fs_hz), x.size)
            assert abs((b - a) - (cycle.end_s - cycle.start_s) * info.fs_hz) <= 1
        assert stop.max() <= x.size and (np.diff(start) > 0).all()
    # a Littmann 3200 recording: 4 kHz, its last cycle ends exactly at the last sample
    wav, txt = layout.recordings["104_1b1_Al_sc_Litt3200"]
    x, info = read_wav(wav)
    assert (info.fs_hz, x.size) == (4000.0, 63424)
    assert cycle_samples(txt, read_cycles(txt), 4000.0, x.size)[1][-1] == x.size


# --- names ---------------------------------------------------------------------------------------


def test_parse_icbhi_name() -> None:
    name = parse_icbhi_name("103_2b2_Ar_mc_LittC2SE")
    assert name == IcbhiName("103_2b2_Ar_mc_LittC2SE", "103", "2b2", "Ar", "mc", "LittC2SE")
    assert name.key == ("103", "2b2", "Ar", "mc")
    assert "unknown device 'Foo'" in _reason(parse_icbhi_name, "101_1b1_Al_sc_Foo")
    assert "chest location" in _reason(parse_icbhi_name, "101_1b1_Xx_sc_Meditron")
    assert "acquisition mode" in _reason(parse_icbhi_name, "101_1b1_Al_zz_Meditron")
    for bad in ("101_1b1_Al_sc", "1010_1b1_Al_sc_Meditron", "101_1b1_Al_sc_Meditron.wav", ""):
        assert "not an ICBHI name" in _reason(parse_icbhi_name, bad)
    with pytest.raises(RecordingError) as info:
        parse_icbhi_name("bad", path="/x/bad.txt")
    assert info.value.path == "/x/bad.txt"


# --- cycles --------------------------------------------------------------------------------------


def test_read_cycles_labels_and_line_ends(tmp_path: Path) -> None:
    text = "0.036\t0.579\t0\t0\r\n\r\n0.579 2.45 1 0\r\n2.45\t3.9\t0\t1\n3.9\t5.0\t1\t1"
    cycles = read_cycles(_write(tmp_path, "c.txt", text))
    assert [c.label for c in cycles] == [0, 1, 2, 3]
    assert cycles[0] == Cycle(0.036, 0.579, False, False)
    assert [CLASSES[c.label] for c in cycles] == ["normal", "crackle", "wheeze", "both"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0.1 0.5 0\n", "is not 'start end crackles wheezes'"),
        ("0.1 0.5 0 0 0\n", "is not 'start end crackles wheezes'"),
        ("a 0.5 0 0\n", "start 'a' is not a number"),
        ("0.5 0.5 0 0\n", "not after"),
        ("0.9 0.5 0 0\n", "not after"),
        ("-1 0.5 0 0\n", "cycle start"),
        ("0 nan 0 0\n", "cycle end"),
        ("0 1e300 0 0\n", "cycle end"),
        ("0.1 0.5 2 0\n", "not 0/1"),
        ("0.1 0.5 0 yes\n", "not 0/1"),
        ("\n \n", "no respiratory cycle"),
        (b"0.1 0.5 0 0\n\xff\xfe", "not a text file"),
    ],
)
def test_read_cycles_refuses_malformed_lines(tmp_path: Path, text: str, reason: str) -> None:
    assert reason in _reason(read_cycles, _write(tmp_path, "c.txt", text))


def test_cycles_must_lie_in_their_recording(tmp_path: Path) -> None:
    cycles = [Cycle(0.0, 1.0, False, False), Cycle(1.0, 2.02, True, False)]
    check_cycles_within("r.txt", cycles, 2.0)  # within the tolerance
    assert "beyond" in _reason(check_cycles_within, "r.txt", cycles, 1.9)
    late = [Cycle(2.0, 2.01, False, False)]
    assert "beyond" in _reason(check_cycles_within, "r.txt", late, 2.0)  # starts at the end
    far = [Cycle(0.0, 2.0 + 2 * CYCLE_END_TOLERANCE_S, False, False)]
    assert "beyond" in _reason(check_cycles_within, "r.txt", far, 2.0)
    start, stop = cycle_samples("r.txt", cycles, 100.0, 200)
    assert start.tolist() == [0, 100] and stop.tolist() == [100, 200]  # end clipped to 200
    assert start.dtype == stop.dtype == np.int64
    tiny = [Cycle(0.5, 0.501, False, False)]
    assert cycle_samples("r.txt", tiny, 100.0, 200)[1].tolist() == [51]  # at least one sample
    assert "beyond" in _reason(cycle_samples, "r.txt", cycles, 100.0, 150)


# --- official split and old names ----------------------------------------------------------------

_KNOWN = ["101_1b1_Al_sc_Meditron", "102_1b1_Ar_sc_Meditron", "103_2b2_Ar_mc_LittC2SE"]


def test_official_split_maps_old_names(tmp_path: Path) -> None:
    text = (
        "101_1b1_Al_sc_AKGC417L\ttest\n102_1b1_Ar_sc_LittC2SE  TRAIN\r\n\n"
        "103_2b2_Ar_mc_LittC2SE\ttrain"
    )
    path = _write(tmp_path, "split.txt", text)
    assert read_official_split(path) == {
        "101_1b1_Al_sc_AKGC417L": "test",
        "102_1b1_Ar_sc_LittC2SE": "train",
        "103_2b2_Ar_mc_LittC2SE": "train",
    }
    assert read_official_split(path, _KNOWN) == dict(zip(_KNOWN, ["test", "train", "train"]))
    # a recording absent from the known stems keeps its name
    assert current_stem("199_1b1_Al_sc_Meditron", _KNOWN) == "199_1b1_Al_sc_Meditron"
    ambiguous = [*_KNOWN, "101_1b1_Al_sc_Litt3200"]
    assert "several recordings" in _reason(current_stem, "101_1b1_Al_sc_AKGC417L", ambiguous)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("101_1b1_Al_sc_Meditron\n", "is not 'stem train|test'"),
        ("101_1b1_Al_sc_Meditron\tvalid\n", "is not 'stem train|test'"),
        ("101_1b1_Al_sc_Nope\ttrain\n", "unknown device"),
        ("101_1b1_Al_sc_Meditron\ttrain\n101_1b1_Al_sc_Meditron\ttest\n", "both train and test"),
        ("\n", "no recording"),
    ],
)
def test_official_split_refuses_malformed_files(tmp_path: Path, text: str, reason: str) -> None:
    assert reason in _reason(read_official_split, _write(tmp_path, "split.txt", text))


def test_old_name_conflicting_with_a_current_name_is_refused(tmp_path: Path) -> None:
    text = "101_1b1_Al_sc_Meditron\ttrain\n101_1b1_Al_sc_AKGC417L\ttest\n"
    path = _write(tmp_path, "split.txt", text)
    assert "both train and test" in _reason(read_official_split, path, _KNOWN)


def test_filename_differences(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.txt", "'101_1b1_Al_sc_AKGC417L'\n'105_1b1_Tc_sc_LittC2SE'\n")
    assert read_filename_differences(path) == ["101_1b1_Al_sc_AKGC417L", "105_1b1_Tc_sc_LittC2SE"]
    twice = _write(tmp_path, "t.txt", "'101_1b1_Al_sc_AKGC417L'\n'101_1b1_Al_sc_AKGC417L'\n")
    assert "listed twice" in _reason(read_filename_differences, twice)
    assert "not an ICBHI name" in _reason(read_filename_differences, _write(tmp_path, "b", "x\n"))
    assert "no name" in _reason(read_filename_differences, _write(tmp_path, "e", ""))


# --- patient metadata ----------------------------------------------------------------------------


def test_patient_folds(tmp_path: Path) -> None:
    assert read_patient_folds(_write(tmp_path, "f", "158 0\n193 4\r\n")) == {"158": 0, "193": 4}
    assert "fold(0..4)" in _reason(read_patient_folds, _write(tmp_path, "a", "158 5\n"))
    assert "fold(0..4)" in _reason(read_patient_folds, _write(tmp_path, "b", "158\n"))
    assert "patient number" in _reason(read_patient_folds, _write(tmp_path, "c", "15 0\n"))
    assert "twice" in _reason(read_patient_folds, _write(tmp_path, "d", "158 0\n158 1\n"))
    assert "no patient" in _reason(read_patient_folds, _write(tmp_path, "e", "\n"))


def test_diagnoses(tmp_path: Path) -> None:
    assert read_diagnoses(_write(tmp_path, "d.csv", "101,URTI\r\n102,Healthy")) == {
        "101": "URTI",
        "102": "Healthy",
    }
    assert read_diagnoses(_write(tmp_path, "d.txt", "104\tCOPD\n")) == {"104": "COPD"}
    assert "patient,diagnosis" in _reason(read_diagnoses, _write(tmp_path, "a", "101,Flu\n"))
    assert "patient,diagnosis" in _reason(read_diagnoses, _write(tmp_path, "b", "101\n"))
    assert "patient number" in _reason(read_diagnoses, _write(tmp_path, "c", "x01,COPD\n"))


def test_demographics(tmp_path: Path) -> None:
    text = "\r\n101 3 F NA 19 99\r\n103 70 M 33 NA NA\r\n223 NA NA NA NA NA"
    demo = read_demographics(_write(tmp_path, "d.txt", text))
    assert demo["101"] == {"age": 3.0, "sex": "F", "bmi": None, "weight": 19.0, "height": 99.0}
    assert demo["103"]["sex"] == "M" and demo["103"]["bmi"] == 33.0
    assert set(demo["223"].values()) == {None}
    seven = read_demographics(_write(tmp_path, "m.txt", "101\t3.0\tF\tNA\t19.0\t99.0\tPr\n"))
    assert seven == {"101": demo["101"]}
    for bad, reason in [
        ("101 3 X NA 19 99", "sex"),
        ("101 300 F NA 19 99", "age"),
        ("101 3 F NA -1 99", "weight"),
        ("101 3 F NA 19 abc", "height 'abc' is not a number"),
        ("101 3 F NA 19", "is not 'patient age sex bmi weight height'"),
        ("101 3 F NA 19 99 Zz", "is not 'patient age sex bmi weight height'"),
    ]:
        assert reason in _reason(read_demographics, _write(tmp_path, "bad.txt", bad))


# --- discovery -----------------------------------------------------------------------------------


def test_discover_kaggle_layout(tmp_path: Path) -> None:
    db = tmp_path / "Respiratory_Sound_Database"
    audio = db / "audio_and_txt_files"
    audio.mkdir(parents=True)
    for stem in _KNOWN[:2]:
        (audio / f"{stem}.wav").touch()
        (audio / f"{stem}.txt").touch()
    (audio / f"{_KNOWN[2]}.txt").touch()  # annotation without audio
    (audio / "notes.txt").touch()  # not a recording
    extra = tmp_path / "annotations"
    extra.mkdir()
    (extra / f"{_KNOWN[0]}.txt").touch()  # a second copy: the one beside the wav wins
    (db / "patient_diagnosis.csv").touch()
    (tmp_path / "demographic_info.txt").touch()
    (tmp_path / "ICBHI_challenge_train_test.txt").touch()
    layout = discover_icbhi(tmp_path)
    assert list(layout.recordings) == sorted(_KNOWN)
    assert layout.recordings[_KNOWN[0]] == (audio / f"{_KNOWN[0]}.wav", audio / f"{_KNOWN[0]}.txt")
    assert layout.recordings[_KNOWN[2]] == (None, audio / f"{_KNOWN[2]}.txt")
    assert layout.diagnoses == db / "patient_diagnosis.csv"
    assert layout.demographics == tmp_path / "demographic_info.txt"
    assert layout.official_split == tmp_path / "ICBHI_challenge_train_test.txt"
    assert layout.patient_folds is None and layout.filename_differences is None
    (extra / f"{_KNOWN[0]}.wav").touch()
    assert "a second wav" in _reason(discover_icbhi, tmp_path)
    assert "not found" in _reason(discover_icbhi, tmp_path / "missing")
