"""Selective scan against the step-by-step recurrence, and the Mamba layer built on it."""

from __future__ import annotations

import math
import types

import pytest
import torch
import torch.nn.functional as F

from sleepbench.nn import mamba
from sleepbench.nn.mamba import (
    MambaBlock,
    mamba_ssm_available,
    selective_scan,
    selective_scan_reference,
)


def _scan_inputs(
    batch: int = 2,
    dim: int = 3,
    n_state: int = 4,
    length: int = 37,
    dtype: torch.dtype = torch.float64,
    variable_bc: bool = True,
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float64).to(device, dtype)

    bc_shape = (batch, n_state, length) if variable_bc else (dim, n_state)
    return {
        "u": randn(batch, dim, length),
        "delta": randn(batch, dim, length),
        "A": -torch.rand(dim, n_state, generator=gen, dtype=torch.float64).to(device, dtype) * 2,
        "B": randn(*bc_shape),
        "C": randn(*bc_shape),
        "D": randn(dim),
        "z": randn(batch, dim, length),
        "delta_bias": randn(dim),
    }


OPTION_SETS = [
    {},
    {"D": True},
    {"z": True},
    {"delta_bias": True, "delta_softplus": True},
    {"D": True, "z": True, "delta_bias": True, "delta_softplus": True},
]


def _select(inputs: dict[str, torch.Tensor], options: dict[str, bool]) -> dict:
    kwargs = {k: inputs[k] for k in ("u", "delta", "A", "B", "C")}
    for name in ("D", "z", "delta_bias"):
        if options.get(name):
            kwargs[name] = inputs[name]
    if not options.get("delta_softplus"):
        # keep the step sizes positive so that exp(delta * A) is a decay
        kwargs["delta"] = kwargs["delta"].abs()
    kwargs["delta_softplus"] = options.get("delta_softplus", False)
    return kwargs


@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: "+".join(o) or "plain")
@pytest.mark.parametrize("chunk_size", [2, 3, 8, 16, 64])
@pytest.mark.parametrize("length", [1, 7, 37, 100])
def test_scan_equals_recurrence(options: dict, chunk_size: int, length: int) -> None:
    kwargs = _select(_scan_inputs(length=length), options)
    expected = selective_scan_reference(**kwargs)
    got = selective_scan(**kwargs, chunk_size=chunk_size)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("chunk_size", [2, 5, 16])
def test_time_invariant_b_c_and_last_state(chunk_size: int) -> None:
    kwargs = _select(_scan_inputs(length=29, variable_bc=False), OPTION_SETS[-1])
    y_ref, state_ref = selective_scan_reference(**kwargs, return_last_state=True)
    y, state = selective_scan(**kwargs, return_last_state=True, chunk_size=chunk_size)
    assert state.shape == (2, 3, 4)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(state, state_ref, rtol=1e-10, atol=1e-10)


def test_gradients_equal_recurrence_gradients() -> None:
    inputs = _scan_inputs(length=23, seed=1)
    names = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias"]

    def grads(fn) -> list[torch.Tensor]:
        leaves = {k: inputs[k].clone().requires_grad_() for k in names}
        out = fn(**leaves, delta_softplus=True)
        weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
        (out * weights).sum().backward()
        return [leaves[k].grad for k in names]

    expected = grads(selective_scan_reference)
    got = grads(lambda **kw: selective_scan(**kw, chunk_size=4))
    for name, g, e in zip(names, got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-9, atol=1e-9, msg=f"gradient of {name}")


def test_float32_long_sequence_with_strong_decay_stays_finite() -> None:
    # total decay over a chunk far below float32's range: a log-space cumsum would overflow
    kwargs = _select(_scan_inputs(batch=1, dim=4, length=1500, dtype=torch.float32, seed=3), {})
    kwargs["delta"] = kwargs["delta"] * 5
    kwargs["A"] = kwargs["A"] * 20
    got = selective_scan(**kwargs, chunk_size=64)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, selective_scan_reference(**kwargs), rtol=1e-4, atol=1e-4)


def test_half_precision_input_is_computed_in_float32() -> None:
    kwargs = _select(_scan_inputs(length=40, dtype=torch.float32, seed=4), OPTION_SETS[-1])
    kwargs["u"] = kwargs["u"].to(torch.bfloat16)
    got = selective_scan(**kwargs)
    assert got.dtype == torch.bfloat16
    # the float32 recurrence rounded once to bfloat16: the scan added no bfloat16 rounding
    expected = selective_scan_reference(**kwargs)
    torch.testing.assert_close(got, expected, rtol=1e-2, atol=1e-2)


def test_bad_shapes_and_chunk_size_raise() -> None:
    kwargs = _select(_scan_inputs(), {})
    with pytest.raises(ValueError, match="A must be"):
        selective_scan(**{**kwargs, "A": kwargs["A"][:2]})
    with pytest.raises(ValueError, match="B must be"):
        selective_scan(**{**kwargs, "B": kwargs["B"][..., :5]})
    with pytest.raises(ValueError, match="C must be"):
        selective_scan(**{**kwargs, "C": kwargs["C"].transpose(1, 2)})
    with pytest.raises(ValueError, match="chunk_size"):
        selective_scan(**kwargs, chunk_size=1)


