"""``sleepbench export``: every registered task's network exports to ONNX with a dynamic batch axis
and onnxruntime agrees with torch; checkpoints are found, checked and refused with one-line errors.

Each task's case builds its synthetic-size network (smaller still where the config allows),
saves it as ``train.run`` leaves a run (``config.yaml`` + ``checkpoints/best.ckpt`` holding the
LightningModule's ``state_dict``, network tensors under ``net.``), exports and compares. A new task
fails here until its export spec exports.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from sleepbench.cli import main
from sleepbench.config import config_hash
from sleepbench.deploy.checkpoint import load_checkpoint, resolve_checkpoint
from sleepbench.deploy.export import ONNX_OPSET, export_onnx, read_metadata
from sleepbench.errors import UserError
from sleepbench.registry import task_names
from tests.deploy.runs import small_cfg as _cfg
from tests.deploy.runs import write_run

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.mark.parametrize("task", task_names())
def test_export_runs_in_onnxruntime_like_torch(task: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / task / "proto" / "fold0-seed0-abc"
    saved = write_run(task, run_dir)
    out = tmp_path / "model.onnx"
    info = export_onnx(task, tmp_path / "runs", out)  # a folder: its newest best.ckpt

    # the reference is a fresh network from the checkpoint file, not the one that was traced
    loaded = load_checkpoint(task, run_dir / "checkpoints" / "best.ckpt")
    for name, tensor in loaded.spec.net.state_dict().items():
        torch.testing.assert_close(tensor, saved[name], rtol=0, atol=0)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (x_info,) = session.get_inputs()
    assert isinstance(x_info.shape[0], str), "the batch axis must be dynamic"
    assert list(x_info.shape[1:]) == list(loaded.spec.item_shape)
    for batch in (2, 3):
        x = loaded.spec.example(batch, seed=100 + batch)
        with torch.no_grad():
            expected = loaded.spec.net(x).numpy()
        (got,) = session.run(None, {x_info.name: x.numpy()})
        assert got.shape == expected.shape
        diff = float(np.max(np.abs(got - expected)))
        assert diff <= 1e-4, (
            f"{task}: onnxruntime differs from torch by {diff:.3g} at batch {batch}"
        )

    meta = read_metadata(out)
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    assert meta["task"] == task and meta["opset"] == ONNX_OPSET
    assert meta["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert meta["config_hash"] == config_hash(OmegaConf.load(run_dir / "config.yaml"))
    assert meta["inputs"][0]["shape"][0] == "batch" and meta["outputs"][0]["shape"][0] == "batch"
    assert meta["max_abs_diff"] <= meta["tolerance"] == 1e-4
    assert info["path"] == str(out) and info["item_s"] > 0


@pytest.fixture
def sleep_edf_run(tmp_path: Path) -> Path:
    """A small sleep_edf run folder (the fastest task to export)."""
    run_dir = tmp_path / "run"
    write_run("sleep_edf", run_dir)
    return run_dir


def test_cli_export(sleep_edf_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out" / "staging.onnx"
    argv = ["export", "--task", "sleep_edf", "--ckpt", str(sleep_edf_run), "--format", "onnx"]
    assert main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "opset 18" in printed and "onnxruntime agrees with torch" in printed
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": np.zeros((4, 2, 3 * 30 * 64), dtype=np.float32)})
    assert got.shape == (4, 5, 3)


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[1].startswith("(run with --debug")
    return err[0]


def test_cli_refuses_a_checkpoint_of_another_task(
    sleep_edf_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "x.onnx"
    argv = ["export", "--task", "apnea_ecg", "--ckpt", str(sleep_edf_run), "--out", str(out)]
    line = _cli_error(argv, capsys)
    assert "trained for task 'sleep_edf', not 'apnea_ecg'" in line
    assert not out.exists()


def test_cli_unknown_task_and_missing_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = str(tmp_path / "x.onnx")
    line = _cli_error(["export", "--task", "nope", "--ckpt", str(tmp_path), "--out", out], capsys)
    assert "unknown task 'nope'" in line and "sleep_edf" in line
    missing = str(tmp_path / "missing")
    line = _cli_error(["export", "--task", "sleep_edf", "--ckpt", missing, "--out", out], capsys)
    assert line.endswith(f"no checkpoint at {missing}")
    line = _cli_error(
        ["export", "--task", "sleep_edf", "--ckpt", str(tmp_path), "--out", out], capsys
    )
    assert "no best.ckpt under" in line


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path: Path) -> None:
    write_run("sleep_edf", tmp_path / "a", "model.init_filters=8")
    (tmp_path / "a" / "config.yaml").write_text(
        OmegaConf.to_yaml(_cfg("sleep_edf"))  # the config of another network size
    )
    with pytest.raises(UserError, match="does not fit the sleep_edf network"):
        load_checkpoint("sleep_edf", tmp_path / "a")


def test_a_file_that_is_not_a_checkpoint_is_refused(sleep_edf_run: Path) -> None:
    ckpt = sleep_edf_run / "checkpoints" / "best.ckpt"
    ckpt.write_bytes(b"not a zip archive")
    with pytest.raises(UserError, match="not a loadable checkpoint"):
        load_checkpoint("sleep_edf", ckpt)


class _Payload:
    """An object whose unpickling would run code: ``weights_only`` loading must refuse it."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_checkpoint_that_would_run_code_is_refused(sleep_edf_run: Path) -> None:
    ckpt = sleep_edf_run / "checkpoints" / "best.ckpt"
    blob = torch.load(ckpt, weights_only=True)
    blob["payload"] = _Payload()
    torch.save(blob, ckpt)
    with pytest.raises(UserError, match="not a loadable checkpoint"):
        load_checkpoint("sleep_edf", ckpt)


def test_a_checkpoint_without_config_is_refused(tmp_path: Path) -> None:
    write_run("sleep_edf", tmp_path / "run")
    (tmp_path / "run" / "config.yaml").unlink()
    with pytest.raises(FileNotFoundError, match="no config.yaml"):
        load_checkpoint("sleep_edf", tmp_path / "run")


def test_the_newest_best_checkpoint_under_a_folder_is_taken(tmp_path: Path) -> None:
    paths = []
    for k, name in enumerate(("b-old", "a-new", "c-middle")):
        ckpt = tmp_path / name / "checkpoints" / "best.ckpt"
        ckpt.parent.mkdir(parents=True)
        ckpt.write_bytes(b"")
        paths.append(ckpt)
        os.utime(ckpt, ns=(0, [1_000, 3_000, 2_000][k] * 10**9))
    (tmp_path / "a-new" / "checkpoints" / "last.ckpt").write_bytes(b"")  # not a best.ckpt
    assert resolve_checkpoint(tmp_path) == paths[1]
    assert resolve_checkpoint(paths[0]) == paths[0]  # a file is taken as it is
