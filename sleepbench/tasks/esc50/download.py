"""``sleepbench download esc50``: where ESC-50 is published, how to get it, an optional fetch of
the archive over HTTP, and a check of a local copy (``--offline-from``).

ESC-50 is one ~600-MB zip on GitHub with no published checksum, so a copy is checked by content:
``meta/esc50.csv`` must be there, every clip it lists is present or reported missing, every file
name agrees with its row, every header is read. The counts (clips, classes, folds) are reported
beside the full set's; a partial copy (e.g. one clip per class) is reported as partial, not
refused. Nothing is fetched unless ``fetch=True`` is asked for.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sleepbench import download as _download
from sleepbench.download import copy_file, require_source, unpack_zip
from sleepbench.errors import RecordingError, UserError
from sleepbench.io.audio import wav_info
from sleepbench.io.esc50 import discover_esc50, read_esc50_meta

__all__ = ["ACCESS_TEXT", "DATASET", "ESC50_URL", "FULL_SET", "download_esc50", "verify_esc50"]

log = logging.getLogger(__name__)

DATASET = "esc50"
ESC50_URL = "https://github.com/karoldvl/ESC-50/archive/master.zip"
FULL_SET = {"clips": 2000, "classes": 50, "folds": 5}
# Every ESC-50 clip: 5 s of mono audio at 44.1 kHz (the dataset's README; the sample clips agree).
CLIP_FS_HZ = 44100.0
CLIP_SAMPLES = 220500
ARCHIVE_NAME = "ESC-50-master.zip"

ACCESS_TEXT = f"""\
ESC-50 (Piczak, ACM Multimedia 2015): 2,000 clips of 5 s (44.1 kHz mono), 50 classes, 5 folds;
clips cut from freesound.org recordings. Licence: CC BY-NC 3.0 (non-commercial, attribution;
the ESC-10 subset CC BY 3.0); keep the LICENSE file (per-clip credits) with any copy, cite the
paper. One archive, no account, no published checksum:
  {ESC50_URL}  (~600 MB)

  - with internet, sleepbench can fetch, unpack and check it:
        sleepbench download esc50 --fetch [--dest DIR]
  - or download it yourself, then check and copy it into place (the zip or its unpacked folder):
        sleepbench download esc50 --offline-from /path/to/master.zip-or-folder [--dest DIR]

The default destination is $SLEEPBENCH_DATA/esc50. See data_cards/esc50.md.
"""


def verify_esc50(root: Path) -> dict[str, Any]:
    """Check an ESC-50 folder (the repository's layout or any folder holding ``esc50.csv`` and the
    clips; searched recursively).

    Args:
        root: the folder.

    Returns:
        ``{"status": "complete" | "partial", "listed": n (rows of esc50.csv), "present": n,
        "classes": n, "folds": n, "per_fold": {fold: n}, "full": FULL_SET, "missing": [files],
        "odd_clips": {file: reason} (not 5 s of 44.1-kHz mono; reported, not a problem),
        "bad_clips": {file: reason} (unreadable),
        "unlisted": [files], "problems": n, "meta": path, "audio": path | None}``; classes and
        folds count the present clips. ``complete`` = all 2,000 clips, 50 classes, 5 folds and
        no problem.

    Raises:
        UserError: no ``esc50.csv`` under ``root``, or none of the clips it lists is there.
        RecordingError: the CSV does not parse, or a row disagrees with its own file name.
    """
    meta, audio = discover_esc50(root)
    if meta is None:
        raise UserError(
            f"no meta/esc50.csv under {root}: not an ESC-50 copy (the archive holds "
            f"ESC-50-master/meta/esc50.csv beside audio/)"
        )
    clips = read_esc50_meta(meta)  # also checks every row against its own file name
    report: dict[str, Any] = {"missing": [], "odd_clips": {}, "bad_clips": {}}
    present = [c for c in clips if audio is not None and (Path(audio) / c.filename).is_file()]
    have = {c.filename for c in present}
    report["missing"] = [c.filename for c in clips if c.filename not in have]
    if not present:
        raise UserError(
            f"none of the {len(clips)} clips listed in {meta} is in "
            f"{audio if audio is not None else 'an audio/ folder beside it'}"
        )
    for clip in present:
        try:
            info = wav_info(Path(audio) / clip.filename)
        except RecordingError as err:
            report["bad_clips"][clip.filename] = err.reason
            continue
        if (info.fs_hz, info.n_samples, info.channels) != (CLIP_FS_HZ, CLIP_SAMPLES, 1):
            # Reported, not refused: the loader resamples and pads whatever it gets.
            report["odd_clips"][clip.filename] = (
                f"{info.fs_hz:g} Hz, {info.n_samples} samples, {info.channels} channel(s); "
                f"ESC-50 clips are {CLIP_FS_HZ:g} Hz, {CLIP_SAMPLES} samples, mono"
            )
    listed = {c.filename for c in clips}
    report["unlisted"] = sorted(
        p.name for p in Path(audio).iterdir() if p.suffix.lower() == ".wav" and p.name not in listed
    )
    problems = len(report["bad_clips"])
    classes = {c.target for c in present}
    per_fold = Counter(c.fold for c in present)
    complete = (
        len(present) == FULL_SET["clips"]
        and len(classes) == FULL_SET["classes"]
        and len(per_fold) == FULL_SET["folds"]
        and not report["missing"]
        and problems == 0
    )
    report.update(
        status="complete" if complete else "partial",
        listed=len(clips),
        present=len(present),
        classes=len(classes),
        folds=len(per_fold),
        per_fold=dict(sorted(per_fold.items())),
        problems=problems,
        full=dict(FULL_SET),
        meta=str(meta),
        audio=str(audio),
    )
    return report


def _copy_esc50(report: dict[str, Any], dest: Path, move: bool) -> dict[str, int]:
    """Copy the present clips to ``dest/audio``, the CSV to ``dest/meta/esc50.csv`` and the
    dataset's LICENSE / README.md (found beside ``meta/``) to ``dest``."""
    meta, audio = Path(report["meta"]), Path(report["audio"])
    files = [(meta, dest / "meta" / "esc50.csv")]
    unlisted = set(report["unlisted"])
    files += [
        (audio / name, dest / "audio" / name)
        for name in sorted(p.name for p in audio.iterdir() if p.suffix.lower() == ".wav")
        if name not in unlisted
    ]
    for extra in ("LICENSE", "README.md"):
        path = meta.parent.parent / extra
        if path.is_file():
            files.append((path, dest / extra))
    counts = {"copied": 0, "kept": 0}
    for src, target in files:
        counts["copied" if copy_file(src, target, move) else "kept"] += 1
    return counts


