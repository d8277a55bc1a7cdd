"""A crafted checkpoint cannot run code through ``sleepbench bench ckpt_path=...``.

A checkpoint is a pickle; unpickled without ``weights_only=True`` it may call any importable
function. Relying on torch's default is not enough: ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` turns
the default off (torch 2.11 ``torch.load``: the variable only applies where the caller left
``weights_only`` unset). :func:`sleepbench.train.run` passes ``weights_only=True`` explicitly to
Lightning's checkpoint loading, for evaluation (``trainer.max_epochs=0``) and resumption alike.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from sleepbench.config import isolated_outputs
from sleepbench.train import run


class _Payload:
    """Unpickling this object creates ``marker``: a harmless stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (Path(self.marker),))


def _crafted_checkpoint(folder: Path) -> tuple[Path, Path]:
    marker = folder / "payload-ran"
    ckpt = folder / "crafted.ckpt"
    torch.save({"state_dict": {}, "epoch": 0, "payload": _Payload(marker)}, ckpt)
    return ckpt, marker


def test_the_variable_really_disables_torchs_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control: the crafted file is live, and the variable alone re-enables it."""
    ckpt, marker = _crafted_checkpoint(tmp_path)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(pickle.UnpicklingError):
        torch.load(ckpt, weights_only=True)  # explicit: the variable does not apply
    assert not marker.exists()
    with pytest.warns(UserWarning, match="TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"):
        torch.load(ckpt)  # weights_only left unset: the payload runs
    assert marker.exists()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ckpt_safety")


@pytest.mark.parametrize(
    "max_epochs", [0, 1], ids=["evaluate ckpt_path", "resume training from ckpt_path"]
)
def test_run_refuses_a_crafted_checkpoint(
    workdir: Path, max_epochs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt, marker = _crafted_checkpoint(workdir)
    marker.unlink(missing_ok=True)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    overrides = [
        *isolated_outputs(workdir),
        "data.synthetic=true",
        "synthetic.n_subjects=24",
        "synthetic.hours=2.0",
        "preprocess.n_samples=1024",
        "model.lstm_pool=16",
        "trainer.accelerator=cpu",
        f"trainer.max_epochs={max_epochs}",
        f"ckpt_path={ckpt}",
    ]
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        run("shhs_spo2", overrides)
    assert not marker.exists()
    assert not list((workdir / "results.jsonl").parent.glob("results.jsonl"))
