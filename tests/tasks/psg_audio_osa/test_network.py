"""The dual-stream CRNN: size, shapes, the energy pooling, determinism and ONNX export."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sleepbench.nn.determinism import CudaNondeterminismGuard
from sleepbench.tasks.psg_audio_osa.network import (
    SIZES,
    DualStreamCRNN,
    inference_ms_per_minute,
)


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def table_count(channels, energy_dim, d_model, n_mels=128, se_reduction=16, layers=2) -> int:
    """Parameters from the SPECS §1.3 layer table, by arithmetic."""
    total, c_in = 0, 1
    for c in channels:
        total += c_in * c * 9 + c + 2 * c  # conv + bias + BN affine
        c_in = c
    total += 2 * c_in * (c_in // se_reduction)  # bias-free SE linears
    total += (energy_dim + energy_dim) + (energy_dim * energy_dim + energy_dim) + 2 * energy_dim
    fused_in = c_in * n_mels // 16 + energy_dim
    total += fused_in * d_model + d_model + 2 * d_model
    h = d_model // 2
    # every layer's input is d_model wide (the fusion output, then 2 directions x h)
    total += layers * 2 * (4 * h * (d_model + h) + 8 * h)
    return total + d_model * 3 + 3


def test_paper_size_has_the_published_parameter_count() -> None:
    net = DualStreamCRNN(size="paper")
    assert n_params(net) == 1_734_147
    s = SIZES["paper"]
    assert n_params(net) == table_count(s.channels, s.energy_dim, s.d_model)


def test_small_size_is_the_same_structure_smaller() -> None:
    s = SIZES["small"]
    small = n_params(DualStreamCRNN(size="small"))
    assert small == table_count(s.channels, s.energy_dim, s.d_model)
    assert small < n_params(DualStreamCRNN(size="paper")) / 10


@pytest.mark.parametrize("t", [6000, 808, 803])
def test_output_shape(t: int) -> None:
    net = DualStreamCRNN(size="small").eval()
    with torch.no_grad():
        out = net(torch.randn(2, 129, t))
    assert out.shape == (2, t // 8, 3)


def test_input_shape_is_checked() -> None:
    with pytest.raises(ValueError, match="129"):
        DualStreamCRNN(size="small")(torch.randn(2, 128, 800))


@pytest.mark.parametrize("t", [6000, 803])
def test_energy_pooling_equals_adaptive_average_pooling(t: int) -> None:
    energy = torch.randn(3, t, dtype=torch.float64)
    got = DualStreamCRNN.pool_energy(energy, t // 8)
    expected = F.adaptive_avg_pool1d(energy[:, None], t // 8)[:, 0]
    torch.testing.assert_close(got, expected)


def test_forward_equals_the_upstream_two_input_forward() -> None:
    """Re-statement of CRNN_OSA ``SleepBiLSTM_Energy.forward(mel [B,1,128,T], energy [B,T])``."""
    torch.manual_seed(0)
    net = DualStreamCRNN(size="small").eval()
    x = torch.randn(2, 129, 800)
    mel, energy = x[:, None, :128], x[:, 128]
    with torch.no_grad():
        f = net.cnn(mel)
        b, c, fr, t = f.shape
        f = f.permute(0, 3, 1, 2).reshape(b, t, c * fr)
        e = F.adaptive_avg_pool1d(energy.unsqueeze(1), t).permute(0, 2, 1)
        z = net.proj_norm(net.fusion_proj(torch.cat([f, net.energy_proj(e)], dim=-1)))
        expected = net.classifier(net.rnn(z)[0])
        torch.testing.assert_close(net(x), expected)


def test_both_streams_reach_the_output() -> None:
    torch.manual_seed(0)
    net = DualStreamCRNN(size="small").eval()
    x = torch.randn(1, 129, 800)
    with torch.no_grad():
        base = net(x)
        e = x.clone()
        e[:, 128] += 1.0
        m = x.clone()
        m[:, :128] += torch.randn(1, 128, 800)
        assert not torch.allclose(net(e), base)
        assert not torch.allclose(net(m), base)


def test_training_step_has_deterministic_cuda_kernels_only() -> None:
    """No op of forward + backward at 6000 frames lacks a deterministic CUDA kernel."""
    net = DualStreamCRNN(size="small")
    x = torch.randn(2, 129, 6000)
    with CudaNondeterminismGuard(record=True) as guard:
        net(x).square().mean().backward()
    assert "_adaptive_avg_pool2d_backward" not in guard.seen


def test_inference_ms_per_minute_is_positive() -> None:
    ms = inference_ms_per_minute("small", repeats=1)
    assert math.isfinite(ms) and ms > 0


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.filterwarnings("ignore:Exporting a model to ONNX with a batch_size")
def test_onnx_export_round_trips_with_a_dynamic_batch(tmp_path) -> None:
    ort = pytest.importorskip(
        "onnxruntime", reason="onnxruntime not installed (not a sleepbench dependency)"
    )
    pytest.importorskip("onnx", reason="onnx not installed (not a sleepbench dependency)")
    torch.manual_seed(0)
    net = DualStreamCRNN(size="small").eval()
    path = tmp_path / "crnn.onnx"
    torch.onnx.export(
        net,
        (torch.randn(2, 129, 6000),),
        str(path),
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
        dynamo=False,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = torch.randn(batch, 129, 6000)
        with torch.no_grad():
            expected = net(x).numpy()
        (got,) = session.run(None, {"x": x.numpy()})
        assert got.shape == (batch, 750, 3)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
