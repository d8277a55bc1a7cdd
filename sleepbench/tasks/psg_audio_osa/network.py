"""Dual-stream CRNN of the psg_audio_osa task: log-mel CNN + energy MLP, fused, BiLSTM, per-frame head.

A plain ``nn.Module`` (no Lightning), exportable to ONNX with one input. Layer for layer it is the
``SleepBiLSTM_Energy`` of the official code (EntXuCCMU/CRNN_OSA ``model.py``; SPECS §1.3), with two
changes that leave the function unchanged:

* the mel spectrogram and the energy profile arrive stacked in one tensor ``[B, n_mels + 1, T]``
  (the contract's dataset item), so an exported graph has a single input;
* the energy profile is pooled to the CNN's frame rate by a mean over blocks of 8 frames, which
  *is* ``adaptive_avg_pool1d(T -> T // 8)`` when ``T`` is a multiple of 8 (60-s windows: 6000 ->
  750), but exports to plain ONNX ops and has a deterministic CUDA backward (adaptive average
  pooling's has none; see :mod:`sleepbench.nn.determinism`). Other lengths fall back to adaptive
  pooling, as upstream.

References
----------
Xu et al., "Fine-Grained and Lightweight OSA Detection: A CRNN-Based Model for Precise Temporal
Localization of Respiratory Events in Sleep Audio", *Diagnostics* 2026, 16(4), 577,
doi:10.3390/diagnostics16040577. Code: github.com/EntXuCCMU/CRNN_OSA.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sleepbench.nn.attention import SqueezeExcitation2d

__all__ = ["SIZES", "CRNNSize", "DualStreamCRNN", "inference_ms_per_minute"]

#: mel frames per output frame: three 2 x 2 max-pools in time (10 ms -> 80 ms)
TIME_REDUCTION = 8
#: mel bands per CNN feature row: four 2 x max-pools in frequency
FREQ_REDUCTION = 16


@dataclass(frozen=True)
class CRNNSize:
    """Widths of :class:`DualStreamCRNN`.

    Args:
        channels: output channels of the four conv blocks.
        energy_dim: width of the energy branch's two linears.
        d_model: fusion width = BiLSTM output width (hidden ``d_model // 2`` per direction).
        rnn_layers: stacked BiLSTM layers.
        se_reduction: bottleneck ratio of the squeeze-excitation block.
        rnn_dropout: dropout between BiLSTM layers (0 with one layer).
        head_dropout: dropout before the classifier.
    """

    channels: tuple[int, int, int, int] = (32, 64, 128, 256)
    energy_dim: int = 64
    d_model: int = 256
    rnn_layers: int = 2
    se_reduction: int = 16
    rnn_dropout: float = 0.2
    head_dropout: float = 0.1


#: ``paper``: the published network (1,734,147 parameters); ``small``: a CPU-sized variant with
#: the same structure for synthetic runs and tests.
SIZES: dict[str, CRNNSize] = {
    "paper": CRNNSize(),
    "small": CRNNSize(channels=(8, 16, 32, 64), energy_dim=16, d_model=64),
}


def _conv_block(c_in: int, c_out: int, pool: tuple[int, int]) -> nn.Sequential:
    """Conv 3 x 3 (pad 1) -> BatchNorm -> ReLU -> MaxPool ``pool`` (frequency, time)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.MaxPool2d(pool),
    )


