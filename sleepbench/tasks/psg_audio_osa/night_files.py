"""Which files make one PSG-Audio night for ``sleepbench predict``: its numbered EDF parts and,
optionally, its RML, checked before anything is read (:func:`pair_files`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sleepbench.deploy.predict import InputError
from sleepbench.io.psg_audio import parse_part_name

__all__ = ["ACCEPTS", "NightFiles", "pair_files"]

ACCEPTS = (
    "every EDF part of one PSG-Audio night (<night>[001].edf, <night>[002].edf, ...; "
    "APNEA_EDF/<night>/), optionally its RML annotation <night>.rml (APNEA_RML)"
)


@dataclass(frozen=True)
class NightFiles:
    """One night's files as given: its id, parts in order with their numbers, its RML."""

    night_id: str
    parts: tuple[Path, ...]
    part_numbers: tuple[int, ...]
    rml: Path | None


def pair_files(files: Sequence[Path]) -> NightFiles:
    """The night's EDF parts (by their ``[NNN]`` number) and, when given, its RML.

    Raises:
        InputError: a file that is neither an EDF nor an RML; an EDF not named as a PSG-Audio
            part; parts of several nights; a part given twice; a part number missing from
            1..last; several RMLs, or an RML named for another night.
    """
    edfs = [f for f in files if f.suffix.lower() == ".edf"]
    rmls = [f for f in files if f.suffix.lower() == ".rml"]
    other = [f.name for f in files if f not in edfs and f not in rmls]
    if other:
        raise InputError(
            f"{', '.join(other)}: not an EDF part or RML (psg_audio_osa reads {ACCEPTS})"
        )
    if not edfs:
        raise InputError(f"no EDF part given (psg_audio_osa reads {ACCEPTS})")
    numbered: dict[int, Path] = {}
    nights: dict[str, list[str]] = {}
    for edf in edfs:
        parsed = parse_part_name(edf.name)
        if parsed is None:
            raise InputError(f"{edf.name}: not a PSG-Audio part name (<night>[NNN].edf)")
        night, number = parsed
        nights.setdefault(night, []).append(edf.name)
        if number in numbered:
            raise InputError(f"{edf.name}: part {number} given twice ({numbered[number].name})")
        numbered[number] = edf
    if len(nights) > 1:
        listed = "; ".join(f"{n}: {', '.join(names)}" for n, names in sorted(nights.items()))
        raise InputError(f"parts of {len(nights)} nights given ({listed}): give one night's parts")
    (night,) = nights
    missing = sorted(set(range(1, max(numbered) + 1)) - set(numbered))
    if missing:
        names = ", ".join(f"{night}[{n:03d}].edf" for n in missing)
        raise InputError(f"{names} missing: give every part of night {night}")
    if len(rmls) > 1:
        raise InputError(f"at most one RML per night, got {', '.join(f.name for f in rmls)}")
    rml = rmls[0] if rmls else None
    if rml is not None and rml.stem != night:
        raise InputError(
            f"{rml.name} is not the annotation of night {night} (expected {night}.rml)"
        )
    order = sorted(numbered)
    return NightFiles(night, tuple(numbered[n] for n in order), tuple(order), rml)
