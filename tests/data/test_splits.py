"""Splits: leakage is rejected, subject k-fold keeps subjects whole, stored splits stay honest."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sleepbench.data.splits import (
    LeakageError,
    Split,
    group_kfold,
    holdout_subjects,
    split_file,
    stored_split,
    subject_kfold_split,
)

# subject -> records (two nights for some subjects)
RECORDS = {
    "s1": ["s1n1", "s1n2"],
    "s2": ["s2n1"],
    "s3": ["s3n1", "s3n2"],
    "s4": ["s4n1"],
    "s5": ["s5n1"],
    "s6": ["s6n1", "s6n2"],
}
SUBJECT_OF = {r: s for s, rs in RECORDS.items() for r in rs}


def test_clean_split_passes() -> None:
    Split("p", 0, 0, ["s1n1", "s1n2", "s2n1"], ["s3n1", "s3n2"], ["s4n1"]).check(SUBJECT_OF)


def test_subject_in_train_and_test_is_rejected() -> None:
    split = Split("p", 0, 0, ["s1n1", "s2n1"], ["s3n1"], ["s1n2", "s4n1"])
    with pytest.raises(LeakageError, match=r"'s1'.*train.*test"):
        split.check(SUBJECT_OF)


def test_subject_in_val_and_test_is_rejected() -> None:
    split = Split("p", 0, 0, ["s2n1"], ["s6n1"], ["s6n2"])
    with pytest.raises(LeakageError, match=r"'s6'.*val.*test"):
        split.check(SUBJECT_OF)


def test_same_record_in_two_parts_is_rejected() -> None:
    split = Split("p", 0, 0, ["s2n1", "s4n1"], [], ["s4n1"])
    with pytest.raises(LeakageError, match="s4"):
        split.check(SUBJECT_OF)


def test_duplicate_record_in_one_part_is_rejected_even_when_leaky() -> None:
    for leaky in (False, True):
        split = Split("p", 0, 0, ["s2n1", "s2n1"], [], ["s4n1"], leaky=leaky)
        with pytest.raises(LeakageError, match="duplicate records in train"):
            split.check(SUBJECT_OF)


def test_unknown_record_is_rejected() -> None:
    with pytest.raises(LeakageError, match="unknown record 'x9'"):
        Split("p", 0, 0, ["s2n1"], [], ["x9"]).check(SUBJECT_OF)


def test_leaky_split_skips_the_subject_check() -> None:
    # the upstream parity protocol: the same records in every part, flagged leaky
    records = sorted(SUBJECT_OF)
    Split("parity", 0, 0, records, records, records, leaky=True).check(SUBJECT_OF)
    with pytest.raises(LeakageError):
        Split("parity", 0, 0, records, records, records).check(SUBJECT_OF)


def test_save_load_round_trip_and_file_name(tmp_path: Path) -> None:
    split = Split("official", 2, 7, ["s1n1"], ["s2n1"], ["s3n1"], leaky=False, notes={"a": "b"})
    path = split_file(tmp_path / "splits", "apnea_ecg", split)
    assert path == tmp_path / "splits" / "apnea_ecg-official-fold2-seed7.json"
    assert split_file(tmp_path / "splits", "apnea_ecg", protocol="official", fold=2, seed=7) == path
    split.save(path)
    assert Split.load(path) == split
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind


layouts = st.integers(min_value=2, max_value=6).flatmap(
    lambda n_folds: st.tuples(
        st.just(n_folds),
        st.lists(st.integers(1, 4), min_size=n_folds, max_size=n_folds + 10),
        st.integers(0, 2**31 - 1),
    )
)


@settings(max_examples=40, deadline=None)
@given(layouts)
def test_subject_kfold_keeps_subjects_whole_and_tests_each_once(layout) -> None:
    n_folds, nights, seed = layout
    records = {f"sub{i}": [f"sub{i}-n{k}" for k in range(n)] for i, n in enumerate(nights)}
    subject_of = {r: s for s, rs in records.items() for r in rs}
    tested: Counter[str] = Counter()
    for fold in range(n_folds):
        split = subject_kfold_split(records, "5fold", n_folds, fold, seed)
        parts = [split.train, split.val, split.test]
        assert sorted(r for p in parts for r in p) == sorted(subject_of)  # every record, once
        owner = {}
        for i, part in enumerate(parts):
            for r in part:
                assert owner.setdefault(subject_of[r], i) == i  # a subject's records together
        assert split.test and split.val
        tested.update({subject_of[r] for r in split.test})
        # same seed, same split
        assert subject_kfold_split(records, "5fold", n_folds, fold, seed) == split
    assert tested == Counter({s: 1 for s in records})


def test_validation_folds_follow_the_test_fold() -> None:
    folds = group_kfold(list(RECORDS), 3, seed=1)
    split = subject_kfold_split(RECORDS, "3fold", 3, 2, seed=1, n_val_folds=1)
    assert split.test == sorted(r for s in folds[2] for r in RECORDS[s])
    assert split.val == sorted(r for s in folds[0] for r in RECORDS[s])
    assert split.train == sorted(r for s in folds[1] for r in RECORDS[s])


def test_kfold_strata_are_dealt_evenly_over_folds() -> None:
    subjects = [f"s{i:02d}" for i in range(20)]
    strata = {s: i % 4 for i, s in enumerate(subjects)}  # 5 subjects per class
    folds = group_kfold(subjects, 5, seed=3, strata=strata)
    assert sorted(s for f in folds for s in f) == subjects
    assert [len(f) for f in folds] == [4] * 5
    for f in folds:  # one subject of every class per fold
        assert sorted(strata[s] for s in f) == [0, 1, 2, 3]


def test_kfold_rejects_impossible_fold_counts() -> None:
    with pytest.raises(ValueError, match="folds"):
        group_kfold(["a", "b"], 3, seed=0)
    with pytest.raises(ValueError, match="fold=5 is outside"):
        subject_kfold_split(RECORDS, "p", 5, 5, seed=0)


def test_holdout_subjects_is_stratified_and_keeps_subjects_whole() -> None:
    records = {f"s{i:02d}": [f"s{i:02d}a", f"s{i:02d}b"] for i in range(20)}
    strata = {s: int(i >= 15) for i, s in enumerate(records)}  # 15 of class 0, 5 of class 1
    keep, held = holdout_subjects(records, 0.2, seed=4, strata=strata)
    held_subjects = {r[:3] for r in held}
    assert sorted(keep + held) == sorted(r for rs in records.values() for r in rs)
    assert not held_subjects & {r[:3] for r in keep}
    assert all(f"{s}a" in held and f"{s}b" in held for s in held_subjects)
    assert Counter(strata[s] for s in held_subjects) == Counter({0: 3, 1: 1})
    assert holdout_subjects(records, 0.2, seed=4, strata=strata) == (keep, held)
    assert holdout_subjects(records, 0.2, seed=5, strata=strata) != (keep, held)


def test_holdout_holds_out_at_least_one_subject_of_a_small_class() -> None:
    records = {"a": ["a1"], "b": ["b1"], "c": ["c1"]}
    keep, held = holdout_subjects(records, 0.1, seed=0)
    assert len(held) == 1 and len(keep) == 2


def test_stored_split_is_made_once_and_reloaded_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "split.json"
    made = []

    def make() -> Split:
        made.append(1)
        return subject_kfold_split(RECORDS, "5fold", 3, 0, seed=len(made))

    first = stored_split(path, make, SUBJECT_OF)
    text = path.read_text()
    again = stored_split(path, make, SUBJECT_OF)
    assert len(made) == 1
    assert again == first and path.read_text() == text


def test_stored_split_naming_unknown_records_is_regenerated(tmp_path: Path) -> None:
    path = tmp_path / "split.json"
    Split("5fold", 0, 0, ["s1n1", "gone"], ["s2n1"], ["s3n1"]).save(path)
    fresh = Split("5fold", 0, 1, ["s1n1"], ["s2n1"], ["s3n1"])
    got = stored_split(path, lambda: fresh, SUBJECT_OF)
    assert got == fresh and Split.load(path) == fresh


def test_stored_leaky_split_is_rejected_on_load(tmp_path: Path) -> None:
    path = tmp_path / "split.json"
    Split("5fold", 0, 0, ["s1n1"], ["s2n1"], ["s1n2"]).save(path)
    with pytest.raises(LeakageError):
        stored_split(path, lambda: pytest.fail("must not regenerate"), SUBJECT_OF)


def test_stored_split_rejects_a_leaky_maker(tmp_path: Path) -> None:
    path = tmp_path / "split.json"
    with pytest.raises(LeakageError):
        stored_split(path, lambda: Split("p", 0, 0, ["s1n1"], [], ["s1n2"]), SUBJECT_OF)
    assert not path.exists()


def _save_same_split(path: str, worker: int) -> None:
    split = Split("p", 0, 0, train=["a", "b"], val=["c"], test=["d"])
    for _ in range(20):
        split.save(Path(path))


def test_concurrent_saves_of_one_split_never_collide(tmp_path: Path) -> None:
    import multiprocessing as mp

    path = tmp_path / "splits" / "t-p-fold0-seed0.json"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_save_same_split, args=(str(path), w)) for w in range(16)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 16
    assert Split.load(path).test == ["d"]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_an_unreadable_split_file_is_made_anew(tmp_path: Path) -> None:
    path = tmp_path / "t-p-fold0-seed0.json"
    path.write_text('{"protocol": "p", "fo')  # torn
    subject_of = {"a": "s1", "d": "s2"}
    split = stored_split(path, lambda: Split("p", 0, 0, ["a"], [], ["d"]), subject_of)
    assert split.test == ["d"] and Split.load(path).train == ["a"]
