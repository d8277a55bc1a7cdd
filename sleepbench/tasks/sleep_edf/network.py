"""TinyUStaging: a U-Time style fully convolutional sleep stager with SE and CSJA attention."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from sleepbench.nn.attention import CSJA1d, SqueezeExcitation1d

__all__ = ["TinyUStaging"]

EncoderAttention = Literal["csja", "se"]


class _ConvELUBN(nn.Module):
    """'same'-padded ``Conv1d -> ELU -> BatchNorm1d`` (U-Time applies the activation before BN).

    Padding follows TensorFlow's 'same' rule (the extra sample of an even kernel goes on the
    right); it is applied explicitly so even kernels need no padded copy inside ``conv1d``.
    """

    def __init__(self, in_chans: int, out_chans: int, kernel_size: int, dilation: int = 1) -> None:
        super().__init__()
        total = dilation * (kernel_size - 1)
        self.pad = nn.ConstantPad1d((total // 2, total - total // 2), 0.0)
        self.conv = nn.Conv1d(in_chans, out_chans, kernel_size, dilation=dilation)
        self.act = nn.ELU()
        self.norm = nn.BatchNorm1d(out_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, L]`` -> ``[B, C_out, L]``."""
        return self.norm(self.act(self.conv(self.pad(x))))


class _EncoderLevel(nn.Module):
    """Two dilated conv blocks; returns the skip tensor and its max-pooled version."""

    def __init__(
        self, in_chans: int, out_chans: int, kernel_size: int, dilation: int, pool: int
    ) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            _ConvELUBN(in_chans, out_chans, kernel_size, dilation),
            _ConvELUBN(out_chans, out_chans, kernel_size, dilation),
        )
        self.pool = nn.MaxPool1d(pool)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, C_in, L]`` -> (skip ``[B, C_out, L]``, pooled ``[B, C_out, L // pool]``)."""
        skip = self.convs(x)
        return skip, self.pool(skip)


def _center_crop(x: torch.Tensor, length: int) -> torch.Tensor:
    """Crop ``x`` ``[B, C, L]`` symmetrically to ``length`` samples (extra sample off the end)."""
    start = (x.shape[-1] - length) // 2
    return x[..., start : start + length]


def _pad_or_crop(x: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pad or centre-crop ``x`` ``[B, C, L]`` to ``length`` samples."""
    diff = length - x.shape[-1]
    if diff > 0:
        return F.pad(x, (diff // 2, diff - diff // 2))
    return _center_crop(x, length) if diff < 0 else x


class _DecoderLevel(nn.Module):
    """Nearest up-sampling, a conv with kernel = factor, skip concatenation, two conv blocks."""

    def __init__(
        self, in_chans: int, skip_chans: int, out_chans: int, factor: int, kernel_size: int
    ) -> None:
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=factor, mode="nearest")
        self.up_conv = _ConvELUBN(in_chans, out_chans, factor)
        self.convs = nn.Sequential(
            _ConvELUBN(skip_chans + out_chans, out_chans, kernel_size),
            _ConvELUBN(out_chans, out_chans, kernel_size),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, L]`` and skip ``[B, C_skip, >= L * factor]`` -> ``[B, C_out, L * factor]``."""
        up = self.up_conv(self.upsample(x))
        return self.convs(torch.cat([_center_crop(skip, up.shape[-1]), up], dim=1))


class TinyUStaging(nn.Module):
    """TinyUStaging sleep stager (U-Time encoder/decoder with SE and CSJA attention).

    A fully convolutional U-Net over a sequence of ``n_epochs`` consecutive 30-s epochs of EEG and
    EOG. Encoder: ``depth`` levels of two dilated ``Conv -> ELU -> BN`` blocks and max-pooling by
    ``pools``; channel-spatial joint attention (CSJA) refines the map after the first pooling. The
    bottom has two conv blocks and a squeeze-excitation (SE) block. The decoder mirrors the encoder
    with nearest up-sampling and skip concatenation. A 1x1 tanh "dense" layer plus a second SE block
    gives a per-sample map, which the segment classifier (U-Time's random-window classifier)
    average-pools over each epoch and maps to one set of class logits per epoch.

    Filter counts are ``int(init_filters * 2**level * sqrt(complexity_factor))``: 22, 45, 90, 181
    and 362 at the bottom for the defaults; the dense layer has ``int(n_outputs *
    sqrt(complexity_factor))`` = 7 channels. About 2.4 M parameters by default.

    The SE and channel-attention MLPs use ELU as in the upstream attention code of this code family.

    Parameters
    ----------
    n_chans:
        Number of input channels (one EEG + one EOG derivation).
    n_outputs:
        Number of sleep stages (W, REM, N1, N2, N3 in the upstream label order).
    n_epochs:
        Number of consecutive scoring epochs per input sequence (31 upstream). ``forward`` accepts
        any whole number of epochs that survives the pooling; this is the nominal length.
    sfreq:
        Sampling frequency of the input, in Hz.
    epoch_s:
        Length of one scoring epoch, in seconds (``epoch_s * sfreq`` = 3840 samples by default).
    depth:
        Number of encoder/decoder levels (``len(pools)``).
    pools:
        Max-pooling factor of each encoder level; the decoder up-samples by the reverse.
    kernel_size:
        Kernel length of the encoder/bottom/decoder convs, in samples of each level's map.
    dilation:
        Dilation of the encoder convs (bottom and decoder convs are undilated, as in U-Time).
    complexity_factor:
        Width multiplier; filter counts scale with its square root.
    init_filters:
        Base filter count of the first level before the complexity factor.
    attention:
        Encoder attention after the first pooling: ``"csja"``, ``"se"`` or ``None``.
    dense_se_reduction:
        SE reduction ratio after the dense layer, or ``None`` to drop that SE block.
    bottom_se_reduction:
        SE reduction ratio at the bottom, or ``None`` to drop that SE block.
    csja_reduction:
        Channel-MLP reduction ratio of CSJA (and of the encoder SE when ``attention="se"``).
    csja_kernel_size:
        Kernel length of CSJA's spatial-attention conv, in samples of the pooled map.
    csja_combine:
        How CSJA joins its branches: ``"multiply"`` (chained, CBAM) or ``"add"`` (summed).
    csja_channel_attention:
        Whether CSJA keeps its channel branch (``False`` = upstream ``cbam2se`` variant).

    Input ``[B, n_chans, n_epochs * epoch_s * sfreq]``; output logits ``[B, n_outputs, n_epochs]``
    (apply softmax for probabilities).

    References
    ----------
    TinyUStaging, github.com/ljyljy/TinyUStaging (model configs and attention blocks).
    M. Perslev, M. H. Jensen, S. Darkner, P. J. Jennum, C. Igel, "U-Time: A Fully Convolutional
    Network for Time Series Segmentation Applied to Sleep Staging", NeurIPS 2019.
    """

    def __init__(
        self,
        n_chans: int = 2,
        n_outputs: int = 5,
        n_epochs: int = 31,
        sfreq: float = 128.0,
        epoch_s: float = 30.0,
        depth: int = 4,
        pools: Sequence[int] = (10, 8, 6, 4),
        kernel_size: int = 5,
        dilation: int = 2,
        complexity_factor: float = 2.0,
        init_filters: int = 16,
        attention: EncoderAttention | None = "csja",
        dense_se_reduction: int | None = 1,
        bottom_se_reduction: int | None = 8,
        csja_reduction: int = 5,
        csja_kernel_size: int = 7,
        csja_combine: Literal["multiply", "add"] = "multiply",
        csja_channel_attention: bool = True,
    ) -> None:
        super().__init__()
        pools = tuple(int(p) for p in pools)
        if len(pools) != depth or any(p < 1 for p in pools):
            raise ValueError(f"pools {pools} must hold `depth`={depth} positive factors")
        if attention not in ("csja", "se", None):
            raise ValueError(f"attention must be 'csja', 'se' or None, got {attention!r}")
        epoch_samples = sfreq * epoch_s
        if abs(epoch_samples - round(epoch_samples)) > 1e-6 or round(epoch_samples) < 1:
            raise ValueError(f"epoch_s * sfreq = {epoch_samples} must be a whole number of samples")
        if n_epochs < 1:
            raise ValueError(f"n_epochs must be >= 1, got {n_epochs}")
        self.n_chans = n_chans
        self.n_outputs = n_outputs
        self.n_epochs = n_epochs
        self.sfreq = float(sfreq)
        self.epoch_s = float(epoch_s)
        self.epoch_samples = round(epoch_samples)
        self.pools = pools
        self.total_pool = math.prod(pools)
        if self.n_times < self.total_pool:
            raise ValueError(
                f"{self.n_times} input samples do not survive a total pooling of {self.total_pool}"
            )

        width = math.sqrt(complexity_factor)
        filters = [int(init_filters * 2**level * width) for level in range(depth + 1)]

        self.encoder = nn.ModuleList()
        in_chans = n_chans
        for level, pool in enumerate(pools):
            self.encoder.append(
                _EncoderLevel(in_chans, filters[level], kernel_size, dilation, pool)
            )
            in_chans = filters[level]
        # Upstream attaches the encoder attention to "layer 2" = the first pooled map.
        self.encoder_attention: nn.Module
        if attention == "csja":
            self.encoder_attention = CSJA1d(
                filters[0],
                reduction=csja_reduction,
                kernel_size=csja_kernel_size,
                combine=csja_combine,
                channel_attention=csja_channel_attention,
                activation=nn.ELU,
            )
        elif attention == "se":
            self.encoder_attention = SqueezeExcitation1d(
                filters[0], csja_reduction, activation=nn.ELU
            )
        else:
            self.encoder_attention = nn.Identity()

        self.bottom = nn.Sequential(
            _ConvELUBN(filters[depth - 1], filters[depth], kernel_size),
            _ConvELUBN(filters[depth], filters[depth], kernel_size),
            self._se_or_identity(filters[depth], bottom_se_reduction),
        )

        self.decoder = nn.ModuleList()
        in_chans = filters[depth]
        for level in reversed(range(depth)):
            self.decoder.append(
                _DecoderLevel(in_chans, filters[level], filters[level], pools[level], kernel_size)
            )
            in_chans = filters[level]

        dense_chans = int(n_outputs * width)
        self.dense = nn.Sequential(
            nn.Conv1d(filters[0], dense_chans, 1),
            nn.Tanh(),
            self._se_or_identity(dense_chans, dense_se_reduction),
        )
        self.classifier = nn.Sequential(
            nn.AvgPool1d(self.epoch_samples),
            nn.Conv1d(dense_chans, n_outputs, 1),
            nn.ELU(),
            nn.Conv1d(n_outputs, n_outputs, 1),
        )

    @staticmethod
    def _se_or_identity(channels: int, reduction: int | None) -> nn.Module:
        """An ELU squeeze-excitation block, or identity when ``reduction`` is ``None``."""
        if reduction is None:
            return nn.Identity()
        return SqueezeExcitation1d(channels, reduction, activation=nn.ELU)

    @property
    def n_times(self) -> int:
        """Nominal input length in samples, ``n_epochs * epoch_s * sfreq``."""
        return self.n_epochs * self.epoch_samples

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Stage logits ``[B, n_outputs, L // epoch_samples]`` of ``x`` ``[B, n_chans, L]``.

        ``L`` is normally ``n_times``; any whole number of epochs of at least the total pooling
        factor (1920 samples by default) is accepted.
        """
        if x.ndim != 3 or x.shape[1] != self.n_chans:
            raise ValueError(f"expected [B, {self.n_chans}, L] input, got {tuple(x.shape)}")
        length = x.shape[-1]
        if length % self.epoch_samples or length < self.total_pool:
            raise ValueError(
                f"input length {length} must be a multiple of {self.epoch_samples} samples "
                f"per epoch and >= the total pooling {self.total_pool}"
            )
        skips = []
        for level, encoder_level in enumerate(self.encoder):
            skip, x = encoder_level(x)
            skips.append(skip)
            if level == 0:
                x = self.encoder_attention(x)
        x = self.bottom(x)
        for decoder_level, skip in zip(self.decoder, reversed(skips)):
            x = decoder_level(x, skip)
        x = _pad_or_crop(self.dense(x), length)
        return self.classifier(x)
