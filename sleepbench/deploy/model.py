"""One trained model for inference, from a run's checkpoint or from its ONNX export.

``sleepbench predict`` and ``sleepbench serve`` take either: a checkpoint (file, or a run folder
under which the newest ``best.ckpt`` is taken; the network is rebuilt from the run's
``config.yaml`` and loaded with ``weights_only=True``) or an ``.onnx`` file written by
``sleepbench export`` (its metadata carry the task, the run's config and input state, so it needs
no run folder). Both give a :class:`DeployedModel`: numpy items in, numpy logits out, with the
provenance every prediction records (file, SHA-256, config hash, trained on synthetic data).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from sleepbench.download import sha256_of
from sleepbench.errors import InputError, UserError
from sleepbench.registry import get_spec

__all__ = ["DeployedModel", "load_model"]

#: items per forward pass (bounded memory: a night of sleep_edf sequences is ~35 items)
DEFAULT_BATCH = 16


@dataclass
class DeployedModel:
    """A task's trained network behind one call, with where it came from.

    Args:
        task: registered task name.
        path: the checkpoint or ONNX file.
        format: ``"checkpoint"`` (torch) or ``"onnx"`` (onnxruntime).
        sha256: hex SHA-256 of ``path``.
        cfg: the run's resolved config (preprocessing, task variant, protocol...).
        config_hash: hash of the run's config (as in its result row).
        input_state: training-data values inference needs (normalisation statistics...).
        item_shape: shape of one input item, without the batch axis.
        forward: ``float32 [B, *item_shape] -> logits`` (numpy in, numpy out).
    """

    task: str
    path: Path
    format: str
    sha256: str
    cfg: DictConfig
    config_hash: str
    input_state: dict[str, Any]
    item_shape: tuple[int, ...]
    forward: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    # torch and onnxruntime sessions are not documented as safe for concurrent calls from the
    # server's worker threads: one call at a time per model
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def synthetic(self) -> bool:
        """Whether the run was trained on synthetic data (``data.is_synthetic``)."""
        return bool(OmegaConf.select(self.cfg, "data.is_synthetic", default=False))

    def logits(self, items: np.ndarray, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """Network outputs of ``items`` (float32 ``[N, *item_shape]``), in batches.

        Raises:
            InputError: no item (a recording shorter than one input item).
            ValueError: an item has another shape than the network takes (a predictor's bug).
        """
        items = np.asarray(items, dtype=np.float32)
        if tuple(items.shape[1:]) != tuple(self.item_shape):
            raise ValueError(
                f"{self.task} items must be [N, {', '.join(map(str, self.item_shape))}], "
                f"got {list(items.shape)}"
            )
        outs = []
        with self._lock:
            for start in range(0, len(items), batch_size):
                outs.append(np.asarray(self.forward(items[start : start + batch_size])))
        if not outs:
            raise InputError(f"{self.task}: the recording is too short for one input item")
        return np.concatenate(outs).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        """The ``model`` section of a prediction: what was run and which weights."""
        return {
            "task": self.task,
            "name": get_spec(self.task).model,
            "file": self.path.name,
            "format": self.format,
            "sha256": self.sha256,
            "config_hash": self.config_hash,
            "protocol": str(OmegaConf.select(self.cfg, "protocol", default="")),
            "trained_on_synthetic_data": self.synthetic,
        }


def _from_checkpoint(task: str, path: str | Path) -> DeployedModel:
    import torch

    from sleepbench.deploy.checkpoint import load_checkpoint

    loaded = load_checkpoint(task, path)
    net = loaded.spec.net.eval()

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(np.ascontiguousarray(x))).float().numpy()

    return DeployedModel(
        task=task,
        path=loaded.path,
        format="checkpoint",
        sha256=loaded.sha256,
        cfg=loaded.cfg,
        config_hash=loaded.config_hash,
        input_state=dict(loaded.input_state),
        item_shape=tuple(loaded.spec.item_shape),
        forward=forward,
    )


def _from_onnx(task: str, path: Path) -> DeployedModel:
    from sleepbench.deploy.export import onnx_session, read_metadata

    try:
        meta = read_metadata(path)
    except Exception as err:  # onnx's DecodeError and friends: the file is not a model
        raise UserError(f"{path} is not a readable ONNX file: {err}") from err
    if meta.get("task") != task:
        raise UserError(
            f"{path} was exported for task {meta.get('task')!r}, not {task!r}"
            + (f" (pass --task {meta['task']})" if meta.get("task") else "")
        )
    if not isinstance(meta.get("config"), dict) or not meta.get("inputs"):
        raise UserError(
            f"{path} lacks the run config in its metadata (exported by an older sleepbench): "
            "export it again with `sleepbench export`"
        )
    session = onnx_session(path)
    name = session.get_inputs()[0].name

    def forward(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    return DeployedModel(
        task=task,
        path=path,
        format="onnx",
        sha256=sha256_of(path),
        cfg=OmegaConf.create(meta["config"]),
        config_hash=str(meta.get("config_hash", "")),
        input_state=dict(meta.get("input_state") or {}),
        item_shape=tuple(int(d) for d in meta["inputs"][0]["shape"][1:]),
        forward=forward,
    )


def load_model(task: str, path: str | Path) -> DeployedModel:
    """The trained ``task`` model at ``path``: an ``.onnx`` file, a checkpoint, or a run folder.

    Raises:
        KeyError: unknown task.
        FileNotFoundError: nothing at ``path``, or no checkpoint/config under it.
        UserError: a model of another task, a file that is not a model, weights that do not fit.
    """
    get_spec(task)  # an unknown task is refused first
    path = Path(path)
    if path.suffix == ".onnx":
        if not path.is_file():
            raise FileNotFoundError(f"no ONNX file at {path}")
        return _from_onnx(task, path)
    return _from_checkpoint(task, path)