# ----------------------------------------------------------------------------------------------
# MambaBlock
# ----------------------------------------------------------------------------------------------


def test_block_shape_and_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    block = MambaBlock(16, d_state=8, d_conv=4, expand=2, use_cuda_kernel=False)
    x = torch.randn(3, 50, 16, requires_grad=True)
    y = block(x)
    assert y.shape == x.shape
    y.pow(2).mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, param in block.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_block_structure_and_initialisation() -> None:
    block = MambaBlock(40, d_state=16, d_conv=4, expand=2, dt_min=0.001, dt_max=0.1)
    assert block.d_inner == 80 and block.dt_rank == math.ceil(40 / 16)
    assert block.in_proj.weight.shape == (160, 40)
    assert block.conv1d.groups == 80 and block.conv1d.kernel_size == (4,)
    assert block.x_proj.weight.shape == (block.dt_rank + 32, 80)
    assert block.dt_proj.weight.shape == (80, block.dt_rank)
    assert block.out_proj.weight.shape == (40, 80)
    torch.testing.assert_close(-torch.exp(block.A_log[0]), -torch.arange(1.0, 17.0))
    dt = F.softplus(block.dt_proj.bias.detach())
    assert dt.min() >= 0.001 * (1 - 1e-5) and dt.max() <= 0.1 * (1 + 1e-5)
    torch.testing.assert_close(block.D.detach(), torch.ones(80))


def test_block_is_causal() -> None:
    torch.manual_seed(1)
    block = MambaBlock(8, d_state=4, use_cuda_kernel=False).eval()
    x = torch.randn(2, 30, 8)
    changed = x.clone()
    changed[:, 20:] = torch.randn(2, 10, 8)
    with torch.no_grad():
        y, y_changed = block(x), block(changed)
    torch.testing.assert_close(y[:, :20], y_changed[:, :20])
    assert not torch.allclose(y[:, 20:], y_changed[:, 20:])


def test_block_pure_scan_equals_recurrence(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(2)
    block = MambaBlock(8, d_state=4, use_cuda_kernel=False, chunk_size=4).double()
    x = torch.randn(2, 45, 8, dtype=torch.float64)
    with torch.no_grad():
        y = block(x)
        monkeypatch.setattr(mamba, "selective_scan", selective_scan_reference)
        y_ref = block(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)


def test_block_rejects_wrong_input() -> None:
    block = MambaBlock(8)
    with pytest.raises(ValueError, match=r"\[B, L, 8\]"):
        block(torch.randn(2, 8, 30, 1))
    with pytest.raises(ValueError, match="use_cuda_kernel"):
        MambaBlock(8, use_cuda_kernel="yes")  # type: ignore[arg-type]


@pytest.mark.skipif(mamba_ssm_available(), reason="mamba-ssm is installed")
def test_requiring_the_kernel_without_mamba_ssm_raises() -> None:
    with pytest.raises(RuntimeError, match="mamba_ssm"):
        MambaBlock(8, use_cuda_kernel=True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.skipif(not mamba_ssm_available(), reason="mamba-ssm (CUDA kernels) not importable")
def test_cuda_kernel_matches_pure_scan() -> None:
    kernel = mamba._cuda_selective_scan_fn()
    kwargs = _select(
        _scan_inputs(batch=2, dim=64, n_state=16, length=450, dtype=torch.float32, device="cuda"),
        OPTION_SETS[-1],
    )
    expected = selective_scan(**kwargs)
    got = kernel(**kwargs)
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3)

    torch.manual_seed(3)
    block = MambaBlock(32, use_cuda_kernel="auto").cuda()
    x = torch.randn(2, 100, 32, device="cuda")
    with torch.no_grad():
        fused = block(x)
        block.use_cuda_kernel = False
        pure = block(x)
    torch.testing.assert_close(fused, pure, rtol=1e-3, atol=1e-3)


def test_auto_kernel_choice_keeps_deterministic_runs_on_the_pure_scan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """mamba-ssm's fused backward accumulates dB/dC with atomicAdd (no error under
    ``torch.use_deterministic_algorithms``), so "auto" must not pick it in deterministic runs."""
    monkeypatch.setattr(mamba, "mamba_ssm_available", lambda: True)
    block = MambaBlock(8, d_state=4, use_cuda_kernel="auto")
    on_cuda = types.SimpleNamespace(is_cuda=True)  # _use_kernel only looks at the device
    before = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(False)
        assert block._use_kernel(on_cuda) is True
        torch.use_deterministic_algorithms(True)
        assert block._use_kernel(on_cuda) is False
        assert block._use_kernel(types.SimpleNamespace(is_cuda=False)) is False
    finally:
        torch.use_deterministic_algorithms(before)
