"""The byte-mutation machinery of the reader fuzz tests (``tests/io/test_fuzz_*.py``).

A test starts from a valid file, lets hypothesis draw 1-4 mutations (:func:`mutated`), lays the
files out in a fresh folder (:func:`lay_out`) and calls the reader (:func:`fuzz_once`): anything
but a :class:`~sleepbench.errors.RecordingError` fails. ``SLEEPBENCH_FUZZ_EXAMPLES`` sets the
examples per test (default 150).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from sleepbench.errors import RecordingError

__all__ = ["EXAMPLES", "FUZZ", "fuzz_once", "lay_out", "mutated"]

EXAMPLES = int(os.environ.get("SLEEPBENCH_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # tmp_path is shared by the examples of one test; each example gets its own folder in it.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_NUMBER = re.compile(rb"[-+]?\d+(?:\.\d+)?")
# Numbers that have broken readers: zero, negative, absurdly large or small, not a number.
_EXTREMES = (b"0", b"-1", b"-30", b"1e300", b"1e-12", b"1000000", b"99999999", b"nan", b"x", b"")
_KINDS = ("flip", "set", "insert", "delete", "truncate", "number")


@st.composite
def mutated(draw: st.DrawFn, original: bytes, hot: int) -> bytes:
    """``original`` after 1-4 mutations; half the positions fall in its first ``hot`` bytes."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        n = len(data)
        kind = draw(st.sampled_from(_KINDS)) if n else "insert"
        pos = draw(
            st.one_of(st.integers(0, max(0, min(n, hot) - 1)), st.integers(0, max(0, n - 1)))
        )
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del data[pos:]
        else:
            numbers = list(_NUMBER.finditer(data))
            if not numbers:
                continue
            match = numbers[draw(st.integers(0, len(numbers) - 1))]
            new = draw(st.sampled_from(_EXTREMES))
            if draw(st.booleans()):  # keep the width: fixed-width fields (EDF) stay aligned
                new = new[: len(match[0])].ljust(len(match[0]))
            data[match.start() : match.end()] = new
    return bytes(data)


def fuzz_once(
    data: st.DataObject,
    tmp_path: Path,
    files: Mapping[str, bytes | Path],
    target: str,
    call: Callable[[Path], object],
    hot: int = 512,
) -> None:
    """Mutate ``files[target]``, lay out all ``files`` in a fresh folder and run ``call`` on it.

    ``files`` maps a file name to its bytes, or to a real file that is linked (never copied into
    the repository, never written to). ``call`` returns normally for a file it accepts (after
    checking the result) or raises; only :class:`RecordingError` may escape.
    """
    original = files[target]
    content = original.read_bytes() if isinstance(original, Path) else original
    changed = data.draw(mutated(content, hot), label=f"mutated {target}")
    folder = lay_out(tmp_path, {**files, target: changed})
    try:
        call(folder)
    except RecordingError as err:
        assert err.reason and err.path, "a RecordingError names the file and the problem"
    finally:
        shutil.rmtree(folder)


def lay_out(tmp_path: Path, files: Mapping[str, bytes | Path]) -> Path:
    """A fresh folder holding ``files``: bytes are written, real files linked (read-only)."""
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    for name, source in files.items():
        if isinstance(source, Path):
            (folder / name).symlink_to(source)
        else:
            (folder / name).write_bytes(source)
    return folder
