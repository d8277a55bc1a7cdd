"""SHHS in the NSRR layout: which nights exist under a root, and their AHI from the dataset CSV.

Layout (as downloaded from sleepdata.org; ``<v>`` is ``shhs1`` or ``shhs2``)::

    polysomnography/edfs/<v>/<v>-<nsrrid>.edf
    polysomnography/annotations-events-nsrr/<v>/<v>-<nsrrid>-nsrr.xml
    datasets/<v>-dataset-<version>.csv            nsrrid, ahi_a0h3a, ahi_a0h4, ...
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from pathlib import Path

from sleepbench.cache.build import SourceRecord
from sleepbench.errors import RecordingError

__all__ = ["AHI_RULES", "VISITS", "discover_sources", "find_dataset_csv", "read_ahi_table"]

VISITS = ("shhs1", "shhs2")
#: NSRR AHI variable -> rule of :func:`sleepbench.io.nsrr_xml.ahi_from_events`
AHI_RULES = {"ahi_a0h3": "3", "ahi_a0h3a": "3a", "ahi_a0h4": "4", "ahi_a0h4a": "4a"}
_EDF_DIR = Path("polysomnography") / "edfs"
_XML_DIR = Path("polysomnography") / "annotations-events-nsrr"
_NIGHT = re.compile(r"^(shhs[12])-(\d+)$")


def find_dataset_csv(root: Path, visit: str) -> Path | None:
    """Newest ``datasets/<visit>-dataset-<version>.csv`` under ``root`` (None when absent).

    Versions compare numerically (``0.21.0`` > ``0.9.0``).
    """
    found = []
    for path in (Path(root) / "datasets").glob(f"{visit}-dataset-*.csv"):
        version = path.stem[len(f"{visit}-dataset-") :]
        key = tuple(int(p) if p.isdigit() else -1 for p in version.split("."))
        found.append((key, path))
    return max(found)[1] if found else None


def read_ahi_table(path: Path, variable: str) -> dict[str, float]:
    """``nsrrid -> AHI`` (events/h) from an NSRR dataset CSV; empty or non-numeric cells are left out.

    Raises:
        RecordingError: the CSV has no ``nsrrid`` or no ``variable`` column (the message lists
            the AHI-like columns present).
    """
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        lower = {c.lower(): c for c in columns}
        if "nsrrid" not in lower or variable.lower() not in lower:
            ahi_cols = [c for c in columns if c.lower().startswith("ahi")]
            raise RecordingError(
                path,
                f"no 'nsrrid' and {variable!r} columns (AHI columns present: {ahi_cols[:12]})",
            )
        id_col, ahi_col = lower["nsrrid"], lower[variable.lower()]
        table = {}
        for row in reader:
            try:
                value = float(row[ahi_col])
            except (TypeError, ValueError):
                continue
            if math.isfinite(value) and value >= 0:
                table[str(row[id_col]).strip()] = value
    return table


def discover_sources(
    root: Path, visits: Sequence[str], ahi_variable: str, use_csv: bool = True
) -> list[SourceRecord]:
    """One :class:`SourceRecord` per night found under ``root`` (EDF and/or NSRR XML).

    Record id ``<visit>-<nsrrid>``, subject id ``<nsrrid>`` (shared by a person's two visits).
    ``meta`` carries ``visit``, ``nsrrid``, ``edf`` / ``xml`` (paths or None), ``expected_edf``
    and ``ahi_csv`` (the CSV value or None; always None when ``use_csv`` is false). A night
    lacking a file it needs is listed too, flagged ``missing`` (the cache build reports it as
    skipped instead of silently ignoring it): an XML without its EDF, or an EDF without XML
    when the CSV gives no AHI for it (or is not used). The dataset CSV is among every record's
    ``paths``: editing it changes the cache fingerprint.

    Raises:
        RecordingError: ``use_csv`` and a dataset CSV lacks the ``ahi_variable`` column.
    """
    root = Path(root)
    sources = []
    for visit in visits:
        if visit not in VISITS:
            raise ValueError(f"unknown SHHS visit {visit!r}; choose from {VISITS}")
        edfs = {p.stem: p for p in (root / _EDF_DIR / visit).glob(f"{visit}-*.edf")}
        xmls = {
            p.name[: -len("-nsrr.xml")]: p
            for p in (root / _XML_DIR / visit).glob(f"{visit}-*-nsrr.xml")
        }
        csv_path = find_dataset_csv(root, visit) if use_csv else None
        table = read_ahi_table(csv_path, ahi_variable) if csv_path is not None else {}
        for rid in sorted(set(edfs) | set(xmls)):
            match = _NIGHT.match(rid)
            if match is None:
                continue
            nsrrid = match.group(2)
            edf, xml = edfs.get(rid), xmls.get(rid)
            paths = tuple(p for p in (edf, xml, csv_path) if p is not None)
            expected_edf = root / _EDF_DIR / visit / f"{rid}.edf"
            meta = {
                "visit": visit,
                "nsrrid": nsrrid,
                "edf": str(edf) if edf else None,
                "xml": str(xml) if xml else None,
                "expected_edf": str(expected_edf),
                "ahi_csv": table.get(nsrrid),
                "csv": str(csv_path) if csv_path else None,
            }
            missing = None
            if edf is None:
                missing = f"annotation file {xml} has no EDF: {expected_edf} does not exist"
            elif xml is None and meta["ahi_csv"] is None:
                expected_xml = root / _XML_DIR / visit / f"{rid}-nsrr.xml"
                csv_note = (
                    f"no {ahi_variable} value for nsrrid {nsrrid} in {csv_path}"
                    if csv_path is not None
                    else ("no dataset CSV" if use_csv else "labels.source=xml")
                )
                missing = f"{edf} has no label: {expected_xml} does not exist and {csv_note}"
            sources.append(SourceRecord(rid, nsrrid, paths, meta, missing))
    return sources
