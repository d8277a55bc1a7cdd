"""LSRM / HTS-AT front end (SPECS §4.2): log-mel in dB, time-major, and SpecAugment stripes.

Upstream computes features inside the network with torchlibrosa: ``Spectrogram(n_fft,
hop_length, win_length=n_fft, window="hann", center=True, pad_mode="reflect")`` (power 2) and
``LogmelFilterBank(sr, n_fft, n_mels, fmin, fmax, ref=1.0, amin=1e-10, top_db=None)``, whose
filters are ``librosa.filters.mel`` (Slaney scale, Slaney norm), giving
``[B, 1, frames, n_mels]``. :class:`LogMelFrontEnd` computes the same with torchaudio
(:func:`sleepbench.signal.mel.mel_power_transform` with reflect padding), so no torchlibrosa
dependency is needed; a test checks parity with librosa on real audio.

HTS-AT's ESC-50 values (:data:`ESC50_FRONT_END`): 32 kHz, n_fft 1024, hop 320, 64 mels,
50-14,000 Hz. For ICBHI (:data:`ICBHI_FRONT_END`, SPECS §4.1 assumption): 16 kHz, hop 160,
50-8,000 Hz; an 8-s cycle gives 801 frames.

:class:`SpecAugment` is torchlibrosa's ``SpecAugmentation(time_drop_width=64,
time_stripes_num=2, freq_drop_width=8, freq_stripes_num=2)``. Note that upstream (HTS-AT and
LSRM ``model/train.py``) applies it **after** the ``bn0`` batch norm over the mel bins, so the
zeroed stripes are at the normalised mean, not at 0 dB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from sleepbench.signal.mel import mel_power_transform

__all__ = [
    "AMIN",
    "ESC50_FRONT_END",
    "ICBHI_FRONT_END",
    "REF",
    "FrontEndConfig",
    "LogMelFrontEnd",
    "SpecAugment",
    "n_frames",
]

#: torchlibrosa ``power_to_db`` parameters of HTS-AT: power floor and reference power.
AMIN = 1e-10
REF = 1.0


@dataclass(frozen=True)
class FrontEndConfig:
    """Log-mel front-end parameters.

    Args:
        sample_rate: audio rate (Hz).
        n_fft: FFT and Hann-window length (samples).
        hop: frame step (samples).
        n_mels: mel bands.
        f_min_hz, f_max_hz: filter-bank band edges (Hz).
    """

    sample_rate: int
    n_fft: int = 1024
    hop: int = 320
    n_mels: int = 64
    f_min_hz: float = 50.0
    f_max_hz: float = 14000.0

    @classmethod
    def from_cfg(cls, cfg: Any, default: FrontEndConfig) -> FrontEndConfig:
        """The run's front end: ``preprocess.fs_hz`` and ``frontend.*`` over ``default``.

        Args:
            cfg: run config (mapping-like; ``preprocess`` and ``frontend`` may be absent).
            default: the task's preset (:data:`ICBHI_FRONT_END`, :data:`ESC50_FRONT_END`).
        """
        pre = cfg.get("preprocess") or {}
        fe = cfg.get("frontend") or {}
        return cls(
            sample_rate=int(pre.get("fs_hz", default.sample_rate)),
            n_fft=int(fe.get("n_fft", default.n_fft)),
            hop=int(fe.get("hop", default.hop)),
            n_mels=int(fe.get("n_mels", default.n_mels)),
            f_min_hz=float(fe.get("f_min_hz", default.f_min_hz)),
            f_max_hz=float(fe.get("f_max_hz", default.f_max_hz)),
        )

    def __post_init__(self) -> None:
        if not 0 <= self.f_min_hz < self.f_max_hz <= self.sample_rate / 2:
            raise ValueError(
                f"need 0 <= f_min < f_max <= sample_rate / 2, got {self.f_min_hz}, "
                f"{self.f_max_hz}, {self.sample_rate}"
            )
        if min(self.n_fft, self.hop, self.n_mels) < 1:
            raise ValueError(f"n_fft, hop and n_mels must be positive: {self}")


ICBHI_FRONT_END = FrontEndConfig(16000, 1024, 160, 64, 50.0, 8000.0)
ESC50_FRONT_END = FrontEndConfig(32000, 1024, 320, 64, 50.0, 14000.0)


def n_frames(n_samples: int, hop: int) -> int:
    """Frames of a centred transform of ``n_samples`` samples: ``1 + n_samples // hop``."""
    return 1 + int(n_samples) // int(hop)


