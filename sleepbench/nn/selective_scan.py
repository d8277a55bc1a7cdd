"""The selective scan of Mamba in pure PyTorch, in linear time (and the optional mamba-ssm kernel).

The selective scan (Gu & Dao, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces",
arXiv:2312.00752) runs the input-dependent recurrence, for every channel ``d`` and state ``n``::

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t
    y_t = <C_t, h_t> + D * u_t                     (then y_t * silu(z_t) when z is given)

:func:`selective_scan` computes it without a Python loop over time: the sequence is cut into chunks,
all chunks are scanned at once with a log-depth (Hillis-Steele) scan, and the states entering each
chunk are found by scanning the chunk end-states the same way (recursively). Work is
``O(L log chunk_size)`` = linear in the sequence length ``L`` for a fixed chunk size; only
multiplications by decays in (0, 1] and additions are used, so nothing overflows however long the
sequence. The backward pass is the same scan run in reverse inside a custom autograd function, so
autograd stores two ``[B, D, L, N]`` tensors, not one per scan level.

:func:`selective_scan_reference` is the step-by-step recurrence (a Python loop over time) used to
test it. Both follow the argument conventions of ``mamba_ssm``'s ``selective_scan_fn``; where
``mamba-ssm`` is installed and the input is on a CUDA device, :class:`MambaBlock` uses its fused
kernel instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "mamba_ssm_available",
    "selective_scan",
    "selective_scan_reference",
]

ScanOutput = torch.Tensor | tuple[torch.Tensor, torch.Tensor]

#: default chunk length of the pure-PyTorch scan, in time steps
DEFAULT_CHUNK_SIZE = 16


# --------------------------------------------------------------------------------------------
# mamba-ssm CUDA kernel (optional)
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _cuda_selective_scan_fn() -> Callable[..., ScanOutput] | None:
    """``mamba_ssm``'s fused ``selective_scan_fn``, or ``None`` when it cannot be imported."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    # a wheel built against another torch/CUDA fails with OSError/RuntimeError, not ImportError
    except (ImportError, OSError, RuntimeError):
        return None
    return selective_scan_fn


def mamba_ssm_available() -> bool:
    """Whether ``mamba_ssm.ops.selective_scan_interface.selective_scan_fn`` can be imported.

    The kernel also needs a CUDA tensor; :class:`MambaBlock` checks that per call.
    """
    return _cuda_selective_scan_fn() is not None


# --------------------------------------------------------------------------------------------
# linear recurrence h_t = a_t * h_{t-1} + b_t along dim -2
# --------------------------------------------------------------------------------------------


def _hillis_steele_(a: torch.Tensor, b: torch.Tensor) -> None:
    """In place: inclusive scan of ``(a, b)`` along dim -2 (``b`` -> states from zero, ``a`` -> the
    cumulative products of the decays). ``ceil(log2(T))`` passes over the data."""
    length = a.shape[-2]
    step = 1
    while step < length:
        # the right-hand sides are evaluated before the in-place writes, so every update reads
        # the values of the previous pass (b first: it needs the old a)
        b[..., step:, :] += a[..., step:, :] * b[..., :-step, :]
        a[..., step:, :] = a[..., step:, :] * a[..., :-step, :]
        step *= 2


