"""CUDA-only determinism failures made visible on the CPU.

With ``trainer.deterministic: true`` some CUDA kernels raise instead of running. The guard
(:class:`CudaNondeterminismGuard`) raises on the same ops on any device; these tests check the
guard itself, then every registered task's network + loss (forward and backward) and every
metric class under it. The full per-task path (training loop, validation, test step, epoch-end
metrics) runs under the guard in ``tests/integration/test_gpu_check.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sleepbench.config import apply_synthetic_overrides, load_config
from sleepbench.metrics import (
    BinaryScreeningMetrics,
    EventIoU,
    ICBHIScore,
    IndexAgreement,
    NanBinaryAUROC,
    NanMulticlassAUROC,
    make_multiclass_metrics,
)
from sleepbench.nn.determinism import CudaNondeterminismGuard, CudaNondeterministicOpError
from sleepbench.registry import task_names


def _grad(x: torch.Tensor) -> torch.Tensor:
    return x.detach().clone().requires_grad_(True)


def _backward(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> None:
    fn(x).sum().backward()


X3 = torch.randn(2, 3, 8)

# each raises on CUDA under torch.use_deterministic_algorithms(True) (torch docs / test_torch.py)
RAISES: dict[str, Callable[[], object]] = {
    "bincount with weights": lambda: torch.bincount(torch.tensor([0, 1, 1]), torch.rand(3)),
    "histc": lambda: torch.histc(torch.rand(10), bins=4),
    "kthvalue": lambda: torch.kthvalue(torch.rand(10), 3),
    "median with indices": lambda: torch.median(torch.rand(4, 5), dim=1),
    "cross_entropy on [B, C, T]": lambda: F.cross_entropy(X3, torch.randint(0, 3, (2, 8))),
    "scatter_reduce prod": lambda: torch.zeros(3).scatter_reduce(
        0, torch.tensor([0, 0, 1]), torch.rand(3), reduce="prod"
    ),
    "put_": lambda: torch.zeros(4).put_(torch.tensor([1]), torch.tensor([2.0])),
    "reflection pad backward": lambda: _backward(
        lambda x: F.pad(x, (2, 2), mode="reflect"), _grad(X3)
    ),
    "linear interpolate backward": lambda: _backward(
        lambda x: F.interpolate(x, scale_factor=2, mode="linear"), _grad(X3)
    ),
    "AdaptiveAvgPool1d(4) backward": lambda: _backward(nn.AdaptiveAvgPool1d(4), _grad(X3)),
    "AdaptiveMaxPool1d backward": lambda: _backward(nn.AdaptiveMaxPool1d(4), _grad(X3)),
    "AvgPool3d backward": lambda: _backward(nn.AvgPool3d(2), _grad(torch.randn(1, 1, 4, 4, 4))),
    "grid_sample backward": lambda: _backward(
        lambda x: F.grid_sample(x, torch.zeros(1, 2, 2, 2), align_corners=False),
        _grad(torch.randn(1, 1, 4, 4)),
    ),
    "EmbeddingBag max backward": lambda: (
        nn.EmbeddingBag(5, 3, mode="max")(torch.tensor([[0, 1], [2, 3]])).sum().backward()
    ),
    "CTC loss backward": lambda: _backward(
        lambda x: F.ctc_loss(
            x.log_softmax(2), torch.tensor([[1, 2]]), torch.tensor([5]), torch.tensor([2])
        ),
        _grad(torch.randn(5, 1, 4)),
    ),
}

# deterministic formulations of the same computations: must pass
PASSES: dict[str, Callable[[], object]] = {
    "bincount without weights": lambda: torch.bincount(torch.tensor([0, 1, 1])),
    "index_add (sums per group)": lambda: torch.zeros(2).index_add(
        0, torch.tensor([0, 1, 1]), torch.rand(3)
    ),
    "median without dim": lambda: torch.median(torch.rand(10)),
    "cross_entropy on [N, C]": lambda: F.cross_entropy(
        torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    ),
    "scatter_reduce amin": lambda: torch.zeros(3).scatter_reduce(
        0, torch.tensor([0, 0, 1]), torch.rand(3), reduce="amin"
    ),
    "cumsum (deterministic on CUDA since torch 2.6)": lambda: torch.rand(5).cumsum(0),
    "AdaptiveAvgPool1d(1) backward (a mean)": lambda: _backward(nn.AdaptiveAvgPool1d(1), _grad(X3)),
    "nearest upsample backward": lambda: _backward(nn.Upsample(scale_factor=2), _grad(X3)),
    "MaxPool1d / AvgPool1d backward": lambda: _backward(
        lambda x: nn.MaxPool1d(2)(x) + nn.AvgPool1d(2)(x), _grad(X3)
    ),
    "constant pad backward": lambda: _backward(lambda x: F.pad(x, (2, 2)), _grad(X3)),
    "gather backward": lambda: _backward(
        lambda x: x.gather(1, torch.zeros(2, 1, 8, dtype=torch.long)), _grad(X3)
    ),
}


@pytest.mark.parametrize("name", sorted(RAISES))
def test_guard_raises_on_ops_without_a_deterministic_cuda_kernel(name: str) -> None:
    with pytest.raises(CudaNondeterministicOpError), CudaNondeterminismGuard():
        RAISES[name]()


@pytest.mark.parametrize("name", sorted(PASSES))
def test_guard_lets_deterministic_ops_through(name: str) -> None:
    with CudaNondeterminismGuard():
        PASSES[name]()


def test_guard_leaves_results_unchanged_and_records_ops() -> None:
    x = torch.randn(4, 3)
    with CudaNondeterminismGuard(record=True) as guard:
        y = F.softmax(x, dim=1)
    torch.testing.assert_close(y, F.softmax(x, dim=1), rtol=0, atol=0)
    assert "_softmax" in guard.seen


# ---- every registered task's network and loss ------------------------------------------------


def _cfg(task: str, *overrides: str):
    return apply_synthetic_overrides(load_config(task, list(overrides)), list(overrides))


def _apnea_ecg() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    from sleepbench.tasks.apnea_ecg.module import build_module

    module = build_module(_cfg("apnea_ecg"), None)
    batch = {"x": torch.randn(3, 1, 6000), "y": torch.tensor([0, 1, 1])}
    return module, batch


def _sleep_edf() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    from sleepbench.tasks.sleep_edf.module import build_module

    module = build_module(_cfg("sleep_edf", "data.seq_epochs=3", "model.init_filters=2"), None)
    y = torch.randint(0, 5, (2, 3))
    y[0, 1] = 5  # an ignored epoch
    return module, {"x": torch.randn(2, 2, 3 * 30 * 64), "y": y}


def _shhs_spo2() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    from sleepbench.tasks.shhs_spo2.module import ShhsSpO2Module, build_network

    cfg = _cfg("shhs_spo2", "preprocess.n_samples=2048", "model.lstm_pool=16")
    module = ShhsSpO2Module(build_network(cfg), cfg, np.array([1, 1, 2]), (1, 2))
    return module, {"x": torch.rand(3, 1, 2048), "y": torch.tensor([0, 2, 3])}


def _psg_audio_osa() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    from sleepbench.tasks.psg_audio_osa.module import build_module

    module = build_module(_cfg("psg_audio_osa"), None)  # small size, 20-s windows
    mask = torch.ones(2, 250, dtype=torch.uint8)
    mask[1, 200:] = 0  # frames outside the ROI
    return module, {
        "x": torch.randn(2, 129, 2000),
        "y": torch.randint(0, 3, (2, 250)),
        "mask": mask,
    }


def _lsrm_dm(devices: list[str], categories: list[str]) -> object:
    """The few data-module facts the LSRM tasks' ``build_module`` reads."""
    from types import SimpleNamespace

    records = [
        SimpleNamespace(attrs={"device": d, "target": k, "category": c})
        for k, (d, c) in enumerate(zip(devices, categories))
    ]
    return SimpleNamespace(
        store=SimpleNamespace(records=records),
        split=SimpleNamespace(notes={}),
        device_of_record=lambda: devices,
    )


