"""``sleepbench download psg_audio``: where PSG-Audio is published, how to get it, and a check of
a local copy (``--offline-from``).

PSG-Audio (Korompili et al., Sci Data 2021) is published on Science Data Bank
(dataSetId 778740145531650048) behind a per-file web download; there is no scripted anonymous
API to rely on, so the dataset is fetched by hand and this command copies and verifies it:
every night has EDF parts and an RML of the chosen set, every part parses as EDF (header and
size) and holds a ``Mic`` channel. Counts are reported, because the published night counts
disagree between sources (212, 192, 284, 286).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sleepbench.errors import RecordingError
from sleepbench.io.psg_audio import ANNOTATION_SETS, EDF_DIR, discover_nights
from sleepbench.io.psg_audio_parts import read_part_info

__all__ = ["ACCESS_TEXT", "DATASET", "download_psg_audio", "verify_layout"]

log = logging.getLogger(__name__)

DATASET = "psg-audio"
ACCESS_TEXT = """\
PSG-Audio (Sismanoglio-Amalia Fleming hospital, Athens; Korompili et al., Sci Data 8:197, 2021)
is published on Science Data Bank:
  https://www.scidb.cn/en/detail?dataSetId=778740145531650048
Licence: as shown on that page (an open licence, CC BY 4.0 at the time of writing: check it, and
cite the Sci Data paper). No account or token is needed, but the files are fetched through the
web page (per folder / per file); there is no stable scripted download.

  1. open the page above, choose the newest version (V3 at the time of writing), and download
     the folders APNEA_EDF/ (one sub-folder per night with parts <id>[001].edf, <id>[002].edf, ...,
     about 1 h each, 48-kHz Mic and Tracheal audio: several hundred GB in all), APNEA_RML/ and
     APNEA_RML_clean/ (one <id>.rml per night);
  2. keep the square brackets in the part names (they are part of the layout);
  3. verify and copy the local copy into place:
        sleepbench download psg_audio --offline-from /path/to/download [--dest DIR]

The default destination is $SLEEPBENCH_DATA/psg-audio. See data_cards/psg_audio.md.
"""


def verify_layout(root: Path, annotations: str = "APNEA_RML") -> dict[str, Any]:
    """Check a PSG-Audio folder: parts and RML per night, every part an EDF with ``Mic``.

    Args:
        root: the folder (``APNEA_EDF/``, ``APNEA_RML/``... or flat nights).
        annotations: which RML set must be present.

    Returns:
        ``{"nights": n, "complete": n, "parts": n, "no_rml": [...], "no_parts": [...],
        "bad_parts": {"<file>": "<reason>"}, "missing_part_numbers": {"<night>": [...]},
        "other_rml_set": n}`` (night ids, file names).
    """
    nights = discover_nights(root, annotations)
    other = [s for s in ANNOTATION_SETS if s != annotations][0]
    report: dict[str, Any] = {
        "nights": len(nights),
        "complete": 0,
        "parts": 0,
        "no_rml": [],
        "no_parts": [],
        "bad_parts": {},
        "missing_part_numbers": {},
        "other_rml_set": sum(n.rml is not None for n in discover_nights(root, other)),
    }
    for night in nights:
        if not night.parts:
            report["no_parts"].append(night.night_id)
            continue
        if night.rml is None:
            report["no_rml"].append(night.night_id)
        report["parts"] += len(night.parts)
        numbers = set(night.part_numbers)
        gaps = sorted(set(range(1, max(numbers) + 1)) - numbers)
        if gaps:
            report["missing_part_numbers"][night.night_id] = gaps
        good = True
        for part, number in zip(night.parts, night.part_numbers):
            try:
                read_part_info(part, "Mic", number)
            except RecordingError as err:
                report["bad_parts"][part.name] = err.reason
                good = False
        report["complete"] += int(good and night.rml is not None)
    return report


def _copy_tree(src: Path, dest: Path) -> dict[str, int]:
    """Copy the night files (EDF parts, RMLs) under ``src`` to ``dest``, keeping the layout;
    files already there with the same size are kept."""
    counts = {"copied": 0, "kept": 0}
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        if path.suffix.lower() not in (".edf", ".rml"):
            continue
        target = dest / path.relative_to(src)
        if target.exists() and target.stat().st_size == path.stat().st_size:
            counts["kept"] += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        shutil.copy2(path, part)
        part.replace(target)
        counts["copied"] += 1
    return counts


def download_psg_audio(
    dest: Path | None,
    offline_from: Path | None = None,
    annotations: str = "APNEA_RML",
    print_fn: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Explain where PSG-Audio is published; with ``offline_from``, copy and verify a local copy.

    Args:
        dest: target folder (default ``$SLEEPBENCH_DATA/psg-audio``).
        offline_from: a downloaded copy to verify and copy (skipped when it is ``dest``).
        annotations: the RML set every night must have.
        print_fn: where user-facing text goes.

    Returns:
        ``{"status": "manual" | "verified", ...}`` with :func:`verify_layout`'s report and the
        copy counts.
    """
    from sleepbench.config import default_data_root

    dest = Path(dest) if dest is not None else default_data_root(DATASET)
    print_fn(ACCESS_TEXT)
    if offline_from is None:
        print_fn("no --offline-from given: nothing copied.")
        return {"status": "manual"}
    src = Path(offline_from)
    if not src.is_dir():
        raise FileNotFoundError(f"--offline-from {src} is not a folder")
    report = verify_layout(src, annotations)
    copied = {"copied": 0, "kept": 0}
    if src.resolve() != dest.resolve():
        copied = _copy_tree(src, dest)
    print_fn(
        f"{report['nights']} nights found under {src} ({EDF_DIR}: {report['parts']} parts); "
        f"{report['complete']} complete (parts with a Mic channel + {annotations}); "
        f"{report['other_rml_set']} nights also have the other RML set"
    )
    for key, what in (
        ("no_rml", f"nights without {annotations}"),
        ("no_parts", "RMLs without EDF parts"),
        ("missing_part_numbers", "nights with missing part numbers"),
        ("bad_parts", "unreadable parts or parts without Mic"),
    ):
        if report[key]:
            items = list(report[key].items() if isinstance(report[key], dict) else report[key])
            print_fn(f"{len(items)} {what}: {items[:10]}")
    print_fn(f"copied {copied['copied']} files to {dest} ({copied['kept']} already there)")
    return {"status": "verified", "dest": str(dest), **report, **copied}