def _summary_lines(report: dict[str, Any], src: Path | str) -> list[str]:
    full = report["full"]
    lines = [
        f"{report['status']} copy under {src}: {report['present']} of {full['clips']} clips "
        f"({report['listed']} listed in esc50.csv), {report['classes']} of {full['classes']} "
        f"classes, {report['folds']} of {full['folds']} folds {report['per_fold']}"
    ]
    for key, what in (
        ("missing", "clips listed in esc50.csv but not found"),
        ("bad_clips", "unreadable clips"),
        ("odd_clips", "clips that are not 5 s of 44.1-kHz mono"),
        ("unlisted", ".wav files not listed in esc50.csv (not copied)"),
    ):
        if report[key]:
            items = list(report[key].items() if isinstance(report[key], dict) else report[key])
            lines.append(f"{len(items)} {what}: {items[:10]}")
    return lines


def _fetch_archive(staging: Path, url: str, print_fn: Callable[[str], None]) -> Path:
    """The archive in ``staging``, fetched unless a finished download is already there (the
    fetch writes ``.part`` and renames, so a file under the final name is complete)."""
    archive = staging / ARCHIVE_NAME
    if archive.is_file():
        print_fn(f"using the archive already downloaded: {archive}")
        return archive
    print_fn(f"fetching {url} (~600 MB) ...")
    try:
        _download.fetch_url(url, archive)
    except OSError as err:  # URLError, HTTPError, timeouts are OSErrors
        raise UserError(f"could not fetch {url}: {err} (no internet? use --offline-from)") from None
    return archive


def download_esc50(
    dest: Path | None,
    offline_from: Path | None = None,
    fetch: bool = False,
    url: str = ESC50_URL,
    print_fn: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Explain where ESC-50 is published; fetch it, or check and copy a local copy.

    Args:
        dest: target folder (default ``$SLEEPBENCH_DATA/esc50``).
        offline_from: a downloaded ``master.zip`` or a folder holding ``esc50.csv`` and the clips
            (searched recursively); when it is ``dest`` itself the copy is only checked.
        fetch: download ``url`` over HTTP (needs internet); skipped when ``dest`` already holds
            the complete set.
        url: the archive's address (a mirror, or a ``file://`` URL).
        print_fn: where user-facing text goes.

    Returns:
        ``{"status": "manual", "text": ACCESS_TEXT}`` with neither ``offline_from`` nor
        ``fetch``; otherwise :func:`verify_esc50`'s report with ``"dest"``, ``"fetched"`` and the
        copy counts ``"copied"`` / ``"kept"``.

    Raises:
        UserError: both sources given, ``offline_from`` missing or not a folder / zip, the
            archive unreadable or not fetched, no ``esc50.csv`` or no listed clip in the copy.
    """
    from sleepbench.config import default_data_root

    dest = Path(dest) if dest is not None else default_data_root(DATASET)
    print_fn(ACCESS_TEXT)
    if offline_from is not None and fetch:
        raise UserError("give either --offline-from or --fetch, not both")
    if offline_from is None and not fetch:
        print_fn("no --offline-from and no --fetch: nothing copied.")
        return {"status": "manual", "text": ACCESS_TEXT}
    staging = dest / ".staging"
    if fetch:
        if dest.is_dir() and discover_esc50(dest)[0] is not None:
            done = verify_esc50(dest)
            if done["status"] == "complete":
                print_fn(f"{dest} already holds the complete ESC-50: nothing fetched")
                return {**done, "dest": str(dest), "fetched": False, "copied": 0, "kept": 0}
        src, label = _fetch_archive(staging, url, print_fn), url
    else:
        src = require_source(Path(offline_from))
        label = str(src)
    move = src.is_file()
    try:
        if move:
            archive, src = src, staging / "unpacked"
            try:
                unpack_zip(archive, src)
            except UserError:
                if fetch:  # a corrupt download (an error page, a cut transfer) is not reused
                    archive.unlink(missing_ok=True)
                raise
        report = verify_esc50(src)
        copied = {"copied": 0, "kept": 0}
        if src.resolve() != dest.resolve():
            copied = _copy_esc50(report, dest, move)
    finally:
        # A fetched archive stays until its content is in place, so a failed unpack or check
        # does not cost a second 600-MB download; an empty staging folder goes.
        shutil.rmtree(staging / "unpacked", ignore_errors=True)
        if staging.is_dir() and not any(staging.iterdir()):
            staging.rmdir()
    shutil.rmtree(staging, ignore_errors=True)
    for line in _summary_lines(report, label):
        print_fn(line)
    print_fn(f"copied {copied['copied']} files to {dest} ({copied['kept']} already there)")
    return {**report, "dest": str(dest), "fetched": fetch, **copied}
