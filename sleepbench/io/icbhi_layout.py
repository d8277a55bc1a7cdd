"""ICBHI 2017 folder layout: where a copy's recordings and metadata files lie, the official
train/test split, and the old names of renamed recordings.

Metadata files (SPECS §4.1, §4.7; real samples in ``shared/data/icbhi``), beside the
``<stem>.wav`` + ``<stem>.txt`` recordings that :mod:`sleepbench.io.icbhi` reads:
``official_split.txt`` (``ICBHI_challenge_train_test.txt`` as the challenge ships it): one
``stem<TAB>train|test`` a line, 539 / 381 recordings; ``patient_list_foldwise.txt``
(``patient fold``, folds 0..4); ``patient_diagnosis.csv`` / ``.txt`` (``patient,diagnosis`` or
tab-separated); ``demographic_info.txt`` (``patient age sex adult_BMI child_weight_kg
child_height_cm``, ``NA`` for missing); ``filename_differences.txt`` (91 quoted old names). The
patient files are read by :mod:`sleepbench.io.icbhi_patients`.

**Old names** (``filename_differences.txt``): 91 recordings were renamed after the first
release of the database (files from that release may still use the old names). Each old name
differs from its current name only in the device field, which became ``Meditron`` (54 from
``LittC2SE``, 37 from ``AKGC417L``; all single-channel): e.g. ``226_1b1_Al_sc_LittC2SE`` is
now ``226_1b1_Al_sc_Meditron``. The renaming script shipped with the Patch-Mix code
(``data/icbhi_dataset/script.sh``: cut the device, append ``Meditron``) does exactly this, and
(patient, index, location, mode) identifies a recording uniquely among the 920 current stems.
:func:`current_stem` therefore maps a name that is not among the known stems to the one known
stem with the same (patient, index, location, mode); :func:`read_official_split` applies it
to every line.

Every malformed file raises
:class:`~sleepbench.errors.RecordingError` naming it and the line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sleepbench.errors import RecordingError
from sleepbench.io.icbhi import parse_icbhi_name
from sleepbench.io.icbhi_patients import read_lines

__all__ = [
    "IcbhiLayout",
    "current_stem",
    "discover_icbhi",
    "read_filename_differences",
    "read_official_split",
]

_SPLIT_FILES = ("official_split.txt", "icbhi_challenge_train_test.txt")
_FOLD_FILES = ("patient_list_foldwise.txt",)
_DIAGNOSIS_FILES = (
    "patient_diagnosis.csv", "patient_diagnosis.txt", "icbhi_challenge_diagnosis.txt",
)  # fmt: skip
_DEMOGRAPHIC_FILES = ("demographic_info.txt", "icbhi_challenge_demographic_information.txt")
_DIFFERENCE_FILES = ("filename_differences.txt",)


def current_stem(stem: str, known_stems: Iterable[str], path: str | Path | None = None) -> str:
    """The current name of a recording named ``stem`` in some database version.

    Args:
        stem: a recording stem, current or old (module docstring).
        known_stems: the current stems (e.g. the keys of :attr:`IcbhiLayout.recordings`).
        path: the file named in the error.

    Returns:
        ``stem`` itself when known; else the one known stem with the same (patient, index,
        location, mode); else ``stem`` unchanged (a recording absent from ``known_stems``).

    Raises:
        RecordingError: ``stem`` is malformed, or several known stems share its key.
    """
    return _StemIndex(known_stems).current(stem, path)


class _StemIndex:
    """Known stems by (patient, index, location, mode), built once for many look-ups."""

    def __init__(self, known_stems: Iterable[str]) -> None:
        self.known = set(known_stems)
        self.by_key: dict[tuple[str, str, str, str], list[str]] = {}
        for stem in sorted(self.known):
            if _is_name(stem):
                self.by_key.setdefault(parse_icbhi_name(stem).key, []).append(stem)

    def current(self, stem: str, path: str | Path | None = None) -> str:
        if stem in self.known:
            return stem
        same = self.by_key.get(parse_icbhi_name(stem, path).key, [])
        if len(same) > 1:
            raise RecordingError(path or stem, f"{stem!r} matches several recordings: {same}")
        return same[0] if same else stem


def read_official_split(
    path: str | Path, known_stems: Iterable[str] | None = None
) -> dict[str, str]:
    """Read the official 60/40 train/test list (``stem<TAB>train|test`` a line).

    Args:
        path: ``official_split.txt`` or ``ICBHI_challenge_train_test.txt``.
        known_stems: the current stems; when given, each listed name goes through
            :func:`current_stem` (old names -> current names).

    Returns:
        ``stem -> "train" | "test"``.

    Raises:
        RecordingError: unreadable or empty file; a line without two fields; a malformed stem;
            a side other than train/test; a recording listed on both sides.
    """
    path = Path(path)
    index = None if known_stems is None else _StemIndex(known_stems)
    split: dict[str, str] = {}
    for no, line in read_lines(path):
        fields = line.split()
        if len(fields) != 2 or fields[1].lower() not in ("train", "test"):
            raise RecordingError(path, f"line {no}: {line!r} is not 'stem train|test'")
        stem = fields[0].strip("'\"")
        parse_icbhi_name(stem, path)
        if index is not None:
            stem = index.current(stem, path)
        side = fields[1].lower()
        if split.setdefault(stem, side) != side:
            raise RecordingError(path, f"line {no}: {stem} is listed as both train and test")
    if not split:
        raise RecordingError(path, "the split lists no recording")
    return split


def read_filename_differences(path: str | Path) -> list[str]:
    """Read ``filename_differences.txt``: the old names (quoted, one a line), in file order.

    Raises:
        RecordingError: a line that is not an ICBHI stem, a name listed twice, no name.
    """
    path = Path(path)
    names: list[str] = []
    for no, line in read_lines(path):
        stem = line.strip("'\"")
        parse_icbhi_name(stem, f"{path} (line {no})")
        if stem in names:
            raise RecordingError(path, f"line {no}: {stem} is listed twice")
        names.append(stem)
    if not names:
        raise RecordingError(path, "the file lists no name")
    return names


@dataclass(frozen=True)
class IcbhiLayout:
    """Where the files of an ICBHI copy are (any of ``None`` when absent).

    Args:
        root: the folder searched.
        recordings: ``stem -> (wav, txt)`` for every file whose stem is an ICBHI name.
        official_split, patient_folds, diagnoses, demographics, filename_differences: the
            metadata files (module docstring).
    """

    root: Path
    recordings: dict[str, tuple[Path | None, Path | None]]
    official_split: Path | None
    patient_folds: Path | None
    diagnoses: Path | None
    demographics: Path | None
    filename_differences: Path | None


def discover_icbhi(root: str | Path) -> IcbhiLayout:
    """Find an ICBHI copy's recordings and metadata files anywhere under ``root``.

    Works for the Kaggle layout (``Respiratory_Sound_Database/audio_and_txt_files``), the
    challenge's flat ``ICBHI_final_database`` and the sample's ``audio_and_txt_files`` +
    ``metadata``. Metadata files are matched by name, case-insensitively, the first found in
    sorted order. When a stem's ``.txt`` exists in several folders, the one beside its ``.wav``
    is used, else the first in sorted order.

    Raises:
        RecordingError: ``root`` is not a folder, or holds two ``.wav`` files of one stem.
    """
    root = Path(root)
    if not root.is_dir():
        raise RecordingError(root, "ICBHI folder not found")
    wavs: dict[str, Path] = {}
    txts: dict[str, list[Path]] = {}
    meta: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            file = Path(folder) / name
            stem, suffix = os.path.splitext(name)
            meta.setdefault(name.lower(), file)
            if suffix.lower() not in (".wav", ".txt") or not _is_name(stem):
                continue
            if suffix.lower() == ".txt":
                txts.setdefault(stem, []).append(file)
            elif stem in wavs:
                raise RecordingError(file, f"a second wav of {stem} (first: {wavs[stem]})")
            else:
                wavs[stem] = file
    recordings: dict[str, tuple[Path | None, Path | None]] = {}
    for stem in sorted(set(wavs) | set(txts)):
        wav, found = wavs.get(stem), txts.get(stem, [])
        beside = [t for t in found if wav is not None and t.parent == wav.parent]
        recordings[stem] = (wav, (beside or found or [None])[0])

    def first(names: tuple[str, ...]) -> Path | None:
        return next((meta[n] for n in names if n in meta), None)

    return IcbhiLayout(
        root=root,
        recordings=recordings,
        official_split=first(_SPLIT_FILES),
        patient_folds=first(_FOLD_FILES),
        diagnoses=first(_DIAGNOSIS_FILES),
        demographics=first(_DEMOGRAPHIC_FILES),
        filename_differences=first(_DIFFERENCE_FILES),
    )


def _is_name(stem: str) -> bool:
    try:
        parse_icbhi_name(stem)
    except RecordingError:
        return False
    return True