def _icbhi_lung() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    from sleepbench.tasks.icbhi_lung.module import build_module

    module = build_module(
        _cfg("icbhi_lung", "preprocess.cycle_s=1.0"), _lsrm_dm(["Meditron"], ["x"])
    )
    return module, {"x": torch.randn(2, 16000), "y": torch.tensor([1, 3])}


def _esc50() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    from sleepbench.tasks.esc50.module import build_module

    module = build_module(_cfg("esc50", "preprocess.clip_s=1.0"), _lsrm_dm(["-"], ["dog"]))
    return module, {"x": torch.randn(2, 32000), "y": torch.tensor([0, 49])}


#: task -> tiny module and training batch; a new task fails the coverage test until added here
TRAINING_EXAMPLES = {
    "apnea_ecg": _apnea_ecg,
    "sleep_edf": _sleep_edf,
    "shhs_spo2": _shhs_spo2,
    "psg_audio_osa": _psg_audio_osa,
    "icbhi_lung": _icbhi_lung,
    "esc50": _esc50,
}


def test_every_registered_task_has_a_training_example() -> None:
    assert sorted(TRAINING_EXAMPLES) == sorted(task_names())


@pytest.mark.parametrize("task", sorted(TRAINING_EXAMPLES))
def test_training_step_forward_and_backward_are_cuda_deterministic(task: str) -> None:
    torch.manual_seed(0)
    module, batch = TRAINING_EXAMPLES[task]()
    module.train()
    with CudaNondeterminismGuard(record=True) as guard:
        logits = module(batch["x"])
        loss = module.loss_fn(logits, module.loss_target(batch))
        loss.backward()
    assert torch.isfinite(loss)
    assert "convolution_backward" in guard.seen  # the backward pass ran inside the guard
    assert all(p.grad is not None for p in module.net.parameters() if p.requires_grad)


