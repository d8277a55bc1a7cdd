"""PSG-Audio nights: find the EDF parts and RML of each night.

Layout (SPECS §1.8, dataset version V3)::

    APNEA_EDF/<id>/<id>[001].edf, <id>[002].edf, ...   (~1-h parts; or all parts flat in one folder)
    APNEA_RML/<id>.rml                                  (or APNEA_RML_clean/<id>.rml; or beside the parts)

The square brackets make glob patterns useless (``[001]`` is a character class), so folders are
*listed* and names matched with a regular expression; parts are ordered by their number.

Placing a night's parts on its timeline (gaps, anonymised start times) and streaming its audio
at 16 kHz without ever holding the night at 48 kHz are in :mod:`sleepbench.io.psg_audio_parts`;
this module re-exports those names.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sleepbench.io.psg_audio_parts import (
    NightLayout,
    PartInfo,
    place_parts,
    read_part_info,
    stream_audio,
)

__all__ = [
    "ANNOTATION_SETS",
    "EDF_DIR",
    "NightFiles",
    "NightLayout",
    "PartInfo",
    "discover_nights",
    "parse_part_name",
    "place_parts",
    "read_part_info",
    "stream_audio",
]

EDF_DIR = "APNEA_EDF"
#: The two annotation sets of PSG-Audio (folder names).
ANNOTATION_SETS = ("APNEA_RML", "APNEA_RML_clean")
_PART = re.compile(r"^(?P<night>.+?)\[(?P<part>\d+)\]\.edf$", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# discovery


@dataclass(frozen=True)
class NightFiles:
    """The files of one night.

    Args:
        night_id: e.g. ``"00000995-100507"``.
        parts: EDF parts in part-number order.
        part_numbers: their numbers (``[001]`` -> 1), parallel to ``parts``.
        rml: the chosen annotation set's RML, ``None`` when absent.
        expected_rml: where the RML was looked for (for messages).
    """

    night_id: str
    parts: tuple[Path, ...]
    part_numbers: tuple[int, ...]
    rml: Path | None
    expected_rml: Path


def parse_part_name(name: str) -> tuple[str, int] | None:
    """``"00000995-100507[002].edf"`` -> ``("00000995-100507", 2)``; ``None`` for other names."""
    match = _PART.match(name)
    return (match["night"], int(match["part"])) if match else None


def discover_nights(root: str | Path, annotations: str = "APNEA_RML") -> list[NightFiles]:
    """Every night under ``root``: its EDF parts and its RML of the ``annotations`` set.

    Folders are listed (``os.walk``), never globbed. RMLs come from the folder named
    ``annotations`` (searched under ``root``); when no such folder exists, an ``<id>.rml`` beside
    the night's parts is used (flat copies). Nights with parts but no RML, and RMLs without
    parts, are listed too (``rml=None`` / ``parts=()``) so the caller can report them.

    Args:
        root: the dataset folder.
        annotations: ``"APNEA_RML"`` or ``"APNEA_RML_clean"``.

    Returns:
        Nights sorted by id.
    """
    if annotations not in ANNOTATION_SETS:
        raise ValueError(f"annotations must be one of {ANNOTATION_SETS}, got {annotations!r}")
    root = Path(root)
    parts: dict[str, dict[int, Path]] = {}
    beside: dict[str, Path] = {}
    rml_dir: Path | None = None
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        here = Path(folder)
        if here.name in ANNOTATION_SETS:
            if here.name == annotations and rml_dir is None:
                rml_dir = here
            continue  # annotation folders hold no parts; the other set is not ours
        for name in sorted(files):
            parsed = parse_part_name(name)
            if parsed is not None:
                night, number = parsed
                # a second copy of a part (another folder) is ignored: the first listed wins
                parts.setdefault(night, {}).setdefault(number, here / name)
            elif name.lower().endswith(".rml"):
                beside.setdefault(name[: -len(".rml")], here / name)
    rmls: dict[str, Path] = {}
    if rml_dir is not None:
        rmls = {n[: -len(".rml")]: rml_dir / n for n in os.listdir(rml_dir) if n.endswith(".rml")}
    else:
        rmls = beside
    out = []
    for night in sorted(set(parts) | set(rmls)):
        numbers = sorted(parts.get(night, {}))
        expected = (rml_dir or root / annotations) / f"{night}.rml"
        out.append(
            NightFiles(
                night_id=night,
                parts=tuple(parts[night][n] for n in numbers),
                part_numbers=tuple(numbers),
                rml=rmls.get(night),
                expected_rml=rmls.get(night, expected),
            )
        )
    return out
