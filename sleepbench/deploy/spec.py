"""What deployment needs to know of a task's network: the network itself and its input.

Each task's ``export.py`` provides ``export_spec(cfg) -> ExportSpec`` (named by
``Task.export_ref`` in its ``task.py``): the network exactly as the task's LightningModule holds
it in ``module.net`` (so a checkpoint's ``net.*`` weights load into it), built from the run's
config without any pre-trained initialisation (the checkpoint's weights replace it anyway), and
the shape of one input item. Export, prediction and serving all go through it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["ExportSpec"]


@dataclass(frozen=True)
class ExportSpec:
    """A task's network and the input it takes, as exported.

    Args:
        net: the network (``BenchModule.net``): a batch ``[B, *item_shape]`` in, logits out.
        item_shape: shape of one input item without the batch axis (``(1, 6000)`` for one
            minute of ECG at 100 Hz); every axis but the batch axis is fixed in the export.
        item_s: seconds of signal one input item covers (for per-hour timings).
        input_name: name of the input in the exported graph (the batch key ``x``).
        output_name: name of the output.
        input_doc: what the input holds, in words (units, rate, normalisation).
        output_doc: what the output holds, in words (shape and meaning of its axes).
    """

    net: nn.Module
    item_shape: tuple[int, ...]
    item_s: float
    input_doc: str
    output_doc: str
    input_name: str = "x"
    output_name: str = "logits"

    def example(self, batch: int = 2, seed: int = 0) -> torch.Tensor:
        """A float32 input batch ``[batch, *item_shape]`` of standard-normal values, drawn from
        its own generator (``seed``) so that the global random state is left alone."""
        generator = torch.Generator().manual_seed(int(seed))
        return torch.randn(batch, *self.item_shape, generator=generator)
