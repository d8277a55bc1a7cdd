"""The Mamba layer (:class:`MambaBlock`, Gu & Dao, "Mamba: Linear-Time Sequence Modeling with
Selective State Spaces", arXiv:2312.00752): a gated selective state-space mixer. Its selective
scan is the pure-PyTorch, linear-time one of :mod:`sleepbench.nn.selective_scan`; where
``mamba-ssm`` is installed and the input is on a CUDA device, the block uses that package's fused
kernel instead.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from sleepbench.nn.selective_scan import (
    DEFAULT_CHUNK_SIZE,
    _cuda_selective_scan_fn,
    mamba_ssm_available,
    selective_scan,
    selective_scan_reference,
)

__all__ = [
    "MambaBlock",
    "mamba_ssm_available",
    "selective_scan",
    "selective_scan_reference",
]

# --------------------------------------------------------------------------------------------
# Mamba layer
# --------------------------------------------------------------------------------------------


class MambaBlock(nn.Module):
    """The Mamba layer (``mamba_ssm.modules.mamba_simple.Mamba``): gated selective SSM mixer.

    ``x -> in_proj -> (x, z)``; ``x -> causal depthwise conv1d -> SiLU -> x_proj -> (dt, B, C)``;
    ``dt -> dt_proj``; ``y = selective_scan(x, dt, A, B, C, D, z, softplus(dt + bias))``;
    ``out_proj(y)``. No normalisation or residual: wrap it (pre-norm + residual) in the network.

    Parameters
    ----------
    d_model:
        Feature size of the input and output.
    d_state:
        SSM state size N per channel.
    d_conv:
        Length of the causal depthwise convolution, in time steps.
    expand:
        Inner width ``d_inner = expand * d_model``.
    dt_rank:
        Rank of the step-size projection; ``"auto"`` = ``ceil(d_model / 16)``.
    dt_min, dt_max, dt_init_floor:
        Range of the initial step sizes (log-uniform, as in mamba-ssm).
    conv_bias, bias:
        Bias of the depthwise conv / of ``in_proj`` and ``out_proj``.
    use_cuda_kernel:
        ``"auto"``: use mamba-ssm's fused kernel when importable, the input is on CUDA and
        deterministic algorithms are off (its backward sums dB/dC with ``atomicAdd``, so two runs
        differ; it raises no error, so ``trainer.deterministic=true`` would not notice);
        ``True``: require it (``RuntimeError`` otherwise); ``False``: always the pure scan.
    chunk_size:
        Chunk length of the pure-PyTorch scan, in time steps.

    Input and output: ``[B, L, d_model]``.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | Literal["auto"] = "auto",
        use_cuda_kernel: bool | Literal["auto"] = "auto",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        super().__init__()
        if use_cuda_kernel not in ("auto", True, False):
            raise ValueError(
                f"use_cuda_kernel must be 'auto', True or False, got {use_cuda_kernel}"
            )
        if use_cuda_kernel is True and not mamba_ssm_available():
            raise RuntimeError("use_cuda_kernel=True but mamba_ssm's selective_scan_fn is missing")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got {dt_min} and {dt_max}")
        self.d_model = d_model
        self.d_state = d_state
        self.d_conv = d_conv
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.use_cuda_kernel = use_cuda_kernel
        self.chunk_size = chunk_size

        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias)
        self.conv1d = nn.Conv1d(
            self.d_inner,
            self.d_inner,
            kernel_size=d_conv,
            groups=self.d_inner,
            padding=d_conv - 1,
            bias=conv_bias,
        )
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)
        # S4D-real initialisation: A = -(1..N) for every channel, stored as log(-A)
        a = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        # optimisers that honour it keep weight decay off the SSM parameters (as mamba-ssm)
        self.A_log._no_weight_decay = True  # type: ignore[attr-defined]
        self.D._no_weight_decay = True  # type: ignore[attr-defined]
        self._init_dt(dt_min, dt_max, dt_init_floor)

    def _init_dt(self, dt_min: float, dt_max: float, floor: float) -> None:
        """mamba-ssm's step-size init: ``softplus(dt_proj.bias)`` log-uniform in [dt_min, dt_max]."""
        std = self.dt_rank**-0.5
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        log_dt = torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        dt = torch.exp(log_dt).clamp(min=floor)
        # inverse of softplus: dt + log(1 - exp(-dt))
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.dt_proj.bias._no_reinit = True  # type: ignore[attr-defined]

    def _use_kernel(self, x: torch.Tensor) -> bool:
        if self.use_cuda_kernel is False:
            return False
        if self.use_cuda_kernel is True and not x.is_cuda:
            raise RuntimeError("use_cuda_kernel=True needs a CUDA input tensor")
        if self.use_cuda_kernel == "auto" and torch.are_deterministic_algorithms_enabled():
            return False  # the fused backward is not run-to-run deterministic (atomicAdd)
        return x.is_cuda and mamba_ssm_available()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Mix ``[B, L, d_model]`` along time; returns ``[B, L, d_model]``."""
        if hidden_states.ndim != 3 or hidden_states.shape[-1] != self.d_model:
            raise ValueError(f"expected [B, L, {self.d_model}], got {tuple(hidden_states.shape)}")
        length = hidden_states.shape[1]
        xz = self.in_proj(hidden_states).transpose(1, 2)  # [B, 2*d_inner, L]
        x, z = xz.chunk(2, dim=1)
        x = F.silu(self.conv1d(x)[..., :length])  # drop the right padding: causal
        dt, b, c = torch.split(
            self.x_proj(x.transpose(1, 2)), [self.dt_rank, self.d_state, self.d_state], dim=-1
        )
        dt = (dt @ self.dt_proj.weight.t()).transpose(1, 2)  # bias goes in as delta_bias
        b = b.transpose(1, 2).contiguous()
        c = c.transpose(1, 2).contiguous()
        a = -torch.exp(self.A_log.float())
        args = (x.contiguous(), dt.contiguous(), a, b, c, self.D.float())
        kwargs = {
            "z": z.contiguous(),
            "delta_bias": self.dt_proj.bias.float(),
            "delta_softplus": True,
        }
        if self._use_kernel(x):
            y = _cuda_selective_scan_fn()(*args, **kwargs)
        else:
            y = selective_scan(*args, **kwargs, chunk_size=self.chunk_size)
        return self.out_proj(y.transpose(1, 2))
