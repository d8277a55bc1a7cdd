"""ESC-50 environmental sound clips: the metadata table and the clip file names.

Layout (SPECS §4.7; real samples in ``shared/data/esc50``): ``audio/{fold}-{source}-{take}-
{target}.wav`` (2,000 clips of 5 s at 44.1 kHz mono, 50 classes of 40 clips) and
``meta/esc50.csv`` with the header ``filename,fold,target,category,esc10,src_file,take``
(``esc10`` is ``True``/``False``; the csv has CRLF line ends). The five official folds (1..5)
keep clips cut from one source recording (``src_file``, a freesound id) in one fold; ``take``
(``A``, ``B``...) tells such clips apart. The file name repeats fold, source, take and target,
and :func:`read_esc50_meta` checks that each row agrees with its file name.

Every malformed file raises :class:`~sleepbench.errors.RecordingError` naming it and the row.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

from sleepbench.errors import RecordingError

__all__ = [
    "CATEGORIES",
    "ESC50_HEADER",
    "N_CLASSES",
    "N_FOLDS",
    "Esc50Clip",
    "discover_esc50",
    "parse_esc50_name",
    "read_esc50_meta",
]

ESC50_HEADER = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
N_CLASSES = 50
N_FOLDS = 5

#: Real category names by target (ESC-50 ``meta/esc50.csv``): ``CATEGORIES[target]``.
CATEGORIES = (
    "dog", "rooster", "pig", "cow", "frog", "cat", "hen", "insects", "sheep", "crow",
    "rain", "sea_waves", "crackling_fire", "crickets", "chirping_birds", "water_drops", "wind",
    "pouring_water", "toilet_flush", "thunderstorm", "crying_baby", "sneezing", "clapping",
    "breathing", "coughing", "footsteps", "laughing", "brushing_teeth", "snoring",
    "drinking_sipping", "door_wood_knock", "mouse_click", "keyboard_typing", "door_wood_creaks",
    "can_opening", "washing_machine", "vacuum_cleaner", "clock_alarm", "clock_tick",
    "glass_breaking", "helicopter", "chainsaw", "siren", "car_horn", "engine", "train",
    "church_bells", "airplane", "fireworks", "hand_saw",
)  # fmt: skip

_NAME = re.compile(r"([0-9]+)-([0-9A-Za-z]+)-([A-Za-z]+)-([0-9]+)\.wav")
_CATEGORY = re.compile(r"[a-z][a-z_]*")


@dataclass(frozen=True)
class Esc50Clip:
    """One row of ``meta/esc50.csv``.

    Args:
        filename: ``{fold}-{source}-{take}-{target}.wav``.
        fold: official fold, 1..5.
        target: class index, 0..49.
        category: class name (``dog``, ``chirping_birds``...).
        esc10: whether the clip belongs to the ESC-10 subset.
        src_file: the freesound source recording the clip was cut from.
        take: which cut of that source (``A``, ``B``...).
    """

    filename: str
    fold: int
    target: int
    category: str
    esc10: bool
    src_file: str
    take: str


def parse_esc50_name(filename: str, path: str | Path | None = None) -> tuple[int, str, str, int]:
    """Split a clip's file name ``{fold}-{source}-{take}-{target}.wav``.

    Args:
        filename: the file name (no folder).
        path: the file named in the error (default: ``filename``).

    Returns:
        ``(fold, source, take, target)``, fold in 1..5 and target in 0..49.

    Raises:
        RecordingError: another pattern, a fold outside 1..5 or a target outside 0..49.
    """
    where = (filename or "<empty name>") if path is None else path
    match = _NAME.fullmatch(filename)
    if match is None:
        raise RecordingError(
            where, f"{filename!r} is not an ESC-50 clip name (fold-source-take-target.wav)"
        )
    fold, source, take, target = match.groups()
    _check_fold_target(where, int(fold), int(target), filename)
    return int(fold), source, take, int(target)


def _check_fold_target(path: str | Path, fold: int, target: int, what: str) -> None:
    if not 1 <= fold <= N_FOLDS:
        raise RecordingError(path, f"{what}: fold {fold} is outside 1..{N_FOLDS}")
    if not 0 <= target < N_CLASSES:
        raise RecordingError(path, f"{what}: target {target} is outside 0..{N_CLASSES - 1}")


def _int(path: Path, row_no: int, text: str, what: str) -> int:
    if not re.fullmatch(r"[0-9]{1,6}", text):
        raise RecordingError(path, f"row {row_no}: {what} {text!r} is not a whole number")
    return int(text)


def read_esc50_meta(path: str | Path) -> list[Esc50Clip]:
    """Read ``meta/esc50.csv``.

    Args:
        path: the csv file.

    Returns:
        Its rows in file order.

    Raises:
        RecordingError: unreadable or not UTF-8; a header other than :data:`ESC50_HEADER`; a
            row without 7 fields; a fold outside 1..5, a target outside 0..49, an ``esc10``
            other than True/False, an empty or malformed category; a row whose file name
            disagrees with its fold, source, take or target; a file name listed twice; one
            target with two category names; no row.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as err:
        raise RecordingError(path, f"cannot read the file: {err}") from None
    except UnicodeDecodeError as err:
        raise RecordingError(path, f"not a text file: {err}") from None
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as err:
        raise RecordingError(path, f"malformed csv: {err}") from None
    rows = [(no, row) for no, row in enumerate(rows, 1) if any(cell.strip() for cell in row)]
    if not rows or tuple(cell.strip() for cell in rows[0][1]) != ESC50_HEADER:
        found = rows[0][1] if rows else []
        raise RecordingError(path, f"header {found} is not {list(ESC50_HEADER)}")
    clips: list[Esc50Clip] = []
    names: set[str] = set()
    categories: dict[int, str] = {}
    for no, row in rows[1:]:
        clip = _clip(path, no, [cell.strip() for cell in row])
        if clip.filename in names:
            raise RecordingError(path, f"row {no}: {clip.filename} is listed twice")
        if categories.setdefault(clip.target, clip.category) != clip.category:
            raise RecordingError(
                path,
                f"row {no}: target {clip.target} is {clip.category!r} here but "
                f"{categories[clip.target]!r} above",
            )
        names.add(clip.filename)
        clips.append(clip)
    if not clips:
        raise RecordingError(path, "the table lists no clip")
    return clips


