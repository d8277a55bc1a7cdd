"""Channel and spatial attention blocks shared by the sleepbench networks.

All blocks take a feature map ``[B, C, *spatial]`` (``[B, C, L]`` for 1-D signals, ``[B, C, H, W]``
for spectrograms) and return a tensor of the same shape: the input rescaled by a gate in (0, 1).
Each block also exposes ``gate(x)``, the multiplicative map it applies, so callers and tests can
inspect it.

References
----------
- SE: Hu, Shen & Sun, "Squeeze-and-Excitation Networks", CVPR 2018, arXiv:1709.01507.
- CBAM: Woo, Park, Lee & Kweon, "CBAM: Convolutional Block Attention Module", ECCV 2018,
  arXiv:1807.06521.
- CSJA: channel-spatial joint attention of TinyUStaging (Liu et al., github.com/ljyljy/TinyUStaging),
  a CBAM variant whose two branches are chained ("multiply") or summed ("add").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

__all__ = [
    "CSJA1d",
    "ChannelAttention1d",
    "SpatialAttention1d",
    "SqueezeExcitation",
    "SqueezeExcitation1d",
    "SqueezeExcitation2d",
]

ActivationFactory = Callable[[], nn.Module]


def _check_feature_map(x: torch.Tensor, channels: int | None, ndim: int | None) -> None:
    """Raise ``ValueError`` unless ``x`` is ``[B, C, *spatial]`` with the expected C and rank."""
    if x.ndim < 3:
        raise ValueError(f"expected a [B, C, *spatial] tensor, got shape {tuple(x.shape)}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"expected a {ndim}-D tensor, got shape {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"expected {channels} channels, got shape {tuple(x.shape)}")


def _bottleneck_mlp(
    channels: int, reduction: int, bias: bool, activation: ActivationFactory
) -> nn.Sequential:
    """``Linear(C, C // r) -> activation -> Linear(C // r, C)``; the hidden width is at least 1."""
    if channels < 1 or reduction < 1:
        raise ValueError(f"channels and reduction must be >= 1, got {channels} and {reduction}")
    hidden = max(1, channels // reduction)
    return nn.Sequential(
        nn.Linear(channels, hidden, bias=bias),
        activation(),
        nn.Linear(hidden, channels, bias=bias),
    )


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation over the channel dim of a ``[B, C, *spatial]`` tensor.

    Global average pooling over every non-channel dim gives a ``[B, C]`` descriptor, which goes
    through ``Linear(C, C // reduction) -> activation -> Linear(C // reduction, C) -> sigmoid``; the
    result rescales each channel.

    Parameters
    ----------
    channels:
        Number of input channels C.
    reduction:
        Bottleneck ratio r; the hidden width is ``max(1, C // r)`` (Keras ``Dense(C // r)``).
    bias:
        Whether the two linear layers have a bias (the audio CRNN uses bias-free ones).
    activation:
        Factory of the hidden activation module (``nn.ReLU`` as in the SE paper).
    """

    #: expected tensor rank, ``None`` = any rank >= 3
    expected_ndim: int | None = None

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        bias: bool = True,
        activation: ActivationFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.reduction = reduction
        self.mlp = _bottleneck_mlp(channels, reduction, bias, activation)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """Channel gate in (0, 1), shape ``[B, C, 1, ..., 1]`` (broadcastable onto ``x``)."""
        _check_feature_map(x, self.channels, self.expected_ndim)
        squeezed = x.mean(dim=tuple(range(2, x.ndim)))
        weights = torch.sigmoid(self.mlp(squeezed))
        return weights.view(*weights.shape, *([1] * (x.ndim - 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rescale ``x`` ``[B, C, *spatial]`` channel-wise; returns the same shape."""
        return x * self.gate(x)


class SqueezeExcitation1d(SqueezeExcitation):
    """:class:`SqueezeExcitation` restricted to ``[B, C, L]`` sequences."""

    expected_ndim = 3


class SqueezeExcitation2d(SqueezeExcitation):
    """:class:`SqueezeExcitation` restricted to ``[B, C, H, W]`` feature maps."""

    expected_ndim = 4


class ChannelAttention1d(nn.Module):
    """CBAM channel attention on ``[B, C, L]`` (any ``[B, C, *spatial]`` works).

    The global-average and global-max descriptors ``[B, C]`` pass through one shared MLP
    ``Linear(C, C // r) -> activation -> Linear(C // r, C)``; the two outputs are summed and
    squashed by a sigmoid into a channel gate that rescales the input.

    Parameters
    ----------
    channels:
        Number of input channels C.
    reduction:
        Bottleneck ratio r of the shared MLP; hidden width ``max(1, C // r)``.
    bias:
        Whether the shared linear layers have a bias.
    activation:
        Factory of the hidden activation module (``nn.ReLU`` as in CBAM).
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 8,
        bias: bool = True,
        activation: ActivationFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.reduction = reduction
        self.mlp = _bottleneck_mlp(channels, reduction, bias, activation)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """Channel gate in (0, 1), shape ``[B, C, 1, ..., 1]``."""
        _check_feature_map(x, self.channels, None)
        flat = x.flatten(2)
        logits = self.mlp(flat.mean(dim=2)) + self.mlp(flat.amax(dim=2))
        weights = torch.sigmoid(logits)
        return weights.view(*weights.shape, *([1] * (x.ndim - 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rescale ``x`` channel-wise; returns the same shape."""
        return x * self.gate(x)


class SpatialAttention1d(nn.Module):
    """CBAM spatial (temporal) attention on ``[B, C, L]``.

    The channel-wise mean and max maps are stacked into ``[B, 2, L]``, convolved to one map with a
    'same'-padded kernel, batch-normalised and passed through a sigmoid; the ``[B, 1, L]`` gate
    rescales every channel at each position.

    Parameters
    ----------
    kernel_size:
        Odd kernel length of the gating convolution, in samples of the feature map.
    batch_norm:
        Apply BatchNorm to the conv output before the sigmoid (CBAM and the TinyUStaging figure do;
        the conv is bias-free in that case, since BN's shift replaces the bias).
    """

    def __init__(self, kernel_size: int = 7, batch_norm: bool = True) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}")
        self.kernel_size = kernel_size
        self.conv = nn.Conv1d(2, 1, kernel_size, padding=kernel_size // 2, bias=not batch_norm)
        self.norm: nn.Module = nn.BatchNorm1d(1) if batch_norm else nn.Identity()

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """Temporal gate in (0, 1), shape ``[B, 1, L]``."""
        _check_feature_map(x, None, 3)
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.norm(self.conv(pooled)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rescale ``x`` ``[B, C, L]`` position-wise; returns the same shape."""
        return x * self.gate(x)


class CSJA1d(nn.Module):
    """Channel-spatial joint attention (TinyUStaging's CSJA) on ``[B, C, L]``.

    With ``combine="multiply"`` the branches are chained as in CBAM:
    ``y = SA(CA(x)) = x * g_c(x) * g_s(x * g_c(x))``. With ``combine="add"`` both branches see the
    block input and their outputs are summed: ``y = CA(x) + SA(x)`` (upstream flag ``isAdd``).
    ``channel_attention=False`` drops the channel branch (upstream ``isChanAttn: False``, the
    ``cbam2se`` variant), leaving spatial attention only.

    Parameters
    ----------
    channels:
        Number of input channels C.
    reduction:
        Bottleneck ratio of the channel branch's shared MLP.
    kernel_size:
        Kernel length of the spatial branch's conv, in samples of the feature map.
    combine:
        ``"multiply"`` (sequential branches) or ``"add"`` (parallel branches, summed).
    channel_attention:
        Whether the channel branch is present.
    activation:
        Factory of the channel MLP's hidden activation.
    spatial_batch_norm:
        BatchNorm inside the spatial branch (see :class:`SpatialAttention1d`).
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 5,
        kernel_size: int = 7,
        combine: Literal["multiply", "add"] = "multiply",
        channel_attention: bool = True,
        activation: ActivationFactory = nn.ReLU,
        spatial_batch_norm: bool = True,
    ) -> None:
        super().__init__()
        if combine not in ("multiply", "add"):
            raise ValueError(f"combine must be 'multiply' or 'add', got {combine!r}")
        self.channels = channels
        self.combine = combine
        self.channel: ChannelAttention1d | None = (
            ChannelAttention1d(channels, reduction, activation=activation)
            if channel_attention
            else None
        )
        self.spatial = SpatialAttention1d(kernel_size, batch_norm=spatial_batch_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the joint attention to ``x`` ``[B, C, L]``; returns the same shape."""
        _check_feature_map(x, self.channels, 3)
        if self.combine == "multiply":
            refined = self.channel(x) if self.channel is not None else x
            return self.spatial(refined)
        spatial = self.spatial(x)
        return spatial if self.channel is None else self.channel(x) + spatial
