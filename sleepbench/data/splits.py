"""Splits as data: which records train, validate and test one fold, stored as JSON beside results.

Every split is checked for subject leakage when it is made and when it is loaded: a subject in
two of train/val/test raises :class:`LeakageError`. Protocols that leak on purpose (upstream
"parity" runs) carry ``leaky=True`` and say so in every result row.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sleepbench.errors import UserError

log = logging.getLogger(__name__)


class LeakageError(ValueError):
    """A subject (or record) appears in more than one part of a split."""


class SplitError(UserError, ValueError):
    """A protocol cannot be applied to the data at hand (fewer subjects than folds, a fold
    number outside the protocol)."""


@dataclass
class Split:
    """Record ids of one fold.

    Args:
        protocol: protocol name (``"official"``, ``"parity"``, ``"5fold"``...).
        fold: fold number.
        seed: seed that drew it.
        train, val, test: record ids.
        leaky: the protocol mixes subjects on purpose (never the default).
        notes: free-text facts reported with results (overlaps with another test set...).
    """

    protocol: str
    fold: int
    seed: int
    train: list[str]
    val: list[str]
    test: list[str]
    leaky: bool = False
    notes: dict[str, str] = field(default_factory=dict)

    def check(self, subject_of: Mapping[str, str]) -> None:
        """Raise :class:`LeakageError` if a record or subject is in two parts (unless leaky)."""
        parts = {"train": self.train, "val": self.val, "test": self.test}
        for name, ids in parts.items():
            if len(set(ids)) != len(ids):
                raise LeakageError(f"{self.protocol} fold {self.fold}: duplicate records in {name}")
        if self.leaky:
            return
        seen: dict[str, str] = {}
        for name, ids in parts.items():
            for rid in ids:
                if rid not in subject_of:
                    raise LeakageError(f"{self.protocol} fold {self.fold}: unknown record {rid!r}")
                subj = subject_of[rid]
                if seen.get(subj, name) != name:
                    raise LeakageError(
                        f"{self.protocol} fold {self.fold}: subject {subj!r} is in both "
                        f"{seen[subj]} and {name} (record {rid})"
                    )
                seen[subj] = name

    def require_parts(self, data: str) -> Split:
        """``self`` if train, validation and test all hold records; else :class:`SplitError`
        saying which part the data (``data``: e.g. "the 50 clips under /x") leaves empty."""
        for part in ("train", "val", "test"):
            if not getattr(self, part):
                raise SplitError(
                    f"{self.protocol} fold {self.fold}: the {part} part is empty with {data}; "
                    "the copy lacks parts this protocol needs"
                )
        return self

    def save(self, path: Path) -> None:
        """Write the split as JSON, atomically.

        Each writer uses its own temporary file in the target folder and renames it into place,
        so processes making the same split at once never trip over one another's temporary file
        and a reader sees either no file or a whole one.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(asdict(self), indent=1))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> Split:
        """Read a split written by :meth:`save`."""
        return cls(**json.loads(Path(path).read_text()))


def group_kfold(
    subjects: Sequence[str],
    n_folds: int,
    seed: int,
    strata: Mapping[str, int] | None = None,
) -> list[list[str]]:
    """Assign subjects to ``n_folds`` folds, shuffled by ``seed``, balanced by ``strata`` if given.

    Args:
        subjects: unique subject ids.
        n_folds: number of folds.
        seed: shuffling seed.
        strata: subject -> class (e.g. severity); each class is dealt round-robin over folds.

    Returns:
        ``n_folds`` lists of subject ids.
    """
    subjects = sorted(set(subjects))
    if n_folds < 2 or n_folds > len(subjects):
        raise SplitError(
            f"cannot make {n_folds} folds from {len(subjects)} subjects: use a protocol with "
            "fewer folds or more recordings"
        )
    rng = np.random.default_rng(seed)
    folds: list[list[str]] = [[] for _ in range(n_folds)]
    groups: dict[int, list[str]] = {}
    for s in subjects:
        groups.setdefault(strata.get(s, 0) if strata else 0, []).append(s)
    offset = 0
    for key in sorted(groups):
        members = [groups[key][i] for i in rng.permutation(len(groups[key]))]
        for j, s in enumerate(members):
            folds[(j + offset) % n_folds].append(s)
        offset += len(members)
    return [sorted(f) for f in folds]


