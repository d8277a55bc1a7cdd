"""MSC-Mamba-LSTM: multi-scale convolution + Mamba + channel attention, with a parallel LSTM branch.

Network of "Deep Model Based on Mamba Fusion Multi-Scale Convolution LSTM for OSA Severity
Grading" (Applied Sciences 15(24), 12990, 2025; doi:10.3390/app152412990). No code was published
and the architecture section was not retrievable: the layout follows the constraints of the
paper's ablation study and the instantiation proposed in SPECS §3.3 (sizes are [ASSUMPTION]).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from sleepbench.nn.attention import ChannelAttention1d
from sleepbench.nn.mamba import MambaBlock

__all__ = ["VARIANTS", "MSCMambaLSTM", "Variant"]

Variant = Literal[
    "full",
    "model1_cnn_lstm",
    "model2_single_scale",
    "model3_no_mamba",
    "model4_no_mca",
    "model5_no_lstm",
]

#: ablation variant -> (multi-scale convs, Mamba, MCA, LSTM branch)
VARIANTS: dict[str, tuple[bool, bool, bool, bool]] = {
    "full": (True, True, True, True),
    # the paper's baseline "conventional CNN + LSTM": plain single-scale CNN branch, no Mamba or MCA
    "model1_cnn_lstm": (False, False, False, True),
    "model2_single_scale": (False, True, True, True),
    "model3_no_mamba": (True, False, True, True),
    "model4_no_mca": (True, True, False, True),
    "model5_no_lstm": (True, True, True, False),
}


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int) -> nn.Sequential:
    """'same'-padded Conv1d (odd ``kernel``) -> BatchNorm -> ReLU; the conv has no bias (BN's
    shift replaces it)."""
    if kernel % 2 == 0:
        raise ValueError(f"kernel sizes must be odd for 'same' padding, got {kernel}")
    return nn.Sequential(
        nn.Conv1d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm1d(out_ch),
        nn.ReLU(inplace=True),
    )


class MultiScaleConv1d(nn.Module):
    """Parallel 'same' convolutions of several kernel lengths, concatenated and fused by a 1x1 conv.

    Each branch is Conv1d -> BN -> ReLU with ``out_channels`` filters; the ``len(kernels) *
    out_channels`` concatenation goes through a 1x1 Conv1d -> BN -> ReLU back to ``out_channels``.
    ``[B, in_channels, L] -> [B, out_channels, L]``; kernel lengths in samples of the input.
    """

    def __init__(self, in_channels: int, out_channels: int, kernels: Sequence[int]) -> None:
        super().__init__()
        if not kernels:
            raise ValueError("need at least one kernel size")
        self.branches = nn.ModuleList(_conv_bn_relu(in_channels, out_channels, k) for k in kernels)
        self.fuse = _conv_bn_relu(len(kernels) * out_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, L] -> [B, C_out, L]``."""
        return self.fuse(torch.cat([branch(x) for branch in self.branches], dim=1))


class PreNormResidualMamba(nn.Module):
    """``x + Mamba(LayerNorm(x))`` on a ``[B, C, L]`` feature map (the Mamba mixes along L)."""

    def __init__(self, channels: int, d_state: int, d_conv: int, expand: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.mamba = MambaBlock(channels, d_state=d_state, d_conv=d_conv, expand=expand)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, L] -> [B, C, L]``."""
        seq = x.transpose(1, 2)
        return (seq + self.mamba(self.norm(seq))).transpose(1, 2)


class LSTMBranch(nn.Module):
    """Shallow branch: Conv1d(1 -> C, k) -> BN -> ReLU -> AvgPool(``pool``) -> LSTM -> time mean.

    ``[B, 1, L] -> [B, hidden]``; the pooled sequence has ``L // pool`` steps (450 for 8 h at 1 Hz
    and ``pool = 64``, one step ~ 64 s).
    """

    def __init__(
        self, conv_channels: int, kernel: int, pool: int, hidden: int, num_layers: int
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_bn_relu(1, conv_channels, kernel), nn.AvgPool1d(pool, stride=pool)
        )
        self.lstm = nn.LSTM(conv_channels, hidden, num_layers=num_layers, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, L] -> [B, hidden]``."""
        seq, _ = self.lstm(self.features(x).transpose(1, 2))
        return seq.mean(dim=1)


