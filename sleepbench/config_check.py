"""Checking command-line overrides against a task's defaults: a typo is an error, not a new run.

Every key a user may set exists in ``base.yaml`` or the task's ``config.yaml``. An override is
refused, before any work, when

- its key is unknown (the message suggests the closest valid keys: ``trainer.max_epoch`` ->
  ``trainer.max_epochs``);
- its value has another type than the default (``trainer.max_epochs=abc``), the message naming
  the key;
- its key has a declared set of choices and the value is not one of them
  (``preprocess.smoothing=gaussian``, which would make every recording fail later).

What may be set is described by the defaults themselves plus a ``schema`` block in each config
file (merged like the configs, removed from the run config before it is hashed)::

    schema:
      choices:                  # the only values a key accepts
        preprocess.smoothing: [adaptive, median, butterworth, none]
      any_value: [trainer.devices]   # keys (and what is below them) of any type

A key whose default is ``null`` or an empty mapping (``ablations: {}``) accepts anything below it.
``null`` is accepted for any key without declared choices (configs use it for "off"/"default").
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sleepbench.errors import ConfigError

__all__ = ["check_overrides", "flat_keys"]

_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "text"}


def flat_keys(tree: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Every dotted key of a nested mapping, parents before children (``trainer``,
    ``trainer.max_epochs``, ...)."""
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        yield dotted
        if isinstance(value, Mapping):
            yield from flat_keys(value, dotted + ".")


def check_overrides(
    defaults: Mapping[str, Any],
    overrides: Mapping[str, Any],
    schema: Mapping[str, Any] | None = None,
    *,
    source: str = "command line",
) -> None:
    """Refuse overrides that do not fit the defaults.

    Args:
        defaults: the merged defaults (base + task config) as plain containers.
        overrides: the user's overrides as a nested mapping (``OmegaConf.from_dotlist``, plain).
        schema: ``{"choices": {dotted key: [values]}, "any_value": [dotted keys]}``.
        source: where the overrides come from, for the message (``"command line"``,
            ``"synthetic_overrides of sleep_edf"``).

    Raises:
        ConfigError: an unknown key (with the closest valid keys), a value of the wrong type, or
            a value outside the key's choices. The message names the key and the value.
    """
    schema = schema or {}
    choices: Mapping[str, Sequence[Any]] = schema.get("choices") or {}
    any_value = set(schema.get("any_value") or ())
    valid = list(flat_keys(defaults))
    for key, value in _leaves(overrides):
        _check_one(key, value, defaults, valid, choices, any_value, source)


def _leaves(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted key, value)`` of every non-mapping value (an empty mapping counts as a value)."""
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, dotted + ".")
        else:
            yield dotted, value


def _check_one(
    key: str,
    value: Any,
    defaults: Mapping[str, Any],
    valid: list[str],
    choices: Mapping[str, Sequence[Any]],
    any_value: set[str],
    source: str,
) -> None:
    parts = key.split(".")
    if any(".".join(parts[:n]) in any_value for n in range(1, len(parts) + 1)):
        return  # the key or one of its parents takes any value
    node: Any = defaults
    for depth, part in enumerate(parts):
        if node is None or (isinstance(node, Mapping) and not node and depth > 0):
            return  # below a null or empty-mapping default: free-form (data.root, ablations)
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigError(_unknown_key_message(key, valid, source))
        node = node[part]
    if key in choices:
        allowed = list(choices[key])
        if not any(_same(value, option) for option in allowed):
            shown = ", ".join(_show(o) for o in allowed)
            raise ConfigError(
                f"{source}: {key}={_show(value)} is not allowed; choose one of: {shown}"
            )
        return
    if value is None or node is None:
        return
    expected = _expected_type(node)
    if expected is not None and not _fits(value, expected):
        raise ConfigError(
            f"{source}: {key}={_show(value)} is {_describe(value)}, but {key} takes "
            f"{_TYPE_NAMES.get(expected, expected.__name__)} (default: {_show(node)})"
        )


def _unknown_key_message(key: str, valid: list[str], source: str) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if not close:  # a typo in the last part only: compare the leaf names under the same parent
        parent, _, leaf = key.rpartition(".")
        siblings = [k for k in valid if k.rpartition(".")[0] == parent]
        leaves = difflib.get_close_matches(leaf, [k.rpartition(".")[2] for k in siblings], n=1)
        close = [f"{parent}.{name}" if parent else name for name in leaves]
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{source}: unknown config key {key!r}{hint}"


def _expected_type(default: Any) -> type | None:
    for kind in (bool, int, float, str, list, dict):
        if isinstance(default, kind):
            return kind
    if isinstance(default, Mapping):
        return dict
    if isinstance(default, Sequence):
        return list
    return None


def _fits(value: Any, expected: type) -> bool:
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is str:  # YAML reads `precision=32` as a number; text keys accept numbers
        return isinstance(value, (str, int, float)) and not isinstance(value, bool)
    if expected is list:
        return isinstance(value, Sequence) and not isinstance(value, str)
    if expected is dict:
        return isinstance(value, Mapping)
    return True


def _same(value: Any, option: Any) -> bool:
    """Equality where ``32`` and ``"32"`` agree but ``true`` and ``"true"`` stay distinct."""
    if isinstance(value, bool) or isinstance(option, bool) or value is None or option is None:
        return value is option or (value == option and type(value) is type(option))
    return value == option or str(value) == str(option)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "a mapping"
    return "a list"


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if not isinstance(value, str) else value
