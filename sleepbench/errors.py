"""Error types: :class:`RecordingError` for a bad input file (every reader and preprocessing
step raises it), :class:`UserError` / :class:`ConfigError` for mistakes in how sleepbench is
called."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A mistake the user can fix (a config typo, an unknown protocol, no data where pointed).

    The command line prints its message as one line and exits non-zero; the traceback is shown
    only with ``--debug``.
    """


class ConfigError(UserError, ValueError):
    """A config override or value that is refused before any work (unknown key, wrong type,
    value outside its choices, unknown protocol)."""


class InputError(UserError):
    """The files given for one recording cannot be predicted on (a part missing, two nights
    mixed, a format the task does not read, a recording too short for one input item); the
    message names the file and the problem. The service answers it with 400."""


class RecordingError(Exception):
    """A recording (or one of its files) cannot be used.

    Args:
        path: the offending file (or record stem).
        reason: what is wrong, in words a user can act on ("truncated .dat: 12 of 48 bytes").

    A bulk cache build catches this, lists ``(record, reason)`` in its ``skipped`` table and goes
    on with the next recording; anything else that goes wrong is a bug and propagates.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # keep (path, reason) through multiprocessing pickling
        return (type(self), (self.path, self.reason))