class MSCMambaLSTM(nn.Module):
    """MSC-Mamba-LSTM for 4-class OSA severity from one night of 1 Hz SpO2 (SPECS §3.3).

    Deep branch: ``len(channels)`` stages of multi-scale convolution (parallel kernels
    ``kernels`` -> concat -> 1x1 fuse) each followed by MaxPool(``pool``) -> ``n_mamba`` pre-norm
    residual Mamba blocks -> MCA channel attention (CBAM channel gate, avg + max descriptors
    through a shared MLP) -> global average pooling. LSTM branch: Conv1d(1 -> ``channels[0]``,
    k 7) -> AvgPool(``lstm_pool``) -> 2-layer LSTM -> mean over time. Fusion: concat -> Linear
    128 -> ReLU -> Dropout -> Linear ``n_outputs``.

    Ablation ``variant`` (the paper's §4 models):

    - ``"full"``: everything above.
    - ``"model1_cnn_lstm"``: conventional CNN + LSTM two-branch baseline: single-scale k=3 stages,
      ``n_mamba`` plain conv layers instead of Mamba, no MCA, LSTM branch kept.
    - ``"model2_single_scale"``: each multi-scale module replaced by one k=3 Conv -> BN -> ReLU.
    - ``"model3_no_mamba"``: the Mamba blocks replaced by ``n_mamba`` Conv(k3) -> BN -> ReLU layers.
    - ``"model4_no_mca"``: no channel attention.
    - ``"model5_no_lstm"``: no LSTM branch; the head sees the deep branch only.

    Parameters
    ----------
    n_outputs:
        Number of classes (4: normal, mild, moderate, severe).
    n_times:
        Input length in samples (28,800 = 8 h at 1 Hz); must survive the poolings.
    variant:
        One of :data:`VARIANTS`.
    channels:
        Output channels of the convolution stages; the last is the Mamba ``d_model``.
    kernels:
        Kernel lengths (samples, odd) of the parallel multi-scale convolutions.
    pool:
        Max-pooling factor after each stage (28,800 / 4^3 = 450 Mamba steps).
    n_mamba:
        Number of Mamba blocks (or of replacement conv layers).
    d_state, d_conv, expand:
        Mamba state size, causal conv length (steps) and expansion (mamba-ssm defaults).
    mca_reduction:
        Bottleneck ratio of the channel-attention MLP.
    lstm_hidden:
        Hidden size of the LSTM branch.
    lstm_pool:
        Average-pooling factor (samples) before the LSTM.
    dropout:
        Dropout probability in the fusion head.
    lstm_layers:
        Number of stacked LSTM layers.
    lstm_kernel:
        Kernel length (samples, odd) of the LSTM branch's convolution.
    fusion_hidden:
        Width of the fusion head's hidden layer.

    Input ``[B, 1, L]`` (min-max scaled SpO2); output logits ``[B, n_outputs]``.
    """

    def __init__(
        self,
        n_outputs: int = 4,
        n_times: int = 28_800,
        variant: Variant = "full",
        channels: Sequence[int] = (32, 64, 128),
        kernels: Sequence[int] = (3, 7, 15),
        pool: int = 4,
        n_mamba: int = 2,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        mca_reduction: int = 8,
        lstm_hidden: int = 64,
        lstm_pool: int = 64,
        dropout: float = 0.5,
        lstm_layers: int = 2,
        lstm_kernel: int = 7,
        fusion_hidden: int = 128,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")
        if not channels:
            raise ValueError("need at least one convolution stage")
        deep_steps = n_times // pool ** len(channels)
        if deep_steps < 1:
            raise ValueError(
                f"n_times={n_times} is shorter than the deep branch's total pooling "
                f"{pool}^{len(channels)}"
            )
        multi_scale, use_mamba, use_mca, use_lstm = VARIANTS[variant]
        if use_lstm and n_times // lstm_pool < 1:
            raise ValueError(f"n_times={n_times} is shorter than lstm_pool={lstm_pool}")
        self.n_outputs = n_outputs
        self.n_times = n_times
        self.variant = variant

        stages: list[nn.Module] = []
        in_ch = 1
        for out_ch in channels:
            block = (
                MultiScaleConv1d(in_ch, out_ch, kernels)
                if multi_scale
                else _conv_bn_relu(in_ch, out_ch, 3)
            )
            stages += [block, nn.MaxPool1d(pool, stride=pool)]
            in_ch = out_ch
        self.stages = nn.Sequential(*stages)
        d_model = channels[-1]
        self.temporal = nn.Sequential(
            *(
                PreNormResidualMamba(d_model, d_state, d_conv, expand)
                if use_mamba
                else _conv_bn_relu(d_model, d_model, 3)
                for _ in range(n_mamba)
            )
        )
        self.mca: nn.Module = (
            ChannelAttention1d(d_model, reduction=mca_reduction) if use_mca else nn.Identity()
        )
        self.lstm_branch: LSTMBranch | None = (
            LSTMBranch(channels[0], lstm_kernel, lstm_pool, lstm_hidden, lstm_layers)
            if use_lstm
            else None
        )
        fused = d_model + (lstm_hidden if use_lstm else 0)
        self.head = nn.Sequential(
            nn.Linear(fused, fusion_hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fusion_hidden, n_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, L]`` SpO2 -> ``[B, n_outputs]`` logits."""
        if x.ndim != 3 or x.shape[1] != 1:
            raise ValueError(f"expected [B, 1, L] SpO2, got shape {tuple(x.shape)}")
        deep = self.mca(self.temporal(self.stages(x))).mean(dim=2)
        if self.lstm_branch is not None:
            deep = torch.cat([deep, self.lstm_branch(x)], dim=1)
        return self.head(deep)
