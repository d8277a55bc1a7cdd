"""The 1-D ConvNeXt-V2 signal encoder of ESI ("ECG Semantic Integrator", Yu, Guo & Sano, TMLR
2024, code ``comp-well-org/ESI``, file ``model/convnextv2.py``), the backbone of
:class:`~sleepbench.tasks.apnea_ecg.network.ApneaECGNet`, with ESI's parameter names so that its
safetensors load.

Two ESI quirks are reproduced on purpose because the pre-trained weights were learnt with them:
``TimeAxisNorm`` (ESI's "channels_first" LayerNorm, which in fact normalises every channel over
time with the unbiased std and adds eps to the std) and ``GlobalResponseNorm1d`` (ESI's GRN,
whose parameters are called ``gamma``/``beta`` and which timm's 2-D ``GlobalResponseNorm`` cannot
replace: it hard-codes 4-D shapes and names its parameters ``weight``/``bias``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from timm.layers import DropPath, trunc_normal_
from torch import nn

__all__ = ["ConvNeXtBlock1d", "ConvNeXtV21d", "GlobalResponseNorm1d", "TimeAxisNorm"]


class TimeAxisNorm(nn.Module):
    """ESI's ``LayerNorm(data_format="channels_first")``, reproduced as written.

    Despite its name, ESI's layer normalises each channel of ``[B, C, L]`` over the *time* axis:
    ``(x - mean_L) / (std_L + eps) * weight + bias`` with the unbiased (Bessel) standard deviation
    and eps added to the std, not to the variance. It is kept because ESI's weights were trained
    with it. ``weight``/``bias`` have shape ``[1, C, 1]`` as in the checkpoint. Needs ``L >= 2``.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, L]`` -> ``[B, C, L]``."""
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)
        return (x - mean) / (std + self.eps) * self.weight + self.bias


class GlobalResponseNorm1d(nn.Module):
    """Global Response Normalisation (ConvNeXt-V2) for channels-last 1-D maps ``[B, L, C]``.

    ``G = ||x||_2 over L``; ``N = G / (mean_C G + 1e-6)``; ``y = gamma * (x * N) + beta + x``.
    Same formula and parameter names (``gamma``, ``beta``, shape ``[1, 1, C]``) as ESI's ``GRN``;
    timm's ``GlobalResponseNorm`` is 4-D only and names its parameters ``weight``/``bias``.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.zeros(1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, L, C]`` -> ``[B, L, C]``."""
        g = torch.linalg.vector_norm(x, ord=2, dim=1, keepdim=True)
        n = g / (g.mean(dim=-1, keepdim=True) + self.eps)
        return self.gamma * (x * n) + self.beta + x


class ConvNeXtBlock1d(nn.Module):
    """ConvNeXt-V2 block on ``[B, C, L]``: depthwise conv k7 -> LN -> Linear x4 -> GELU -> GRN ->
    Linear -> residual with stochastic depth (``drop_path``, probability in [0, 1))."""

    def __init__(self, dim: int, drop_path: float = 0.0) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.grn = GlobalResponseNorm1d(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, L]`` -> ``[B, C, L]``."""
        y = self.dwconv(x).transpose(1, 2)  # pointwise layers work channels-last
        y = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(y)))))
        return x + self.drop_path(y.transpose(1, 2))


class ConvNeXtV21d(nn.Module):
    """ESI's 1-D ConvNeXt-V2 signal encoder, returning a pooled embedding.

    Stem ``Conv1d(in_chans, dims[0], k4, s4)`` + ``TimeAxisNorm``; before stages 1-3
    ``TimeAxisNorm`` + ``Conv1d(k2, s2)``; four stages of ``ConvNeXtBlock1d`` (total temporal
    stride 32); mean over time -> ``LayerNorm`` -> ``[B, dims[-1]]``. Parameter names equal ESI's
    ``ConvNeXtV2`` (``downsample_layers.i.j``, ``stages.i.j.*``, ``norm``) so its state dict loads.

    Unlike ESI's ``forward``, which takes ``[B, L, C]`` and transposes, this takes channels-first
    ``[B, in_chans, L]`` (what ``LeadProjection`` produces) and always returns the embedding
    (ESI's ``return_embedding=True``).

    Parameters: ``in_chans`` input leads; ``depths``/``dims`` blocks and widths per stage;
    ``drop_path_rate`` maximum stochastic-depth probability, linearly increased over the blocks;
    ``num_classes`` width of ESI's classification ``head`` (``Linear(dims[-1], num_classes)``),
    built only for state-dict and parameter-count parity and never used in ``forward``; ``None``
    builds no head.
    """

    def __init__(
        self,
        in_chans: int = 12,
        depths: Sequence[int] = (3, 3, 27, 3),
        dims: Sequence[int] = (128, 256, 512, 1024),
        drop_path_rate: float = 0.0,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        if len(depths) != 4 or len(dims) != 4:
            raise ValueError(f"need four stages, got depths={depths} and dims={dims}")
        self.depths = tuple(depths)
        self.dims = tuple(dims)
        self.downsample_layers = nn.ModuleList(
            [
                nn.Sequential(
                    nn.Conv1d(in_chans, dims[0], kernel_size=4, stride=4), TimeAxisNorm(dims[0])
                )
            ]
        )
        for i in range(3):
            self.downsample_layers.append(
                nn.Sequential(
                    TimeAxisNorm(dims[i]), nn.Conv1d(dims[i], dims[i + 1], kernel_size=2, stride=2)
                )
            )
        # linear 0 -> drop_path_rate over all blocks, as ESI's torch.linspace; plain Python so the
        # network can also be built on the meta device (e.g. to count parameters for free)
        n_blocks = sum(depths)
        rates = [drop_path_rate * j / max(n_blocks - 1, 1) for j in range(n_blocks)]
        self.stages = nn.ModuleList()
        start = 0
        for dim, depth in zip(dims, depths):
            blocks = [ConvNeXtBlock1d(dim, rates[start + j]) for j in range(depth)]
            self.stages.append(nn.Sequential(*blocks))
            start += depth
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes) if num_classes is not None else None
        self.apply(self._init_weights)

    @property
    def embed_dim(self) -> int:
        """Width of the pooled embedding (``dims[-1]``)."""
        return self.dims[-1]

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # ESI: truncated normal (std 0.02) for every conv and linear weight, zero biases.
        if isinstance(module, (nn.Conv1d, nn.Linear)):
            trunc_normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def forward_feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_chans, L]`` -> last-stage map ``[B, dims[-1], L // 32]`` (before pooling)."""
        for downsample, stage in zip(self.downsample_layers, self.stages):
            x = stage(downsample(x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_chans, L]`` with ``L >= 64`` -> embedding ``[B, dims[-1]]``."""
        return self.norm(self.forward_feature_map(x).mean(-1))
