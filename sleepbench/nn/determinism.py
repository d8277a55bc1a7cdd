"""Make CUDA-only determinism failures visible on the CPU.

``trainer.deterministic: true`` (the default) makes Lightning call
``torch.use_deterministic_algorithms(True)``. On CUDA, a handful of kernels then raise
``RuntimeError: ... does not have a deterministic implementation`` — but only on CUDA, so a CPU
test suite never sees them and a GPU run trains for hours and then loses its test results.

:class:`CudaNondeterminismGuard` is a :class:`~torch.utils._python_dispatch.TorchDispatchMode`
that raises :class:`CudaNondeterministicOpError` when an aten op (forward or backward, after
autograd and composite decomposition — i.e. the kernels that would actually run) is one that
throws on CUDA in deterministic mode. Inside it, CPU code behaves as a deterministic CUDA run
would.

The op list follows the "will throw a RuntimeError" list of
``torch.use_deterministic_algorithms`` (torch 2.11) and PyTorch's
``test_nondeterministic_alert_*`` tests, with one exception: floating-point ``cumsum`` has had a
deterministic CUDA path since torch 2.6 (pytorch#136224; torchmetrics' ``_cumsum`` relies on it),
although the docstring still lists it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["CUDA_NONDETERMINISTIC_OPS", "CudaNondeterministicOpError", "CudaNondeterminismGuard"]


class CudaNondeterministicOpError(RuntimeError):
    """An op that raises on CUDA under ``torch.use_deterministic_algorithms(True)`` was called."""


def _always(args: dict[str, Any]) -> bool:
    return True


def _given(name: str) -> Callable[[dict[str, Any]], bool]:
    def check(args: dict[str, Any]) -> bool:
        return args.get(name) is not None

    return check


def _equals(name: str, value: Any) -> Callable[[dict[str, Any]], bool]:
    def check(args: dict[str, Any]) -> bool:
        return args.get(name) == value

    return check


def _with_indices(args: dict[str, Any]) -> bool:
    # median(x) (no dim) returns only a value and has a deterministic kernel
    return "dim" in args


_EMBEDDING_BAG_MAX = 2  # aten's mode code for mode="max"

#: aten op name (overload packet) -> predicate on its bound arguments: True = raises on CUDA
CUDA_NONDETERMINISTIC_OPS: dict[str, Callable[[dict[str, Any]], bool]] = {
    # forward ops
    "bincount": _given("weights"),
    "histc": _always,
    "kthvalue": _always,
    "median": _with_indices,
    "nanmedian": _with_indices,
    "nll_loss2d_forward": _always,  # cross_entropy / nll_loss on [B, C, d1, ...] inputs
    "put": _always,
    "put_": _always,
    "scatter_reduce": _equals("reduce", "prod"),
    "scatter_reduce_": _equals("reduce", "prod"),
    "max_unpool2d": _always,
    "max_unpool3d": _always,
    # backward ops (raise when the forward op is differentiated)
    "avg_pool3d_backward": _always,
    "_adaptive_avg_pool2d_backward": _always,  # AdaptiveAvgPool1d/2d with output size > 1
    "_adaptive_avg_pool3d_backward": _always,
    "max_pool3d_with_indices_backward": _always,
    "adaptive_max_pool2d_backward": _always,  # AdaptiveMaxPool1d/2d
    "fractional_max_pool2d_backward": _always,
    "fractional_max_pool3d_backward": _always,
    "upsample_linear1d_backward": _always,  # interpolate(mode="linear")
    "upsample_bilinear2d_backward": _always,
    "_upsample_bilinear2d_aa_backward": _always,
    "upsample_bicubic2d_backward": _always,
    "_upsample_bicubic2d_aa_backward": _always,
    "upsample_trilinear3d_backward": _always,
    "reflection_pad1d_backward": _always,  # F.pad(mode="reflect"), ReflectionPad*
    "reflection_pad2d_backward": _always,
    "reflection_pad3d_backward": _always,
    "_ctc_loss_backward": _always,
    "grid_sampler_2d_backward": _always,
    "grid_sampler_3d_backward": _always,
    "_embedding_bag_backward": _equals("mode", _EMBEDDING_BAG_MAX),
    "_embedding_bag_dense_backward": _equals("mode", _EMBEDDING_BAG_MAX),
}


def _bound_args(func: torch._ops.OpOverload, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The op's arguments by schema name (positional and keyword alike)."""
    names = [a.name for a in func._schema.arguments]
    bound = dict(zip(names, args))
    bound.update(kwargs)
    return bound


class CudaNondeterminismGuard(TorchDispatchMode):
    """Context manager: raise on ops that have no deterministic CUDA kernel, whatever the device.

    Usage::

        with CudaNondeterminismGuard():
            loss = loss_fn(net(x), y)
            loss.backward()           # backward ops are checked too

    Args:
        record: when True, every op name seen is added to :attr:`seen` (for tests and audits).

    Raises:
        CudaNondeterministicOpError: naming the aten op, on the first offending call.
    """

    def __init__(self, record: bool = False) -> None:
        super().__init__()
        self.record = record
        self.seen: set[str] = set()

    def __torch_dispatch__(
        self,
        func: torch._ops.OpOverload,
        types: Any,
        args: tuple = (),
        kwargs: dict | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if self.record:
            self.seen.add(name)
        check = CUDA_NONDETERMINISTIC_OPS.get(name)
        if check is not None and check(_bound_args(func, args, kwargs)):
            raise CudaNondeterministicOpError(
                f"aten.{name} ({func}) has no deterministic CUDA implementation: with "
                "trainer.deterministic=true it raises on a GPU. Use a deterministic formulation."
            )
        return func(*args, **kwargs)
