"""A trained run's checkpoint -> the task's network with its weights, for export and inference.

``sleepbench bench`` leaves a run folder ``runs/<task>/<protocol>/<fold-seed-hash>/`` holding
``config.yaml`` (the resolved config) and ``checkpoints/best.ckpt`` (Lightning's checkpoint; the
LightningModule's ``state_dict`` under ``"state_dict"``, the network's tensors prefixed ``net.``).
:func:`load_checkpoint` finds both, rebuilds the network through the task's export spec
(:attr:`~sleepbench.registry.Task.export_spec`) and loads the weights with
``weights_only=True``: a checkpoint can only rebuild tensors and plain containers, never run code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from sleepbench.config import config_hash, load_config
from sleepbench.deploy.spec import ExportSpec
from sleepbench.download import sha256_of
from sleepbench.errors import UserError
from sleepbench.module import INPUT_STATE_KEY
from sleepbench.registry import get_task

__all__ = [
    "CHECKPOINT_NAME",
    "LoadedCheckpoint",
    "find_run_config",
    "load_checkpoint",
    "network_state",
    "read_checkpoint",
    "resolve_checkpoint",
]

#: file name of the checkpoint ``train.run`` keeps (Lightning's ``ModelCheckpoint(filename="best")``)
CHECKPOINT_NAME = "best.ckpt"
#: prefix of the network's tensors in a BenchModule's state dict (``BenchModule.net``)
NET_PREFIX = "net."


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A task's network with a checkpoint's weights, in eval mode, and where they came from.

    Attributes:
        task: registered task name.
        path: the checkpoint file.
        sha256: hex SHA-256 of the checkpoint file.
        cfg: the run's config (its ``config.yaml`` over the task's current defaults).
        config_hash: :func:`~sleepbench.config.config_hash` of the run's own config.
        spec: the export spec; ``spec.net`` holds the loaded weights and is in eval mode.
        input_state: the training data's values inference needs (the datamodule's
            ``deploy_state()``, e.g. normalisation statistics); empty when the task has none.
    """

    task: str
    path: Path
    sha256: str
    cfg: DictConfig
    config_hash: str
    spec: ExportSpec
    input_state: dict[str, Any] = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        """Whether the run was trained on synthetic data (``data.is_synthetic``)."""
        return bool(OmegaConf.select(self.cfg, "data.is_synthetic", default=False))


def resolve_checkpoint(path: str | Path) -> Path:
    """``path`` if it is a file, else the newest ``best.ckpt`` anywhere under the folder ``path``.

    Raises:
        FileNotFoundError: ``path`` does not exist, or the folder holds no ``best.ckpt``.
    """
    path = Path(path)
    if path.is_file():
        return path
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    found = [p for p in path.rglob(CHECKPOINT_NAME) if p.is_file()]
    if not found:
        raise FileNotFoundError(f"no {CHECKPOINT_NAME} under {path}")
    # newest by modification time; the path breaks ties so the choice is reproducible
    return max(found, key=lambda p: (p.stat().st_mtime_ns, str(p)))


def find_run_config(ckpt: Path) -> Path:
    """The run's ``config.yaml``: in the run folder above ``checkpoints/``, or beside ``ckpt``.

    Raises:
        FileNotFoundError: neither place has one.
    """
    for folder in (ckpt.parent.parent, ckpt.parent):
        if (folder / "config.yaml").is_file():
            return folder / "config.yaml"
    raise FileNotFoundError(
        f"no config.yaml beside {ckpt} or in {ckpt.parent.parent} (the run folder that "
        "`sleepbench bench` writes holds config.yaml and checkpoints/best.ckpt)"
    )


def read_checkpoint(ckpt: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The network's tensors (``net.`` prefix removed, on the CPU) and the saved input state
    (:data:`~sleepbench.module.INPUT_STATE_KEY`; empty if absent) of a Lightning checkpoint.

    Raises:
        UserError: the file is not a checkpoint, or holds no ``net.*`` tensors.
    """
    try:
        blob = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as err:  # a pickle error, a zip error, a refused global: all "not ours"
        raise UserError(f"{ckpt} is not a loadable checkpoint: {err}") from err
    state = blob.get("state_dict") if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise UserError(f"{ckpt} holds no 'state_dict' (not a Lightning checkpoint)")
    net = {k[len(NET_PREFIX) :]: v for k, v in state.items() if k.startswith(NET_PREFIX)}
    if not net:
        raise UserError(f"{ckpt} has no network weights ('{NET_PREFIX}*' entries)")
    input_state = blob.get(INPUT_STATE_KEY) or {}
    if not isinstance(input_state, dict):
        raise UserError(f"{ckpt}: '{INPUT_STATE_KEY}' is not a mapping")
    return net, dict(input_state)


def network_state(ckpt: Path) -> dict[str, torch.Tensor]:
    """The network's tensors of a Lightning checkpoint (see :func:`read_checkpoint`)."""
    return read_checkpoint(ckpt)[0]


def load_checkpoint(task_name: str, ckpt: str | Path) -> LoadedCheckpoint:
    """Rebuild task ``task_name``'s network from a run's config and load the checkpoint into it.

    Args:
        task_name: registered task.
        ckpt: a checkpoint file, or a folder under which the newest ``best.ckpt`` is taken.

    Raises:
        KeyError: unknown task.
        FileNotFoundError: no checkpoint, or no ``config.yaml`` for it.
        UserError: the checkpoint belongs to another task, or its weights do not fit the network
            its config describes.
    """
    task = get_task(task_name)
    if task.export_spec is None:
        raise UserError(f"task {task_name} has no export spec (Task.export_ref)")
    path = resolve_checkpoint(ckpt)
    saved = OmegaConf.load(find_run_config(path))
    trained_for = saved.get("task")
    if trained_for != task_name:
        raise UserError(
            f"{path} was trained for task {trained_for!r}, not {task_name!r} "
            f"(pass --task {trained_for})"
        )
    # keys added to the task since the run keep their defaults; the run's own values win
    cfg = OmegaConf.merge(load_config(task_name), saved)
    spec = task.export_spec(cfg)
    misfit = f"{path} does not fit the {task_name} network of its config.yaml"
    weights, input_state = read_checkpoint(path)
    try:
        result = spec.net.load_state_dict(weights, strict=False)
    except RuntimeError as err:  # tensors of the right names but other shapes
        raise UserError(f"{misfit}: {err}") from err
    if result.missing_keys or result.unexpected_keys:
        raise UserError(
            f"{misfit}: {len(result.missing_keys)} missing tensors (e.g. "
            f"{result.missing_keys[:3]}), {len(result.unexpected_keys)} unexpected (e.g. "
            f"{result.unexpected_keys[:3]})"
        )
    spec.net.eval()
    return LoadedCheckpoint(
        task=task_name,
        path=path,
        sha256=sha256_of(path),
        cfg=cfg,
        config_hash=config_hash(saved),
        spec=spec,
        input_state=input_state,
    )