def _linear_scan(a: torch.Tensor, b: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """States ``h_t = a_t * h_{t-1} + b_t`` (``h_{-1} = 0``) for ``a, b`` of shape ``[..., L, N]``.

    Chunks of ``chunk_size`` steps are scanned in parallel; the state entering each chunk comes
    from a (recursive) scan over the chunk end-states. No autograd (see :class:`_LinearScanFn`).
    """
    length, n_state = a.shape[-2], a.shape[-1]
    if length <= chunk_size:
        a, b = a.clone(), b.clone()
        _hillis_steele_(a, b)
        return b
    pad = (-length) % chunk_size
    if pad:
        # identity steps (decay 1, input 0) at the end leave every real state unchanged
        a = F.pad(a, (0, 0, 0, pad), value=1.0)
        b = F.pad(b, (0, 0, 0, pad), value=0.0)
    else:
        a, b = a.clone(), b.clone()
    lead = a.shape[:-2]
    n_chunks = (length + pad) // chunk_size
    a = a.reshape(*lead, n_chunks, chunk_size, n_state)
    b = b.reshape(*lead, n_chunks, chunk_size, n_state)
    _hillis_steele_(a, b)
    # state at the end of every chunk, then the one entering it (zero for the first chunk)
    ends = _linear_scan(a[..., -1, :], b[..., -1, :], chunk_size)
    carry = F.pad(ends[..., :-1, :], (0, 0, 1, 0))
    b += a * carry.unsqueeze(-2)
    return b.reshape(*lead, n_chunks * chunk_size, n_state)[..., :length, :]


class _LinearScanFn(torch.autograd.Function):
    """Autograd wrapper of :func:`_linear_scan`; the backward pass is a reverse scan.

    With ``G_t = dLoss/dh_t`` accumulated through time (``G_t = g_t + a_{t+1} G_{t+1}``), the
    gradients are ``dLoss/db_t = G_t`` and ``dLoss/da_t = G_t * h_{t-1}``.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, chunk_size: int) -> torch.Tensor:
        h = _linear_scan(a, b, chunk_size)
        ctx.save_for_backward(a, h)
        ctx.chunk_size = chunk_size
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        a, h = ctx.saved_tensors
        a_next = F.pad(a[..., 1:, :], (0, 0, 0, 1))
        grad_total = _linear_scan(
            a_next.flip(-2), grad_h.contiguous().flip(-2), ctx.chunk_size
        ).flip(-2)
        h_prev = F.pad(h[..., :-1, :], (0, 0, 1, 0))
        return grad_total * h_prev, grad_total, None


# --------------------------------------------------------------------------------------------
# selective scan
# --------------------------------------------------------------------------------------------


def _discretise(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    D: torch.Tensor | None,
    z: torch.Tensor | None,
    delta_bias: torch.Tensor | None,
    delta_softplus: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.dtype]:
    """Validate shapes; return ``exp(delta*A)`` and ``delta*B*u``, both ``[B, D, L, N]``, and the
    compute dtype (float32, or float64 for float64 input)."""
    if u.ndim != 3 or delta.shape != u.shape:
        raise ValueError(
            f"u and delta must both be [B, D, L], got {tuple(u.shape)} and {tuple(delta.shape)}"
        )
    batch, dim, length = u.shape
    if A.ndim != 2 or A.shape[0] != dim:
        raise ValueError(f"A must be [D={dim}, N], got {tuple(A.shape)}")
    n_state = A.shape[1]
    if A.is_complex():
        raise ValueError("complex A is not supported by the pure-PyTorch selective scan")
    if B.shape not in ((batch, n_state, length), (dim, n_state)):
        raise ValueError(f"B must be [B, N, L] or [D, N], got {tuple(B.shape)}")
    if D is not None and D.shape != (dim,):
        raise ValueError(f"D must be [D={dim}], got {tuple(D.shape)}")
    if z is not None and z.shape != u.shape:
        raise ValueError(f"z must be [B, D, L] like u, got {tuple(z.shape)}")
    if delta_bias is not None and delta_bias.shape != (dim,):
        raise ValueError(f"delta_bias must be [D={dim}], got {tuple(delta_bias.shape)}")

    # like the CUDA kernel: half-precision inputs are computed in float32
    dtype = torch.promote_types(u.dtype, torch.float32)
    delta = delta.to(dtype)
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    delta_a = torch.exp(delta.unsqueeze(-1) * A.to(dtype)[:, None, :])
    delta_u = (delta * u.to(dtype)).unsqueeze(-1)
    if B.ndim == 3:
        delta_b_u = delta_u * B.to(dtype).transpose(1, 2).unsqueeze(1)
    else:
        delta_b_u = delta_u * B.to(dtype)[:, None, :]
    return delta_a, delta_b_u, dtype


def _readout(
    states: torch.Tensor,
    u: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    z: torch.Tensor | None,
    dtype: torch.dtype,
    return_last_state: bool,
) -> ScanOutput:
    """``y = <C, h> (+ D*u) (* silu(z))`` from the states ``[B, D, L, N]``, cast to ``u.dtype``."""
    batch, dim, length = u.shape
    n_state = states.shape[-1]
    if C.shape not in ((batch, n_state, length), (dim, n_state)):
        raise ValueError(f"C must be [B, N, L] or [D, N], got {tuple(C.shape)}")
    # broadcast-multiply and sum rather than einsum: on CPU einsum turns this into a bmm batched
    # over (B, L) whose backward clones every one of the B*L slices
    c = C.to(dtype).transpose(1, 2).unsqueeze(1) if C.ndim == 3 else C.to(dtype)[:, None, :]
    y = (states * c).sum(dim=-1)
    if D is not None:
        y = y + u.to(dtype) * D.to(dtype)[:, None]
    if z is not None:
        y = y * F.silu(z.to(dtype))
    out = y.to(u.dtype)
    if return_last_state:
        return out, states[:, :, -1, :]
    return out


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> ScanOutput:
    """Selective scan in pure PyTorch, linear in the sequence length; differentiable.

    Arguments follow ``mamba_ssm.ops.selective_scan_interface.selective_scan_fn`` (real A only).

    Parameters
    ----------
    u:
        Input ``[B, D, L]`` (batch, channels, time steps).
    delta:
        Step sizes ``[B, D, L]``, before ``delta_bias`` and the optional softplus.
    A:
        State matrix ``[D, N]`` (negative for a stable recurrence).
    B, C:
        Input / output projections, input-dependent ``[B, N, L]`` or time-invariant ``[D, N]``.
    D:
        Skip connection ``[D]``; ``y += D * u``.
    z:
        Gate ``[B, D, L]``; ``y *= silu(z)``.
    delta_bias:
        ``[D]``, added to ``delta`` before the softplus.
    delta_softplus:
        Apply ``softplus`` to ``delta``.
    return_last_state:
        Also return the final state ``[B, D, N]``.
    chunk_size:
        Time steps scanned together; affects speed and memory only, never the result.

    Returns
    -------
    ``y`` ``[B, D, L]`` in ``u``'s dtype (computed in float32, or float64 for float64 input), and
    the last state ``[B, D, N]`` when ``return_last_state``.
    """
    if chunk_size < 2:
        # chunks of one step would recurse forever on their own end-states
        raise ValueError(f"chunk_size must be >= 2, got {chunk_size}")
    delta_a, delta_b_u, dtype = _discretise(u, delta, A, B, D, z, delta_bias, delta_softplus)
    states = _LinearScanFn.apply(delta_a, delta_b_u, chunk_size)
    return _readout(states, u, C, D, z, dtype, return_last_state)


def selective_scan_reference(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> ScanOutput:
    """Step-by-step recurrence (a Python loop over the ``L`` time steps) for testing.

    Same arguments, shapes and result as :func:`selective_scan`; ``chunk_size`` is ignored.
    """
    del chunk_size
    delta_a, delta_b_u, dtype = _discretise(u, delta, A, B, D, z, delta_bias, delta_softplus)
    state = delta_a.new_zeros(delta_a.shape[0], delta_a.shape[1], delta_a.shape[3])
    states = []
    for t in range(u.shape[-1]):
        state = delta_a[:, :, t] * state + delta_b_u[:, :, t]
        states.append(state)
    return _readout(torch.stack(states, dim=2), u, C, D, z, dtype, return_last_state)