def subject_kfold_split(
    records_by_subject: Mapping[str, Sequence[str]],
    protocol: str,
    n_folds: int,
    fold: int,
    seed: int,
    n_val_folds: int = 1,
    strata: Mapping[str, int] | None = None,
) -> Split:
    """Subject-wise k-fold: fold ``fold`` tests, the next ``n_val_folds`` validate, the rest train.

    Args:
        records_by_subject: subject id -> its record ids (all nights of a subject stay together).
        protocol: name stored in the split.
        n_folds: number of folds.
        fold: which fold is the test fold (0-based).
        seed: fold assignment seed.
        n_val_folds: folds used for validation.
        strata: optional subject -> class for stratified assignment.
    """
    if not 0 <= fold < n_folds:
        raise SplitError(f"fold={fold} is outside 0..{n_folds - 1} for a {n_folds}-fold protocol")
    folds = group_kfold(list(records_by_subject), n_folds, seed, strata)
    val_folds = {(fold + 1 + k) % n_folds for k in range(n_val_folds)}

    def records(subjects: Sequence[str]) -> list[str]:
        return sorted(r for s in subjects for r in records_by_subject[s])

    train = [s for i, f in enumerate(folds) if i != fold and i not in val_folds for s in f]
    val = [s for i in sorted(val_folds) for s in folds[i]]
    split = Split(protocol, fold, seed, records(train), records(val), records(folds[fold]))
    split.check({r: s for s, rs in records_by_subject.items() for r in rs})
    return split


def holdout_subjects(
    records_by_subject: Mapping[str, Sequence[str]],
    fraction: float,
    seed: int,
    strata: Mapping[str, int] | None = None,
) -> tuple[list[str], list[str]]:
    """Split subjects into (kept, held-out) with ``round(fraction * n_subjects)`` held out.

    With ``strata`` the held-out quota is shared among classes in proportion to their size
    (largest remainder), so each class keeps its share; subjects are drawn at random by ``seed``.

    Returns:
        Record ids of the kept and of the held-out subjects.
    """
    subjects = sorted(records_by_subject)
    if not subjects:
        return [], []
    rng = np.random.default_rng(seed)
    groups: dict[int, list[str]] = {}
    for s in subjects:
        groups.setdefault(strata.get(s, 0) if strata else 0, []).append(s)
    total = int(round(fraction * len(subjects)))
    if fraction > 0 and total == 0 and len(subjects) > 1:
        total = 1
    keys = sorted(groups)
    exact = np.array([fraction * len(groups[k]) for k in keys])
    quota = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quota), kind="stable")[: max(0, total - quota.sum())]:
        quota[i] += 1
    held: list[str] = []
    for key, n in zip(keys, quota):
        members = [groups[key][i] for i in rng.permutation(len(groups[key]))]
        held.extend(members[: min(int(n), len(members))])
    held_set = set(held)
    keep = sorted(r for s in subjects if s not in held_set for r in records_by_subject[s])
    out = sorted(r for s in held_set for r in records_by_subject[s])
    return keep, out


def split_file(
    splits_dir: Path,
    task: str,
    split: Split | None = None,
    protocol: str = "",
    fold: int = 0,
    seed: int = 0,
) -> Path:
    """Path of the stored split of (task, protocol, fold, seed)."""
    if split is not None:
        protocol, fold, seed = split.protocol, split.fold, split.seed
    return Path(splits_dir) / f"{task}-{protocol}-fold{fold}-seed{seed}.json"


def stored_split(path: Path, make: callable, subject_of: Mapping[str, str]) -> Split:
    """Load the split at ``path`` if it exists and fits the data, else ``make()`` and store it.

    A stored split that names records absent from the cache (e.g. one skipped as bad) is
    regenerated rather than silently trimmed, so the stored file always says what was run.
    """
    if path.exists():
        try:
            split = Split.load(path)
        except (json.JSONDecodeError, TypeError) as err:  # not a split file we wrote
            log.warning("split file %s is unreadable (%s); making it anew", path, err)
        else:
            known = set(subject_of)
            if all(r in known for r in split.train + split.val + split.test):
                split.check(subject_of)
                return split
    split = make()
    split.check(subject_of)
    split.save(path)
    return split