# ---- metrics -----------------------------------------------------------------------------------


@pytest.fixture
def deterministic_mode():
    """As Lightning sets it with ``deterministic=True`` (torchmetrics branches on it)."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(before)


def _multiclass_inputs(n: int = 60, c: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, c, (n,), generator=g)
    target[:c] = torch.arange(c)
    return torch.rand(n, c, generator=g).softmax(1), target


def _binary_inputs(n: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    target = torch.randint(0, 2, (n,), generator=g)
    target[:2] = torch.tensor([0, 1])
    return torch.rand(n, generator=g), target


def _run_multiclass() -> object:
    probs, target = _multiclass_inputs()
    metrics = make_multiclass_metrics(5, "test/", 5, ("W", "R", "N1", "N2", "N3"), auroc=True)
    metrics.update(probs, target)
    return metrics.compute()


def _run_binary() -> object:
    probs, target = _binary_inputs()
    metrics = BinaryScreeningMetrics(prefix="test/")
    metrics.update(probs, target)
    return metrics.compute()


def _run_index() -> object:
    probs, target = _binary_inputs(120)
    metric = IndexAgreement(units_per_hour=60.0)
    record = torch.arange(120) // 30
    metric.update(record, probs, target, position=torch.arange(120) % 30)
    return metric.compute(), metric.compute_indices()


def _run_aurocs() -> object:
    probs, target = _multiclass_inputs()
    multi = NanMulticlassAUROC(5, average="macro")
    multi.update(probs, target)
    p2, t2 = _binary_inputs()
    binary = NanBinaryAUROC()
    binary.update(p2, t2)
    return multi.compute(), binary.compute()


def _run_icbhi() -> object:
    probs, target = _multiclass_inputs(c=4)
    metric = ICBHIScore(num_classes=4)
    metric.update(probs, target)
    return metric.compute()


def _run_events() -> object:
    metric = EventIoU(frame_s=0.08)
    frames = torch.zeros(2, 400, dtype=torch.long)
    frames[:, 100:250] = 1
    pred = frames.clone()
    pred[:, 120:260] = 1
    metric.update(pred, frames)
    return metric.compute()


METRIC_RUNS = {
    "multiclass (+AUROC)": _run_multiclass,
    "binary screening": _run_binary,
    "index agreement": _run_index,
    "NaN AUROCs": _run_aurocs,
    "ICBHI": _run_icbhi,
    "event IoU": _run_events,
}


@pytest.mark.parametrize("name", sorted(METRIC_RUNS))
def test_metrics_update_and_compute_are_cuda_deterministic(
    name: str, deterministic_mode: None
) -> None:
    with CudaNondeterminismGuard():
        assert METRIC_RUNS[name]() is not None
