"""TinyUStaging: layer widths, parameter count, output shapes, attention placement, padding."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from sleepbench.nn.attention import CSJA1d, SqueezeExcitation1d
from sleepbench.tasks.sleep_edf.network import TinyUStaging, _ConvELUBN

TINY = {"complexity_factor": 1.0, "init_filters": 4}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def full_model() -> TinyUStaging:
    torch.manual_seed(0)
    return TinyUStaging(n_epochs=2)


def test_default_parameter_count_is_about_2_4_million(full_model: TinyUStaging) -> None:
    # Upstream configs record 2,379,231-2,419,898 parameters for the attention variants.
    assert abs(_n_params(full_model) - 2.4e6) / 2.4e6 < 0.10
    assert _n_params(TinyUStaging(n_epochs=1)) == _n_params(full_model)  # length-independent


def test_parameter_count_without_attention_matches_derived_2_37_million() -> None:
    plain = TinyUStaging(attention=None, dense_se_reduction=None, bottom_se_reduction=None)
    assert abs(_n_params(plain) - 2.37e6) / 2.37e6 < 0.01


def test_filter_widths_follow_sqrt_complexity_factor(full_model: TinyUStaging) -> None:
    encoder_widths = [level.convs[1].conv.out_channels for level in full_model.encoder]
    assert encoder_widths == [22, 45, 90, 181]
    assert full_model.bottom[1].conv.out_channels == 362
    decoder_widths = [level.convs[1].conv.out_channels for level in full_model.decoder]
    assert decoder_widths == [181, 90, 45, 22]
    assert [level.up_conv.conv.kernel_size[0] for level in full_model.decoder] == [4, 6, 8, 10]
    assert [level.pool.kernel_size for level in full_model.encoder] == [10, 8, 6, 4]
    assert full_model.dense[0].out_channels == 7


def test_encoder_convs_are_dilated_and_others_are_not(full_model: TinyUStaging) -> None:
    for level in full_model.encoder:
        assert {block.conv.dilation[0] for block in level.convs} == {2}
        assert {block.conv.kernel_size[0] for block in level.convs} == {5}
    assert {block.conv.dilation[0] for block in full_model.bottom[:2]} == {1}
    for level in full_model.decoder:
        assert {block.conv.dilation[0] for block in level.convs} == {1}


def test_attention_blocks_sit_where_upstream_puts_them(full_model: TinyUStaging) -> None:
    csja = full_model.encoder_attention
    assert isinstance(csja, CSJA1d) and csja.channels == 22 and csja.combine == "multiply"
    bottom_se = full_model.bottom[2]
    assert isinstance(bottom_se, SqueezeExcitation1d)
    assert (bottom_se.channels, bottom_se.reduction) == (362, 8)
    dense_se = full_model.dense[2]
    assert isinstance(dense_se, SqueezeExcitation1d)
    assert (dense_se.channels, dense_se.reduction) == (7, 1)
    assert isinstance(full_model.dense[1], nn.Tanh)


def test_full_model_forward_backward(full_model: TinyUStaging) -> None:
    x = torch.randn(2, 2, full_model.n_times)
    assert full_model.n_times == 2 * 3840
    logits = full_model.train()(x)
    assert logits.shape == (2, 5, 2)
    assert torch.isfinite(logits).all()
    # Logits, not probabilities: rows need not sum to one.
    assert not torch.allclose(logits.sum(dim=1), torch.ones(2, 2))
    logits.logsumexp(dim=1).mean().backward()
    grads = [p.grad for p in full_model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    full_model.zero_grad()


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"attention": "se"},
        {"attention": None, "dense_se_reduction": None, "bottom_se_reduction": None},
        {"csja_combine": "add"},
        {"csja_channel_attention": False},
    ],
    ids=["csja", "se", "plain", "csja-add", "cbam2se"],
)
def test_tiny_variants_output_one_logit_vector_per_epoch(options: dict) -> None:
    model = TinyUStaging(n_epochs=3, **TINY, **options).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 2, 3 * 3840))
    assert logits.shape == (2, 5, 3)
    assert torch.isfinite(logits).all()


def test_forward_accepts_other_whole_numbers_of_epochs() -> None:
    model = TinyUStaging(n_epochs=1, **TINY).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 2, 3840)).shape == (1, 5, 1)
        assert model(torch.randn(1, 2, 4 * 3840)).shape == (1, 5, 4)


def test_other_sampling_rate_and_epoch_length() -> None:
    # 100 Hz x 30 s = 3000 samples per epoch; 2 epochs = 6000 samples >= 1920.
    model = TinyUStaging(n_epochs=2, sfreq=100.0, **TINY).eval()
    assert model.epoch_samples == 3000
    with torch.no_grad():
        assert model(torch.randn(1, 2, 6000)).shape == (1, 5, 2)


def test_eval_output_is_independent_of_batch_companions() -> None:
    model = TinyUStaging(n_epochs=2, **TINY).eval()
    x = torch.randn(3, 2, 2 * 3840)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[:1], model(x[:1]), rtol=1e-4, atol=1e-5)


def test_each_epoch_logit_depends_on_the_signal() -> None:
    model = TinyUStaging(n_epochs=2, **TINY).eval()
    x = torch.randn(1, 2, 2 * 3840)
    changed = x.clone()
    changed[..., :3840] += 3 * torch.randn(1, 2, 3840)
    with torch.no_grad():
        a, b = model(x), model(changed)
    assert not torch.allclose(a[..., 0], b[..., 0])


def test_input_validation() -> None:
    model = TinyUStaging(n_epochs=1, **TINY)
    with pytest.raises(ValueError, match="multiple of 3840"):
        model(torch.randn(1, 2, 3840 + 10))
    with pytest.raises(ValueError, match=r"\[B, 2, L\]"):
        model(torch.randn(1, 3, 3840))
    with pytest.raises(ValueError, match="pools"):
        TinyUStaging(depth=3)
    with pytest.raises(ValueError, match="attention"):
        TinyUStaging(attention="cbam", **TINY)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="whole number"):
        TinyUStaging(sfreq=128.5, epoch_s=1.0)
    with pytest.raises(ValueError, match="survive"):
        TinyUStaging(n_epochs=1, sfreq=10.0, epoch_s=30.0)


@pytest.mark.parametrize(("kernel_size", "dilation"), [(5, 2), (4, 1), (8, 1), (5, 1)])
def test_conv_padding_matches_torch_same_padding(kernel_size: int, dilation: int) -> None:
    block = _ConvELUBN(3, 4, kernel_size, dilation).eval()
    reference = nn.Conv1d(3, 4, kernel_size, dilation=dilation, padding="same")
    reference.load_state_dict(block.conv.state_dict())
    x = torch.randn(2, 3, 37)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch warns about even 'same' kernels
        expected = block.norm(block.act(reference(x)))
        torch.testing.assert_close(block(x), expected)