class DualStreamCRNN(nn.Module):
    """Dual-stream CRNN for frame-wise apnea / hypopnea detection in sleep audio.

    Stream 1: four VGG-style conv blocks over the log-mel spectrogram (max-pool 2 x 2 three times,
    then frequency only) and a squeeze-excitation block; the ``C x F`` map of each output frame
    is flattened (channel-major, as upstream). Stream 2: the energy profile pooled to the same
    frame rate, ``Linear(1, E) -> ReLU -> Linear(E, E) -> LayerNorm``. Both are concatenated,
    projected by ``Linear -> LayerNorm`` to ``d_model``, passed through a BiLSTM and classified
    per frame after dropout.

    Args:
        n_outputs: classes per frame (3: normal, hypopnea, apnea).
        n_mels: mel bands (a multiple of 16; 128 in the paper).
        size: a :data:`SIZES` name or a :class:`CRNNSize`.

    Input:
        ``x`` float ``[B, n_mels + 1, T]``: rows ``0 .. n_mels - 1`` the (window-normalised) log-mel
        spectrogram at 100 frames/s, row ``n_mels`` the energy profile. ``T >= 8``.

    Output:
        Logits ``[B, T // 8, n_outputs]``, one row per 80-ms frame.
    """

    def __init__(self, n_outputs: int = 3, n_mels: int = 128, size: str | CRNNSize = "paper"):
        super().__init__()
        if n_mels % FREQ_REDUCTION:
            raise ValueError(f"n_mels must be a multiple of {FREQ_REDUCTION}, got {n_mels}")
        s = SIZES[size] if isinstance(size, str) else size
        if s.d_model % 2:
            raise ValueError(f"d_model must be even (two LSTM directions), got {s.d_model}")
        self.n_mels = n_mels
        self.size = s
        c1, c2, c3, c4 = s.channels
        self.cnn = nn.Sequential(
            _conv_block(1, c1, (2, 2)),
            _conv_block(c1, c2, (2, 2)),
            _conv_block(c2, c3, (2, 2)),
            _conv_block(c3, c4, (2, 1)),  # frequency only: keep 80-ms time resolution
            SqueezeExcitation2d(c4, s.se_reduction, bias=False),
        )
        # NHWC conv weights: oneDNN (CPU) and cuDNN then run the conv stack channels-last, the
        # same function in less time (inference per minute: benchmarks/bench_psg_audio.py);
        # .to(device) and load_state_dict keep the layout
        self.cnn.to(memory_format=torch.channels_last)
        cnn_dim = c4 * (n_mels // FREQ_REDUCTION)
        self.energy_proj = nn.Sequential(
            nn.Linear(1, s.energy_dim),
            nn.ReLU(),
            nn.Linear(s.energy_dim, s.energy_dim),
            nn.LayerNorm(s.energy_dim),
        )
        self.fusion_proj = nn.Linear(cnn_dim + s.energy_dim, s.d_model)
        self.proj_norm = nn.LayerNorm(s.d_model)
        self.rnn = nn.LSTM(
            input_size=s.d_model,
            hidden_size=s.d_model // 2,
            num_layers=s.rnn_layers,
            batch_first=True,
            bidirectional=True,
            dropout=s.rnn_dropout if s.rnn_layers > 1 else 0.0,
        )
        self.head_dropout = nn.Dropout(s.head_dropout)
        self.classifier = nn.Linear(s.d_model, n_outputs)

    @staticmethod
    def pool_energy(energy: torch.Tensor, n_frames: int) -> torch.Tensor:
        """Energy ``[B, T]`` averaged to ``[B, n_frames]`` (= ``adaptive_avg_pool1d``)."""
        t = energy.shape[-1]
        if t == n_frames * TIME_REDUCTION:
            # equal blocks: a reshape-mean, exact and deterministic on every backend
            return energy.reshape(energy.shape[0], n_frames, TIME_REDUCTION).mean(dim=-1)
        return F.adaptive_avg_pool1d(energy[:, None, :], n_frames)[:, 0, :]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame logits ``[B, T // 8, n_outputs]`` of ``x`` ``[B, n_mels + 1, T]``."""
        if x.ndim != 3 or x.shape[1] != self.n_mels + 1:
            raise ValueError(f"expected x [B, {self.n_mels + 1}, T], got {tuple(x.shape)}")
        mel, energy = x[:, None, : self.n_mels, :], x[:, self.n_mels, :]
        feat = self.cnn(mel.contiguous(memory_format=torch.channels_last))  # [B, C, F', T']
        b, c, f, t = feat.shape
        feat = feat.permute(0, 3, 1, 2).reshape(b, t, c * f)
        e = self.energy_proj(self.pool_energy(energy, t)[..., None])  # [B, T', E]
        fused = self.proj_norm(self.fusion_proj(torch.cat([feat, e], dim=-1)))
        out, _ = self.rnn(fused)
        return self.classifier(self.head_dropout(out))


def inference_ms_per_minute(
    size: str = "paper",
    device: str = "cpu",
    batch: int = 1,
    repeats: int = 3,
    window_s: float = 60.0,
) -> float:
    """Forward-pass milliseconds per minute of audio (eval mode, best of ``repeats``).

    The paper reports 11.60 ms per minute on an RTX 5070 Ti (SPECS §1.3). Input: ``batch``
    random 60-s windows (6000 mel frames + energy). Uses the current torch thread settings.

    Args:
        size: :data:`SIZES` name.
        device: ``"cpu"`` or ``"cuda"``.
        batch: windows per forward pass.
        repeats: timed passes after one warm-up; the fastest is kept.
        window_s: window length in seconds (100 mel frames per second).

    Returns:
        Milliseconds of forward pass per minute of audio.
    """
    net = DualStreamCRNN(size=size).to(device).eval()
    x = torch.randn(batch, net.n_mels + 1, round(window_s * 100), device=device)
    best = float("inf")
    with torch.inference_mode():
        net(x)  # warm-up (allocations, cuDNN plans)
        for _ in range(repeats):
            t0 = time.perf_counter()
            net(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
    return 1000.0 * best / (batch * window_s / 60.0)
