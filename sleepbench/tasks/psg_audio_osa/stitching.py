"""Gathering the psg_audio_osa test and validation predictions across processes.

Both are torchmetrics objects whose states declare their DDP reduction, so every process ends up
with all predictions whatever the sampler gave it (the evaluation then runs on every process
with the same inputs):

* :class:`NightStitcher` — window softmax summed per 80-ms frame of each whole night (``sum``
  states: the mean over overlapping windows does not depend on which process saw which window);
* :class:`WindowPredictions` — per-window frame labels (``cat`` states), for the validation
  macro-F1 and the ``parity`` evaluation, which both need the windows in index order.

:func:`stitch_night` runs a model over one whole night with the same stitcher (``sleepbench
predict``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from sleepbench.data.windows import regular_windows
from sleepbench.tasks.psg_audio_osa.data import LABELS_PER_WINDOW, MEL_PER_LABEL, STRIDE_LABELS
from sleepbench.tasks.psg_audio_osa.evaluation import N_CLASSES

__all__ = ["NightStitcher", "WindowPredictions", "stitch_night"]


class NightStitcher(Metric):
    """Per-frame softmax summed over the overlapping windows of whole nights (DDP: summed).

    :meth:`configure` lays out one block per night (its number of 80-ms frames); ``update`` adds
    each window's probabilities at its place (positions past the night's end — the padding of
    the last window — are dropped); ``compute()`` returns record -> ``[n, C]`` mean probabilities
    (NaN rows where no window covered a frame). Sum states make the result independent of how
    windows were spread over processes.

    Args:
        n_classes: classes per frame.
    """

    is_differentiable = False
    full_state_update = False

    def __init__(self, n_classes: int = N_CLASSES, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_classes = n_classes
        self._offset: dict[int, int] = {}
        self._length: dict[int, int] = {}
        self.configure({})

    def configure(self, lengths: Mapping[int, int]) -> None:
        """(Re)allocate the states for records ``{record position: frames}`` (zeroed)."""
        self._offset, self._length, total = {}, {}, 0
        for rec in sorted(lengths):
            self._offset[int(rec)], self._length[int(rec)] = total, int(lengths[rec])
            total += int(lengths[rec])
        zeros = torch.zeros(total, self.n_classes, dtype=torch.float32, device=self.device)
        self.add_state("prob_sum", zeros, dist_reduce_fx="sum")
        self.add_state("count", torch.zeros(total, device=self.device), dist_reduce_fx="sum")

    def update(self, record: Tensor, y_start: Tensor, probs: Tensor) -> None:
        """Add ``probs`` ``[B, L, C]`` of windows starting at frame ``y_start`` ``[B]`` of ``record``."""
        for rec, start, p in zip(record.tolist(), y_start.tolist(), probs.detach()):
            if rec not in self._offset:
                raise KeyError(f"record {rec} was not configured")
            n = max(0, min(p.shape[0], self._length[rec] - start))
            lo = self._offset[rec] + start
            # slice adds, one window at a time: deterministic where overlapping windows meet
            self.prob_sum[lo : lo + n] += p[:n].float()
            self.count[lo : lo + n] += 1

    def compute(self) -> dict[int, Tensor]:
        """record position -> ``[n, C]`` mean probabilities (CPU float32)."""
        mean = (self.prob_sum / self.count[:, None]).cpu()  # 0/0 = NaN where uncovered
        return {rec: mean[o : o + self._length[rec]] for rec, o in self._offset.items()}


class WindowPredictions(Metric):
    """Frame predictions of every window, gathered across processes (``cat`` states).

    ``update(window, pred, target, mask)``: ``window`` ``[B]`` positions in the dataset's window
    index, ``pred`` / ``target`` ``[B, L]`` frame labels, ``mask`` ``[B, L]`` (nonzero = scored).
    ``compute()`` returns ``(window, pred, target)`` sorted by window, ``target`` -1 where unscored.
    """

    is_differentiable = False
    full_state_update = False

    window: list[Tensor]
    pred: list[Tensor]
    target: list[Tensor]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name in ("window", "pred", "target"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, window: Tensor, pred: Tensor, target: Tensor, mask: Tensor) -> None:
        """Accumulate one batch (see the class docstring)."""
        if pred.shape != target.shape or pred.shape != mask.shape or pred.ndim != 2:
            raise ValueError("pred, target and mask must all be [B, L]")
        self.window.append(window.reshape(-1).long())
        self.pred.append(pred.to(torch.uint8))
        self.target.append(torch.where(mask.bool(), target.long(), -1).to(torch.int8))

    def compute(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(window [N], pred [N, L], target [N, L])`` in window order, on the CPU."""
        if isinstance(self.window, list) and not self.window:
            empty = torch.zeros(0, dtype=torch.long)
            return empty, empty.reshape(0, 0), empty.reshape(0, 0)
        window = dim_zero_cat(self.window).cpu()
        order = torch.argsort(window, stable=True)
        pred, target = dim_zero_cat(self.pred).cpu(), dim_zero_cat(self.target).cpu()
        return window[order], pred[order].long(), target[order].long()


def stitch_night(
    logits: Any, x: np.ndarray, n_pad: int, transform: Any, batch: int = 16
) -> np.ndarray:
    """Per-frame class probabilities of a whole night, covered as at test time (``sleepbench
    predict``: the night's windows in order, one process).

    Args:
        logits: ``float32 [B, 129, 6000] -> [B, 750, 3]`` (the model).
        x: the night's uint8 log-mel ``[128, 8 * n_pad]``.
        n_pad: its 80-ms frames (padded to whole 30-s strides).
        transform: the evaluation item transform (``(x, y, rng) -> (item, y)``).
        batch: windows per forward call (bounded memory).

    Returns:
        float32 ``[n_pad, 3]``: window softmax averaged per frame over the 60-s windows every
        30 s that cover it (:class:`NightStitcher`, as the test stage), NaN where none does.
    """
    windows = regular_windows(0, n_pad, MEL_PER_LABEL, LABELS_PER_WINDOW, STRIDE_LABELS)
    stitcher = NightStitcher(N_CLASSES)
    stitcher.configure({0: n_pad})
    rng = np.random.default_rng(0)  # unused without augmentation; the transform's signature
    dummy_y = np.zeros(LABELS_PER_WINDOW)
    for lo in range(0, len(windows), batch):
        sel = np.arange(lo, min(lo + batch, len(windows)))
        items = np.stack(
            [transform(x[:, windows.x_start[w] : windows.x_stop[w]], dummy_y, rng)[0] for w in sel]
        )
        # the test step's softmax, in float32
        probs = torch.softmax(torch.from_numpy(np.asarray(logits(items))).float(), dim=-1)
        stitcher.update(
            torch.zeros(len(sel), dtype=torch.long), torch.as_tensor(windows.y_start[sel]), probs
        )
    return stitcher.compute()[0].numpy()
