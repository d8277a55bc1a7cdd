"""``sleepbench download icbhi``: where the ICBHI 2017 Respiratory Sound Database is published, how
to get it, and a check of a local copy (``--offline-from``).

The database is published on the challenge site (a zip of the recordings plus separate split,
diagnosis and demographic files) and mirrored on Kaggle behind an account; neither has a stable
scripted download, so the files are fetched by hand and this command copies and checks them:
every ``.wav`` has its ``.txt``, every stem parses as an ICBHI name, every annotation parses,
every ``.wav`` header is readable, and the split / fold / diagnosis files are found. The counts
(recordings, patients, cycles) are reported beside the full database's; a partial copy (e.g. the
annotations of all 920 recordings with only a few ``.wav``) is reported as partial, not refused.

Local copies go through :mod:`sleepbench.download`'s ``require_source``, ``unpack_zip`` and
``copy_file``.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sleepbench.download import copy_file, require_source, unpack_zip
from sleepbench.errors import RecordingError, UserError
from sleepbench.io.audio import wav_info
from sleepbench.io.icbhi import (
    CLASSES,
    check_cycles_within,
    parse_icbhi_name,
    read_cycles,
    read_demographics,
    read_diagnoses,
    read_patient_folds,
)
from sleepbench.io.icbhi_layout import (
    discover_icbhi,
    read_filename_differences,
    read_official_split,
)

__all__ = [
    "ACCESS_TEXT",
    "DATASET",
    "FULL_DATABASE",
    "download_icbhi",
    "verify_icbhi",
]

log = logging.getLogger(__name__)

DATASET = "icbhi"
# The published size of the database (Rocha et al. 2019; the cycle count also measured on the
# 920 annotation files).
FULL_DATABASE = {"recordings": 920, "patients": 126, "cycles": 6898}
RECORDINGS_DIR = "audio_and_txt_files"
METADATA_DIR = "metadata"

ACCESS_TEXT = """\
ICBHI 2017 Respiratory Sound Database (Rocha et al., Physiol. Meas. 40:035001, 2019): 920
recordings (4/10/44.1 kHz, 4 devices) of 126 patients, 6,898 annotated respiratory cycles.
Terms: "freely available for research"; no licence text is attached, so check the terms on the
site before redistributing any file, and cite the paper. No stable scripted download exists.

  1. challenge site (no account): https://bhichallenge.med.auth.gr/ , page "ICBHI 2017 Challenge":
     ICBHI_final_database.zip (920 .wav + 920 .txt), ICBHI_challenge_train_test.txt (the official
     60/40 split list), the diagnosis file and the demographic file;
     or the Kaggle mirror "Respiratory Sound Database" (vbookshelf/respiratory-sound-database,
     needs a Kaggle account); it has no split list: add ICBHI_challenge_train_test.txt from the
     challenge site;
  2. check the copy and put it in place; give a folder holding the unpacked database and the
     list files (any layout, searched recursively) or the zip itself:
        sleepbench download icbhi --offline-from /path/to/folder-or-zip [--dest DIR]
     The patient-wise fold list (patient_list_foldwise.txt) is not on the challenge site: it
     comes with the RespireNet and Patch-Mix code.

