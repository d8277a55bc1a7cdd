"""Readable logs: progress bar only on a terminal, one line per epoch otherwise, and a heartbeat
while the synthetic set is written."""

from __future__ import annotations

import io
import logging
import re
import time
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from torch.utils.data import DataLoader, TensorDataset

from sleepbench.config import load_config
from sleepbench.progress import EpochSummary, heartbeat, progress_bar_wanted
from sleepbench.train import build_trainer


class _Terminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty", [True, False])
def test_progress_bar_setting(tty: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", _Terminal(tty))
    assert progress_bar_wanted("auto") is tty
    assert progress_bar_wanted(None) is tty
    assert progress_bar_wanted(True) is True and progress_bar_wanted(False) is False
    with pytest.raises(ValueError, match="auto, true or false"):
        progress_bar_wanted("sometimes")


def test_default_is_auto() -> None:
    assert load_config("apnea_ecg").trainer.enable_progress_bar == "auto"


@pytest.mark.parametrize(
    ("setting", "tty", "bar"),
    [("auto", False, False), ("auto", True, True), (True, False, True), (False, True, False)],
)
def test_trainer_has_a_bar_or_epoch_lines(
    setting: object, tty: bool, bar: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stderr", _Terminal(tty))
    value = str(setting).lower()
    cfg = load_config(
        "apnea_ecg",
        ["trainer.accelerator=cpu", "trainer.precision=32", f"trainer.enable_progress_bar={value}"],
    )
    trainer = build_trainer(cfg, tmp_path, "val/loss", "min")
    kinds = [type(c) for c in trainer.callbacks]
    assert (TQDMProgressBar in kinds) is bar
    assert (EpochSummary in kinds) is (not bar)


class _Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.lin(x).squeeze(1), y)
        self.log("train/loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/loss", torch.nn.functional.mse_loss(self.lin(x).squeeze(1), y))
        self.log("val/score", torch.tensor(0.5))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_epoch_summary_prints_one_line_per_epoch(caplog: pytest.LogCaptureFixture) -> None:
    data = TensorDataset(torch.randn(16, 3), torch.randn(16))
    trainer = pl.Trainer(
        max_epochs=3,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[EpochSummary()],
    )
    with caplog.at_level(logging.INFO, logger="sleepbench"):
        trainer.fit(_Tiny(), DataLoader(data, batch_size=4), DataLoader(data, batch_size=8))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(lines) == 3
    pattern = (
        r"epoch (\d)/3  train/loss [\d.e+-]+  val/loss [\d.e+-]+  val/score 0\.5  \([\d.]+ s\)"
    )
    assert [int(re.fullmatch(pattern, line).group(1)) for line in lines] == [1, 2, 3]


def test_heartbeat_reports_before_during_and_after(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="sleepbench"):
        with heartbeat(tmp_path, "writing things", every_s=0.05):
            for i in range(3):
                (tmp_path / f"f{i}.bin").write_bytes(b"x" * 1000)
                time.sleep(0.1)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("writing things in ")
    assert any(re.search(r"writing things: \d files, [\d.]+ MB so far", m) for m in messages[1:-1])
    assert re.fullmatch(r"writing things: done, 3 files, 0\.0 MB in [\d.]+ s", messages[-1])


def test_heartbeat_says_nothing_done_when_the_block_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="sleepbench"), pytest.raises(OSError):
        with heartbeat(tmp_path, "writing things", every_s=10):
            raise OSError("disk full")
    assert not any("done" in r.getMessage() for r in caplog.records)