class LogMelFrontEnd(nn.Module):
    """Audio -> log-mel dB, as torchlibrosa ``Spectrogram`` + ``LogmelFilterBank`` (no top-dB).

    Args:
        cfg: the :class:`FrontEndConfig`.

    ``forward(wave)``: float32 ``[B, samples]`` at ``cfg.sample_rate`` (more than
    ``n_fft // 2`` samples: reflect padding needs them) -> float32 ``[B, 1, frames, n_mels]``,
    ``frames = 1 + samples // hop``, values ``10 log10(max(1e-10, S)) - 10 log10(max(1e-10,
    1.0))`` dB. No parameter is trained (the filters are a buffer).
    """

    def __init__(self, cfg: FrontEndConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.mel = mel_power_transform(
            cfg.sample_rate,
            cfg.n_fft,
            cfg.hop,
            cfg.n_mels,
            cfg.f_min_hz,
            cfg.f_max_hz,
            center=True,
            pad_mode="reflect",  # torchlibrosa / HTS-AT (librosa >= 0.10 would pad with zeros)
        )
        self._ref_db = 10.0 * math.log10(max(AMIN, REF))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.ndim != 2:
            raise ValueError(f"LogMelFrontEnd expects [batch, samples], got {tuple(wave.shape)}")
        power = self.mel(wave.float())  # [B, n_mels, frames]
        db = 10.0 * torch.log10(torch.clamp(power, min=AMIN)) - self._ref_db
        return db.transpose(1, 2).unsqueeze(1).contiguous()


class SpecAugment(nn.Module):
    """torchlibrosa's ``SpecAugmentation``: zeroed time and frequency stripes while training.

    Args:
        time_width: stripe widths are drawn in ``[0, time_width)`` frames.
        time_stripes: time stripes per example.
        freq_width: widths in ``[0, freq_width)`` mel bins.
        freq_stripes: frequency stripes per example.

    ``forward(x)``: ``[B, C, T, F]`` -> same shape. In eval mode ``x`` itself is returned. In
    training each example draws its own stripes (``DropStripes`` semantics): per stripe a
    width ``w`` uniform in ``[0, width)`` and a start uniform in ``[0, total - w)``, and the
    stripe is set to zero over all channels; time stripes first, then frequency stripes. The
    draws use torch's default CPU generator (``torch.manual_seed`` reproduces them, on any
    device) unless a ``generator`` is given. Unlike torchlibrosa the input is not modified in
    place, and a width larger than the axis is clipped to it instead of failing.
    """

    def __init__(
        self,
        time_width: int = 64,
        time_stripes: int = 2,
        freq_width: int = 8,
        freq_stripes: int = 2,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if min(time_width, freq_width) < 1 or min(time_stripes, freq_stripes) < 0:
            raise ValueError("stripe widths must be >= 1 and stripe counts >= 0")
        self.time_width, self.time_stripes = int(time_width), int(time_stripes)
        self.freq_width, self.freq_stripes = int(freq_width), int(freq_stripes)
        self.generator = generator

    def stripes(
        self, batch: int, total: int, width: int, count: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``(start, width)`` int64 ``[batch, count]`` of stripes on an axis of ``total``."""
        widths = torch.randint(0, width, (batch, count), generator=self.generator)
        widths = torch.clamp(widths, max=total)
        # floor(u * k) with u uniform in [0, 1) is uniform on 0..k-1, k = total - width.
        room = torch.clamp(total - widths, min=1)
        u = torch.rand((batch, count), generator=self.generator, dtype=torch.float64)
        starts = torch.minimum((u * room).long(), room - 1)
        return starts, widths

    def _keep(
        self, batch: int, total: int, width: int, count: int, device: torch.device
    ) -> torch.Tensor:
        """Bool ``[batch, total]``: ``False`` inside a drawn stripe."""
        starts, widths = self.stripes(batch, total, width, count)
        pos = torch.arange(total)[None, None, :]
        inside = (pos >= starts[..., None]) & (pos < (starts + widths)[..., None])
        return (~inside.any(dim=1)).to(device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"SpecAugment expects [batch, channels, time, freq], got {x.shape}")
        if not self.training:
            return x
        batch, _, total_t, total_f = x.shape
        keep_t = self._keep(batch, total_t, self.time_width, self.time_stripes, x.device)
        keep_f = self._keep(batch, total_f, self.freq_width, self.freq_stripes, x.device)
        keep = keep_t[:, None, :, None] & keep_f[:, None, None, :]
        return torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device))