The default destination is $SLEEPBENCH_DATA/icbhi. See data_cards/icbhi.md.
"""


def _metadata_report(layout: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """What the split, fold, diagnosis, demographic and name-change files hold (None: not found)
    and ``{file: reason}`` for those that do not parse. The split's ``found`` / ``with_audio``
    count its recordings present in the copy (any file / a ``.wav``)."""
    stems = set(layout.recordings)
    with_audio = {s for s, (wav, _) in layout.recordings.items() if wav is not None}
    meta: dict[str, Any] = {}
    bad: dict[str, str] = {}
    readers: dict[str, tuple[Callable[..., Any], Callable[[Any], dict[str, Any]]]] = {
        "official_split": (
            lambda p: read_official_split(p, known_stems=stems),
            lambda split: {
                "listed": len(split),
                "train": sum(v == "train" for v in split.values()),
                "test": sum(v == "test" for v in split.values()),
                "found": len(stems & set(split)),
                "with_audio": len(with_audio & set(split)),
            },
        ),
        "patient_folds": (
            read_patient_folds,
            lambda folds: {"patients": len(folds), "folds": len(set(folds.values()))},
        ),
        "diagnoses": (read_diagnoses, lambda d: {"patients": len(d)}),
        "demographics": (read_demographics, lambda d: {"patients": len(d)}),
        "filename_differences": (read_filename_differences, lambda names: {"names": len(names)}),
    }
    for key, (read, summarise) in readers.items():
        path = getattr(layout, key)
        if path is None:
            meta[key] = None
            continue
        try:
            meta[key] = {"file": str(path), **summarise(read(path))}
        except RecordingError as err:
            meta[key] = None
            where = err.path.replace(str(path), "").strip()  # e.g. "(line 3)"
            bad[Path(path).name] = f"{where} {err.reason}".strip()
    return meta, bad


def verify_icbhi(root: Path) -> dict[str, Any]:
    """Check an ICBHI folder (any layout: challenge, Kaggle, the shared sample; searched
    recursively).

    Args:
        root: the folder.

    Returns:
        ``{"status": "complete" | "partial", "recordings": n (stems with a .wav or a .txt),
        "wavs": n, "txts": n, "pairs": n, "txt_only": n, "patients": n,
        "patients_with_audio": n, "cycles": n, "classes": {"normal": n, ...},
        "devices": {device: n}, "rates_hz": {fs: n}, "subtypes": {"PCM_16": n, ...},
        "metadata": {key: {"file": path, counts...} | None}, "full": FULL_DATABASE,
        "wav_without_txt": [stems], "bad_annotations": {file: reason} (unparsable, or cycles
        past the end of the recording), "bad_wavs": {file: reason}, "bad_metadata":
        {file: reason}, "unrecognised_wavs": [paths] (stems that are no ICBHI name: never
        copied, not counted as problems), "problems": n, "layout": IcbhiLayout}``.
        ``complete`` = the full database's counts and no problem.

    Raises:
        UserError: no ICBHI recording under ``root``.
        RecordingError: ``root`` holds two ``.wav`` files of one recording.
    """
    root = Path(root)
    layout = discover_icbhi(root)
    if not layout.recordings:
        raise UserError(
            f"no ICBHI recordings (<patient>_<index>_<location>_<mode>_<device>.wav/.txt) "
            f"found under {root}"
        )
    report: dict[str, Any] = {"wav_without_txt": [], "bad_annotations": {}, "bad_wavs": {}}
    patients: set[str] = set()
    patients_audio: set[str] = set()
    devices: Counter[str] = Counter()
    rates: Counter[float] = Counter()
    subtypes: Counter[str] = Counter()
    classes: Counter[int] = Counter()
    wavs = txts = pairs = 0
    for stem, (wav, txt) in sorted(layout.recordings.items()):
        name = parse_icbhi_name(stem, wav or txt)  # discover_icbhi keeps only ICBHI names
        patients.add(name.patient)
        devices[name.device] += 1
        cycles = None
        if txt is not None:
            txts += 1
            try:
                cycles = read_cycles(txt)
                classes.update(c.label for c in cycles)
            except RecordingError as err:
                report["bad_annotations"][Path(txt).name] = err.reason
        if wav is None:
            continue
        wavs += 1
        patients_audio.add(name.patient)
        if txt is None:
            report["wav_without_txt"].append(stem)
        else:
            pairs += 1
        try:
            info = wav_info(wav)
        except RecordingError as err:
            report["bad_wavs"][Path(wav).name] = err.reason
            continue
        rates[info.fs_hz] += 1
        subtypes[info.subtype] += 1
        if cycles is not None:
            try:  # the annotations of another recording, or a truncated .wav
                check_cycles_within(txt, cycles, info.duration_s)
            except RecordingError as err:
                report["bad_annotations"][Path(txt).name] = err.reason
    report["unrecognised_wavs"] = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*.wav")
        if p.stem not in layout.recordings and not p.name.startswith(".")
    )
    metadata, report["bad_metadata"] = _metadata_report(layout)
    problems = sum(
        len(report[k]) for k in ("wav_without_txt", "bad_annotations", "bad_wavs", "bad_metadata")
    )
    n_cycles = sum(classes.values())
    complete = (
        pairs == FULL_DATABASE["recordings"]
        and len(patients) == FULL_DATABASE["patients"]
        and n_cycles == FULL_DATABASE["cycles"]
        and problems == 0
    )
    report.update(
        status="complete" if complete else "partial",
        recordings=len(layout.recordings),
        wavs=wavs,
        txts=txts,
        pairs=pairs,
        txt_only=txts - pairs,
        patients=len(patients),
        patients_with_audio=len(patients_audio),
        cycles=n_cycles,
        classes={CLASSES[k]: classes.get(k, 0) for k in range(len(CLASSES))},
        devices=dict(sorted(devices.items())),
        rates_hz=dict(sorted(rates.items())),
        subtypes=dict(sorted(subtypes.items())),
        metadata=metadata,
        problems=problems,
        full=dict(FULL_DATABASE),
        layout=layout,
    )
    return report


def _copy_icbhi(report: dict[str, Any], dest: Path, move: bool) -> dict[str, int]:
    """Copy the recordings into ``dest/audio_and_txt_files`` and the metadata files found into
    ``dest/metadata`` (their own names kept, so the reader finds them again)."""
    layout = report["layout"]
    counts = {"copied": 0, "kept": 0}
    files: list[tuple[Path, Path]] = []
    for pair in layout.recordings.values():
        files += [(Path(p), dest / RECORDINGS_DIR / Path(p).name) for p in pair if p is not None]
    for key in report["metadata"]:
        path = getattr(layout, key)
        if path is not None:
            files.append((Path(path), dest / METADATA_DIR / Path(path).name))
    for src, target in files:
        counts["copied" if copy_file(src, target, move) else "kept"] += 1
    return counts


def _summary_lines(report: dict[str, Any], src: Path) -> list[str]:
    full = report["full"]
    lines = [
        f"{report['status']} copy under {src}: {report['pairs']} of {full['recordings']} "
        f"recordings with .wav and .txt ({report['wavs']} .wav, {report['txts']} .txt), "
        f"{report['patients']} of {full['patients']} patients "
        f"({report['patients_with_audio']} with audio), {report['cycles']} of {full['cycles']} "
        f"cycles {report['classes']}",
        f"devices {report['devices']}; "
        f"rates (Hz) { {f'{fs:g}': n for fs, n in report['rates_hz'].items()} }; "
        f"formats {report['subtypes']}",
    ]
    for key, meta in report["metadata"].items():
        if meta is None:
            lines.append(f"{key}: not found")
        else:
            details = ", ".join(f"{k} {v}" for k, v in meta.items() if k != "file")
            lines.append(f"{key}: {Path(meta['file']).name} ({details})")
    if report["metadata"]["official_split"] is None:
        lines.append(
            "no official split list: get ICBHI_challenge_train_test.txt from the challenge site "
            "(protocol icbhi_official)"
        )
    if report["metadata"]["patient_folds"] is None:
        lines.append(
            "no patient fold list: patient_list_foldwise.txt comes with the RespireNet and "
            "Patch-Mix code (protocol icbhi_patient_folds)"
        )
    for key, what in (
        ("wav_without_txt", ".wav files without their .txt annotation"),
        ("unrecognised_wavs", ".wav files whose stem is not an ICBHI name (not copied)"),
        ("bad_annotations", "annotation files that do not parse"),
        ("bad_wavs", "unreadable .wav files"),
        ("bad_metadata", "metadata files that do not parse"),
    ):
        if report[key]:
            items = list(report[key].items() if isinstance(report[key], dict) else report[key])
            lines.append(f"{len(items)} {what}: {items[:10]}")
    return lines


def download_icbhi(
    dest: Path | None,
    offline_from: Path | None = None,
    print_fn: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Explain where ICBHI 2017 is published; with ``offline_from``, check and copy a local copy.

    Args:
        dest: target folder (default ``$SLEEPBENCH_DATA/icbhi``).
        offline_from: a downloaded copy: a folder (searched recursively) or a ``.zip``; when it
            is ``dest`` itself the copy is only checked.
        print_fn: where user-facing text goes.

    Returns:
        ``{"status": "manual", "text": ACCESS_TEXT}`` without ``offline_from``; otherwise
        :func:`verify_icbhi`'s report (less the layout) with ``"dest"`` and the copy counts
        ``"copied"`` / ``"kept"``.

    Raises:
        UserError: ``offline_from`` is missing, not a folder or zip, or holds no ICBHI recording.
    """
    from sleepbench.config import default_data_root

    dest = Path(dest) if dest is not None else default_data_root(DATASET)
    print_fn(ACCESS_TEXT)
    if offline_from is None:
        print_fn("no --offline-from given: nothing copied.")
        return {"status": "manual", "text": ACCESS_TEXT}
    src = require_source(Path(offline_from))
    staging = dest / ".staging"
    move = src.is_file()
    try:
        if move:
            src = unpack_zip(src, staging / "unpacked")
        report = verify_icbhi(src)
        copied = {"copied": 0, "kept": 0}
        if src.resolve() != dest.resolve():
            copied = _copy_icbhi(report, dest, move)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for line in _summary_lines(report, Path(offline_from)):
        print_fn(line)
    print_fn(f"copied {copied['copied']} files to {dest} ({copied['kept']} already there)")
    report.pop("layout")
    return {**report, "dest": str(dest), **copied}
