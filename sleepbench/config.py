"""Run configuration: base defaults < task ``config.yaml`` < command-line dotlist overrides.

The resolved config is saved with every run and hashed into the run key, so the same key always
means the same experiment.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sleepbench.config_check import check_overrides
from sleepbench.errors import ConfigError

BASE_CONFIG = Path(__file__).with_name("base.yaml")

# keys that change where or how fast a run goes, not what it computes: left out of the run hash
_RUNTIME_KEYS = (
    "force",
    "data.cache_dir",
    "data.build_workers",
    "data.num_workers",
    "trainer.enable_progress_bar",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.strategy",
    "trainer.accelerator",
    "logger",
    "output",
)


def load_config(
    task_name: str, overrides: Sequence[str] = (), task_folder: Path | None = None
) -> DictConfig:
    """Compose the config of one run, refusing overrides that do not fit it.

    Args:
        task_name: registered task name.
        overrides: omegaconf dotlist (``["trainer.max_epochs=5", "data.root=/data"]``).
        task_folder: folder holding the task's ``config.yaml`` (looked up in the registry if None).
            An unset ``protocol`` becomes the task's first (default) protocol.

    Returns:
        The merged config, with ``task`` set and ``protocol`` defaulted to the task's first one;
        the files' ``schema`` blocks are checked against and left out.

    Raises:
        ConfigError: a malformed override, an unknown key (with the closest valid keys), a value
            of the wrong type or outside its choices, or a protocol the task does not have.
    """
    if task_folder is None:
        from sleepbench.registry import task_folder as folder_of

        task_folder = folder_of(task_name)
    defaults = OmegaConf.merge(
        OmegaConf.load(BASE_CONFIG), OmegaConf.load(task_folder / "config.yaml")
    )
    schema = to_plain(defaults.pop("schema", None) or OmegaConf.create({}))
    user = _parse_dotlist(overrides)
    check_overrides(to_plain(defaults), to_plain(user), schema)
    cfg = OmegaConf.merge(defaults, user)
    cfg.task = task_name
    registered = _registered_protocols(task_name)
    if cfg.protocol is None and registered:
        cfg.protocol = registered[0]
    if registered and cfg.protocol not in registered:
        raise ConfigError(
            f"{task_name} has no protocol {cfg.protocol!r}; choose from {', '.join(registered)}"
        )
    return cfg


def _parse_dotlist(overrides: Sequence[str]) -> DictConfig:
    """``OmegaConf.from_dotlist`` with a clear error for an item that is not ``key=value``."""
    for item in overrides:
        key, eq, _ = str(item).partition("=")
        if not eq or not key.strip():
            raise ConfigError(
                f"command line: {item!r} is not key=value (e.g. trainer.max_epochs=5)"
            )
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except Exception as err:  # omegaconf's grammar errors carry the offending item
        raise ConfigError(f"command line: cannot parse overrides {list(overrides)}: {err}") from err


def _registered_protocols(task_name: str) -> tuple[str, ...]:
    """The protocols of a registered task (empty for an unregistered one, as in tests)."""
    from sleepbench.registry import TASK_PACKAGES, get_spec

    return get_spec(task_name).protocols if task_name in TASK_PACKAGES else ()


def apply_synthetic_overrides(cfg: DictConfig, overrides: Sequence[str] = ()) -> DictConfig:
    """Return ``cfg`` with its ``synthetic_overrides`` applied, command-line overrides still on top."""
    return OmegaConf.merge(
        cfg, cfg.get("synthetic_overrides") or {}, OmegaConf.from_dotlist(list(overrides))
    )


def default_cache_dir() -> Path:
    """``$SLEEPBENCH_CACHE`` or ``~/.cache/sleepbench``."""
    env = os.environ.get("SLEEPBENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "sleepbench"


def default_data_root(dataset: str) -> Path:
    """``$SLEEPBENCH_DATA/<dataset>`` (``./data/<dataset>`` when the variable is unset)."""
    return Path(os.environ.get("SLEEPBENCH_DATA", "data")) / dataset


def isolated_outputs(folder: Path) -> list[str]:
    """Dotlist overrides sending a run's cache, runs, results, splits and leaderboard under ``folder``.

    For experiments (and tests) that must not touch the shared cache or results store.
    """
    folder = Path(folder)
    return [
        f"data.cache_dir={folder / 'cache'}",
        f"output.runs_dir={folder / 'runs'}",
        f"output.results={folder / 'results.jsonl'}",
        f"output.splits_dir={folder / 'splits'}",
        f"output.leaderboard={folder / 'leaderboard.md'}",
        "data.build_workers=1",
        "trainer.enable_progress_bar=false",
    ]


def to_plain(cfg: DictConfig) -> dict[str, Any]:
    """Resolved config as plain Python containers (for JSON, W&B, hashing)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def config_hash(cfg: DictConfig) -> str:
    """12-hex digest of what the run computes (runtime-only keys removed)."""
    plain = to_plain(cfg)
    for dotted in _RUNTIME_KEYS:
        node = plain
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()[:12]
