"""The LightningModule base every task extends: network + loss + metrics + timing.

Networks are plain ``nn.Module``s; this class adds only training glue. A task subclass sets
``loss_fn`` (``training_step`` is shared; :meth:`loss_target` adapts the target), defines
``validation_step`` / ``test_step`` with its metric updates, and calls :meth:`timed_forward` in
``test_step`` so inference latency is measured the same way everywhere.
"""

from __future__ import annotations

import time
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping
from omegaconf import DictConfig
from torch import nn

#: checkpoint key holding the datamodule's :meth:`~sleepbench.data.datamodule.CachedDataModule.deploy_state`
INPUT_STATE_KEY = "sleepbench_input_state"


class BenchModule(pl.LightningModule):
    """Base module.

    Args:
        net: the task's network.
        cfg: the run config (``optim.*`` read by subclasses).
        window_s: seconds of signal per test window (for ms per hour of signal).

    Class attributes ``monitor`` / ``monitor_mode`` name the validation metric that picks the best
    checkpoint. After testing, :attr:`test_artifacts` holds non-scalar outputs (confusion matrices,
    per-record tables) that the trainer saves with the run.
    """

    monitor: str = "val/loss"
    monitor_mode: str = "min"

    def configure_callbacks(self) -> list[Callback]:
        """Early stopping on :attr:`monitor` when ``optim.early_stopping_patience`` is set
        (epochs without improvement; null or absent: train every epoch)."""
        patience = (self.cfg.get("optim") or {}).get("early_stopping_patience")
        if patience is None:
            return []
        return [EarlyStopping(monitor=self.monitor, mode=self.monitor_mode, patience=int(patience))]

    def __init__(self, net: nn.Module, cfg: DictConfig, window_s: float) -> None:
        super().__init__()
        self.net = net
        self.cfg = cfg
        self.window_s = float(window_s)
        self.test_artifacts: dict[str, Any] = {}
        self._infer_s = 0.0
        self._infer_windows = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Network output for a batch."""
        return self.net(x)

    def loss_target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """What ``loss_fn`` compares the logits with (class indices by default)."""
        return batch["y"].long()

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """``loss_fn(net(x), loss_target(batch))``, logged as ``train/loss``."""
        logits = self(batch["x"])
        loss = self.loss_fn(logits, self.loss_target(batch))
        self.log(
            "train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(logits)
        )
        return loss

    def timed_forward(self, x: torch.Tensor, windows: int | None = None) -> torch.Tensor:
        """``forward`` with its wall time added to the inference-latency tally.

        ``windows``: windows of signal this call covers (default ``x.shape[0]``; 0 for a second
        view of windows already counted, e.g. another channel combination of the same batch).
        """
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
        t0 = time.perf_counter()
        out = self(x)
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
        self._infer_s += time.perf_counter() - t0
        self._infer_windows += x.shape[0] if windows is None else windows
        return out

    def on_test_epoch_start(self) -> None:
        self._infer_s, self._infer_windows = 0.0, 0
        self.test_artifacts = {}

    def inference_ms_per_hour(self) -> float:
        """Milliseconds of forward pass per hour of signal over the last test loop (this rank)."""
        hours = self._infer_windows * self.window_s / 3600.0
        return 1000.0 * self._infer_s / hours if hours > 0 else float("nan")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the datamodule's deploy state (normalisation statistics...) with the weights,
        so a checkpoint alone scales new input as training did (plain floats: loadable with
        ``weights_only=True``)."""
        trainer = self._trainer
        dm = getattr(trainer, "datamodule", None) if trainer is not None else None
        if dm is not None and hasattr(dm, "deploy_state"):
            checkpoint[INPUT_STATE_KEY] = dict(dm.deploy_state())

    def n_params(self) -> tuple[int, int]:
        """(total, trainable) parameter counts of the network."""
        total = sum(p.numel() for p in self.net.parameters())
        trainable = sum(p.numel() for p in self.net.parameters() if p.requires_grad)
        return total, trainable
