"""Parsing an annotation XML file (NSRR, Profusion, RML) into an element tree, or one clear error."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from sleepbench.errors import RecordingError

__all__ = ["parse_xml"]


def parse_xml(path: str | Path) -> ET.Element:
    """Parse ``path`` and return its root element.

    Args:
        path: the XML file.

    Returns:
        The root element (tags keep their ``{namespace}`` prefix).

    Raises:
        RecordingError: the file is missing or is not well-formed XML in a known encoding
            (expat's syntax errors, an unknown ``encoding=`` declaration, undecodable bytes).
    """
    path = Path(path)
    if not path.is_file():
        raise RecordingError(path, "file not found")
    try:
        return ET.parse(path).getroot()
    except (ET.ParseError, LookupError, UnicodeError, ValueError) as err:
        # LookupError: a mangled encoding declaration (encoding="tf-8")
        raise RecordingError(path, f"malformed XML: {err}") from err
