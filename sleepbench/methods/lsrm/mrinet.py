"""Frequency branch ("FFE") of method 003: the Multi-Resolution Interlaced Net (SPECS §4.3).

``MRINet`` maps a batch-normalised log-mel image ``[B, 1, T, F]`` (``T = 1024`` frames, ``F = 64``
mel bins in the paper geometry; the caller interpolates to that size) to ``[B, C4, T/32, F/32]``
with ``C4 = base_channels * ratio**3`` (``[B, 512, 32, 2]`` for the released configuration).

Structure, as coded upstream (``JasYY6/LSRM`` ``model/mrinet.py``):

- stem: ``Conv2d(1 -> base, 7x7, stride 2, padding (5, 3))`` -> BN -> ReLU ->
  ``MaxPool 3x3 s2 p1`` (``[B, 64, 257, 16]`` for a 1024 x 64 input: the asymmetric time padding
  makes 257 rows, and the first average pooling then drops the odd row);
- four stages of ``MRIBlock`` (6, 8, 12, 10 blocks released) on a *pair* of streams that both
  start as the stem output;
- between stages one ``Transition`` per stage boundary, shared by the two streams (the same
  weights are applied to each stream);
- the output is the dilated stream after the last stage.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from sleepbench.errors import ConfigError

__all__ = ["MRIBlock", "MRINet", "Transition", "pre_activation_conv"]


def pre_activation_conv(
    in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1
) -> nn.Sequential:
    """``BatchNorm2d(in) -> ReLU -> Conv2d(in -> out)`` with "same" padding (odd kernels).

    The pre-activation (DenseNet-style) unit every MRINet convolution uses; conv bias is kept as
    upstream. Takes ``[B, in, H, W]`` and returns ``[B, out, H, W]``.
    """
    padding = dilation * (kernel_size - 1) // 2
    return nn.Sequential(
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation),
    )


class MRIBlock(nn.Module):
    """One multi-resolution interlaced block on a pair of streams ``(a, b)`` of ``C`` channels.

    With ``u = concat(a, b)``:

    - ``r  = BN-ReLU-Conv1x1(2C -> C)(u)`` (residual path of the dilated stream);
    - ``a' = BN-ReLU-Conv3x3(C -> C)(BN-ReLU-Conv1x1(2C -> C)(u))`` (plain stream);
    - ``b' = BN-ReLU-Conv3x3 dilation 2 (C -> C)(BN-ReLU-Conv1x1(2C -> C)(concat(b, a'))) + r``.

    The plain stream's new state feeds the dilated stream in the same block, which is the
    "interlacing". Takes and returns a pair of ``[B, C, H, W]`` tensors.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.residual = pre_activation_conv(2 * channels, channels)
        self.plain = nn.Sequential(
            pre_activation_conv(2 * channels, channels),
            pre_activation_conv(channels, channels, kernel_size=3),
        )
        self.dilated = nn.Sequential(
            pre_activation_conv(2 * channels, channels),
            pre_activation_conv(channels, channels, kernel_size=3, dilation=2),
        )

    def forward(
        self, streams: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(a, b)`` -> ``(a', b')``, all ``[B, C, H, W]``."""
        a, b = streams
        u = torch.cat((a, b), dim=1)
        a_new = self.plain(u)
        b_new = self.dilated(torch.cat((b, a_new), dim=1)) + self.residual(u)
        return a_new, b_new


class Transition(nn.Module):
    """``BN -> ReLU -> Conv1x1(in -> out) -> AvgPool 2x2``: ``[B, in, H, W]`` -> ``[B, out, H//2, W//2]``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = pre_activation_conv(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in, H, W]`` -> ``[B, out, H//2, W//2]``."""
        return F.avg_pool2d(self.conv(x), 2)


class MRINet(nn.Module):
    """Multi-Resolution Interlaced Net (LSRM's frequency-feature extractor, SPECS §4.3).

    Args:
        nblocks: MRI blocks per stage (four stages; released ``[6, 8, 12, 10]``).
        base_channels: channels of the stem and of stage 1 (released 64).
        ratio: channel growth per stage (released 2); stage ``i`` has ``base * ratio**i``.

    ``forward`` takes ``[B, 1, T, F]`` (batch-normalised log-mel, time-major) and returns the
    dilated stream of the last stage, ``[B, base * ratio**3, T', F']`` (``T' = 32, F' = 2`` for
    ``T = 1024, F = 64``). ``out_channels`` gives the output width.
    """

    def __init__(self, nblocks: Sequence[int], base_channels: int = 64, ratio: int = 2) -> None:
        super().__init__()
        if len(nblocks) != 4 or min(nblocks) < 1:
            raise ConfigError(f"nblocks must be 4 positive stage depths, got {list(nblocks)}")
        widths = [base_channels * ratio**i for i in range(4)]
        self.out_channels = widths[-1]
        self.stem = nn.Sequential(
            nn.Conv2d(1, base_channels, kernel_size=7, stride=2, padding=(5, 3)),
            nn.BatchNorm2d(base_channels),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        self.stages = nn.ModuleList(
            nn.Sequential(*(MRIBlock(width) for _ in range(n))) for n, width in zip(nblocks, widths)
        )
        self.transitions = nn.ModuleList(Transition(widths[i], widths[i + 1]) for i in range(3))
        # NHWC conv weights: oneDNN (CPU) and cuDNN then run the convolutions channels-last, the
        # same function in less time (inference per clip: benchmarks/bench_lsrm.py);
        # .to(device) and load_state_dict keep the layout
        self.to(memory_format=torch.channels_last)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, T, F]`` -> stem output ``[B, base, T', F']`` (``[B, 64, 257, 16]`` for 1024 x 64)."""
        return self.stem(x.contiguous(memory_format=torch.channels_last))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, T, F]`` -> ``[B, out_channels, T/32, F/32]`` (the dilated stream)."""
        out = self.forward_stem(x)
        streams = (out, out)
        for i, stage in enumerate(self.stages):
            if i > 0:
                # One Transition per boundary, applied to both streams with the same weights.
                transition = self.transitions[i - 1]
                streams = (transition(streams[0]), transition(streams[1]))
            streams = stage(streams)
        return streams[1]
