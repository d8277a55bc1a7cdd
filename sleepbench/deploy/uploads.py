"""Uploads of ``sleepbench serve``: a multipart body streamed into a private folder, bounded.

The request body is never held in memory: :func:`receive_files` feeds it chunk by chunk to
python-multipart's streaming parser and writes each file part straight into the request's own
folder (``tempfile.mkdtemp``: mode 0700), counting bytes as they come. A declared
``Content-Length`` over the limit is refused before the first byte is read; a body that grows past
it (chunked, or lying about its length) is refused as soon as it does. File names are reduced to
their base name and refused when empty, hidden, ``..``, or made of other characters than those of
recording file names; two parts with one name are refused too. :func:`private_folder` removes the
folder, whatever happened, once the answer is ready.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import AsyncIterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

__all__ = ["FIELD", "MAX_FILES", "UploadError", "private_folder", "receive_files", "safe_name"]

#: the multipart field that carries the recording's files
FIELD = "files"
#: most file parts in one request (a recording is a few files)
MAX_FILES = 32
#: longest file name accepted (characters)
MAX_NAME = 200
#: characters of recording file names (``shhs1-200001-nsrr.xml``, ``SC4001E0-PSG.edf``,
#: ``101_1b1_Al_sc_Meditron.wav``, ``00000995-100507[001].edf``...)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+()\[\] -]*")


class UploadError(Exception):
    """An upload the service refuses; ``status`` is the HTTP status, the message its reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def safe_name(raw: str) -> str:
    """The base name of an uploaded file's ``raw`` name, or :class:`UploadError` (400).

    Directories (``/`` or ``\\``) are dropped; a name with a ``..`` component, an empty or hidden
    name, or one with other characters than letters, digits and ``._+-()[]`` and space is refused.
    """
    parts = re.split(r"[\\/]", raw)
    name = parts[-1].strip()
    shown = raw if len(raw) <= 60 else raw[:57] + "..."
    if not shown.isprintable():
        shown = shown.encode("unicode_escape").decode("ascii")
    if ".." in parts:
        raise UploadError(400, f"file name '{shown}': a path with '..' is refused")
    if not name:
        raise UploadError(400, "an uploaded file has an empty file name")
    if len(name) > MAX_NAME or not _NAME.fullmatch(name):
        raise UploadError(
            400,
            f"file name '{shown}' refused: use letters, digits, spaces and ._+-()[] only, "
            f"not starting with a dot, at most {MAX_NAME} characters",
        )
    return name


@contextmanager
def private_folder(prefix: str = "sleepbench-upload-") -> Iterator[Path]:
    """A new folder only this process's user can read (mode 0700), removed on leaving."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_declared_length(content_length: str | None, max_bytes: int) -> None:
    """Refuse (413) a request whose declared ``Content-Length`` is over ``max_bytes``."""
    if content_length is None:
        return
    try:
        declared = int(content_length)
    except ValueError:
        raise UploadError(400, f"Content-Length {content_length[:40]!r} is not a number") from None
    if declared > max_bytes:
        raise UploadError(413, _too_large(max_bytes, f"{declared / 1e6:.1f} MB declared"))


def _too_large(max_bytes: int, got: str) -> str:
    return f"upload too large: {got}, the limit is {max_bytes / 1e6:g} MB"


class _Receiver:
    """python-multipart callbacks: they only record events; :meth:`apply` acts on them (so no
    exception is raised from inside the parser and files are written outside it)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.events: list[tuple[str, bytes]] = []
        self.header_name = b""
        self.header_value = b""
        self.disposition = b""
        self.current: IO[bytes] | None = None
        self.names: list[str] = []
        self.other_fields: set[str] = set()
        self.ended = False

    def callbacks(self) -> dict:
        return {
            "on_part_begin": lambda: self.events.append(("begin", b"")),
            "on_part_data": lambda d, s, e: self.events.append(("data", bytes(d[s:e]))),
            "on_part_end": lambda: self.events.append(("end", b"")),
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": lambda: self.events.append(("headers", self.disposition)),
            "on_end": lambda: self.events.append(("done", b"")),
        }

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def _header_end(self) -> None:
        if self.header_name.strip().lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name = self.header_value = b""

    def apply(self) -> None:
        """Act on the events the parser reported since the last call."""
        events, self.events = self.events, []
        for kind, payload in events:
            if kind == "begin":
                self.disposition = b""
            elif kind == "headers":
                self._open(payload)
            elif kind == "data" and self.current is not None:
                self.current.write(payload)
            elif kind == "end":
                self._close()
            elif kind == "done":
                self.ended = True

    def _open(self, disposition: bytes) -> None:
        _, options = parse_options_header(disposition.decode("latin-1"))
        field = options.get(b"name", b"").decode("utf-8", "replace")
        if field != FIELD:
            self.other_fields.add(field[:40])
            return  # other form fields are read past (their bytes still count)
        if b"filename" not in options:
            raise UploadError(400, f"a '{FIELD}' part has no file name: send files, not text")
        name = safe_name(options[b"filename"].decode("utf-8", "replace"))
        if name in self.names:
            raise UploadError(400, f"{name} was uploaded twice")
        if len(self.names) >= MAX_FILES:
            raise UploadError(400, f"more than {MAX_FILES} files in one request")
        self.names.append(name)
        self.current = open(self.folder / name, "xb")  # closed in _close

    def _close(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None


async def receive_files(
    chunks: AsyncIterable[bytes], content_type: str | None, folder: Path, max_bytes: int
) -> list[Path]:
    """Write the files of a ``multipart/form-data`` body (field :data:`FIELD`) into ``folder``.

    Args:
        chunks: the request body as it arrives.
        content_type: the request's ``Content-Type`` (carries the multipart boundary).
        folder: the request's private folder.
        max_bytes: the largest body accepted.

    Returns:
        The written files, in upload order.

    Raises:
        UploadError: 413 past ``max_bytes``; 415 not a multipart body; 422 no file in
            :data:`FIELD`; 400 a malformed or truncated body, or a refused file name.
    """
    ctype, params = parse_options_header(content_type or "")
    if ctype != b"multipart/form-data":
        raise UploadError(
            415, f"send the recording's files as multipart/form-data (field '{FIELD}')"
        )
    if not params.get(b"boundary"):
        raise UploadError(400, "multipart body without a boundary")
    receiver = _Receiver(folder)
    try:
        parser = MultipartParser(params[b"boundary"], receiver.callbacks())
    except FormParserError as err:
        raise UploadError(400, f"malformed multipart header: {err}") from None
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > max_bytes:
                raise UploadError(413, _too_large(max_bytes, f"over {max_bytes / 1e6:g} MB sent"))
            try:
                parser.write(chunk)
            except FormParserError as err:
                raise UploadError(400, f"malformed multipart body: {err}") from None
            receiver.apply()
        parser.finalize()
        receiver.apply()
    finally:
        receiver._close()
    if not receiver.ended:
        raise UploadError(400, "the multipart body ended before its closing boundary")
    if not receiver.names:
        others = f" (got fields: {', '.join(sorted(receiver.other_fields))})"
        raise UploadError(
            422,
            f"no file in field '{FIELD}': send the recording's files as '{FIELD}'"
            + (others if receiver.other_fields else ""),
        )
    return [folder / n for n in receiver.names]
