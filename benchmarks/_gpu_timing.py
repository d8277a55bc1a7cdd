"""Timing pieces of ``benchmarks/gpu_check.py``: the training-loop timer, the weights digest,
the loader alone and forward + backward + AdamW steps on batches already on the device."""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

__all__ = [
    "AUTOCAST",
    "TrainTiming",
    "WeightFingerprint",
    "device_step_rate",
    "loader_rate",
    "same_metrics",
]

#: Lightning precision -> autocast dtype of the preloaded-batch loop (None: no autocast)
AUTOCAST = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TrainTiming(Callback):
    """Times the training batches of the first epoch after ``warmup`` batches.

    After fit: :attr:`samples` and :attr:`steps` counted after warm-up, :attr:`seconds` between
    the end of the last warm-up batch and the end of the last batch (device synchronised).
    """

    def __init__(self, warmup: int = 1) -> None:
        self.warmup = warmup
        self.samples = 0
        self.steps = 0
        self.seconds = 0.0
        self._t0: float | None = None

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.current_epoch > 0:
            return
        _sync(pl_module.device)
        now = time.perf_counter()
        if batch_idx + 1 == self.warmup:
            self._t0 = now
        elif self._t0 is not None:
            self.samples += int(batch["x"].shape[0])
            self.steps += 1
            self.seconds = now - self._t0


class WeightFingerprint(Callback):
    """SHA-256 of the trained weights at the end of fit (:attr:`digest`), for repeat checks."""

    def __init__(self) -> None:
        self.digest: str | None = None

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        h = hashlib.sha256()
        for name, tensor in sorted(pl_module.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
        self.digest = h.hexdigest()


def loader_rate(loader: Any, n_batches: int) -> tuple[float, float, list[Any]]:
    """Iterate ``loader`` alone for up to ``n_batches`` batches.

    Returns:
        ``(first_batch_s, batches_per_s after the first, the batches read)``; the rate is NaN
        when the loader holds fewer than two batches.
    """
    batches: list[Any] = []
    t0 = time.perf_counter()
    it = iter(loader)
    first_s = rate = float("nan")
    for batch in it:
        batches.append(batch)
        if len(batches) == 1:
            first_s = time.perf_counter() - t0
            t1 = time.perf_counter()
        if len(batches) >= n_batches:
            break
    if len(batches) > 1:
        rate = (len(batches) - 1) / (time.perf_counter() - t1)
    del it  # stops worker processes
    return first_s, rate, batches


@contextlib.contextmanager
def _deterministic() -> Iterator[None]:
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def device_step_rate(
    module: Any, batches: Sequence[dict[str, Any]], device: torch.device, precision: str, steps: int
) -> float:
    """Training steps per second on ``batches`` already moved to ``device`` (no data loading).

    One step = the module's ``training_step`` (forward + loss) + backward + AdamW step, under the
    autocast of ``precision`` and with deterministic algorithms on; 2 warm-up steps untimed.
    """
    on_device = [
        {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in b.items()}
        for b in batches
    ]
    module = module.to(device).train()
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-4)
    dtype = AUTOCAST.get(precision)
    warmup = 2
    with _deterministic(), warnings.catch_warnings():
        # training_step's self.log() warns that no Trainer is attached; nothing to log here
        warnings.simplefilter("ignore")
        for i in range(warmup + steps):
            if i == warmup:
                _sync(device)
                t0 = time.perf_counter()
            batch = on_device[i % len(on_device)]
            with torch.autocast(
                device.type, dtype=dtype or torch.float32, enabled=dtype is not None
            ):
                loss = module.training_step(batch, i)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(device)
    return steps / (time.perf_counter() - t0)


def same_metrics(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal metric dicts, NaN equal to NaN (a metric undefined in both runs)."""
    if a.keys() != b.keys():
        return False
    return all(
        x == y
        or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
        for x, y in ((a[k], b[k]) for k in a)
    )