def _clip(path: Path, no: int, row: list[str]) -> Esc50Clip:
    """One csv row -> :class:`Esc50Clip`, checked against its own file name."""
    if len(row) != len(ESC50_HEADER):
        raise RecordingError(path, f"row {no}: {len(row)} fields, not {len(ESC50_HEADER)}")
    filename, fold, target, category, esc10, src_file, take = row
    fold_n, target_n = _int(path, no, fold, "fold"), _int(path, no, target, "target")
    _check_fold_target(path, fold_n, target_n, f"row {no}")
    if esc10 not in ("True", "False"):
        raise RecordingError(path, f"row {no}: esc10 {esc10!r} is not True/False")
    if not _CATEGORY.fullmatch(category):
        raise RecordingError(path, f"row {no}: category {category!r} is not a class name")
    named = parse_esc50_name(filename, f"{path} (row {no})")
    if named != (fold_n, src_file, take, target_n):
        raise RecordingError(
            path,
            f"row {no}: {filename} says (fold, source, take, target) = {named}, the row "
            f"{(fold_n, src_file, take, target_n)}",
        )
    return Esc50Clip(filename, fold_n, target_n, category, esc10 == "True", src_file, take)


def discover_esc50(root: str | Path) -> tuple[Path | None, Path | None]:
    """Find an ESC-50 copy under ``root`` (e.g. ``root/ESC-50-master/meta/esc50.csv``).

    Returns:
        ``(meta_csv, audio_dir)``: the first ``esc50.csv`` in sorted walk order, and the folder
        named ``audio`` holding ``.wav`` files that sits beside the csv's ``meta`` folder (else
        the first such folder found); ``None`` for what is absent.

    Raises:
        RecordingError: ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise RecordingError(root, "ESC-50 folder not found")
    meta: Path | None = None
    audio_dirs: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        here = Path(folder)
        if meta is None and "esc50.csv" in files:
            meta = here / "esc50.csv"
        if here.name == "audio" and any(f.lower().endswith(".wav") for f in files):
            audio_dirs.append(here)
    if meta is not None:
        beside = meta.parent.parent / "audio"
        if beside in audio_dirs:
            return meta, beside
    return meta, (audio_dirs[0] if audio_dirs else None)
