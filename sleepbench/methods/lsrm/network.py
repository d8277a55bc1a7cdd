"""Network of method 003 (LSRM): MRINet + HTS-AT dual branch for lung and environmental sounds.

"Lung Sound Recognition Method Based on Multi-Resolution Interlaced Net and Time-Frequency
Feature Enhancement" (code ``JasYY6/LSRM``, built on HTS-AT ``RetroCirce/HTS-Audio-Transformer``).
SPECS §4.3. ``LSRMNet`` maps a log-mel ``[B, 1, T, n_mels]`` (time-major, dB, ``T <= 1024``) to
clip logits ``[B, n_classes]``:

1. ``bn0``: BatchNorm2d over the mel bins (bins moved to the channel axis), as HTS-AT;
2. bicubic interpolation (``align_corners=True``) to 1024 frames (and to 64 bins if fewer);
3. frequency branch "FFE" (``mrinet.MRINet`` -> ``[B, 512, 32, 2]``, transposed to
   ``[B, 512, 2, 32]``, LayerNorm over its 32 time steps) and time branch "TFE"
   (``htsat.HTSATBranch`` -> ``[B, 512, 2, 32]``);
4. "FEBA" branch attention (``BranchAttention``, only when both branches run);
5. "FSC" fusion semantic classifier (``SemanticClassifier``): semantic map ``[B, C, 16]``,
   averaged into the clip logits.

Ablations (``branches``): ``"both"`` (LSRM), ``"freq"`` (MRINet -> FSC), ``"time"`` (HTS-AT
trunk -> align conv -> FSC, the HTS-AT peer with LSRM's head).

Measured parameter counts (``count_parameters``, torch 2.11 / timm 1.0.31; 4 / 50 classes):

=========  ===========================  =========================  =========================
size       both                         freq                       time
=========  ===========================  =========================  =========================
paper      119,733,980 / 119,751,690    86,298,308 / 86,316,018    31,468,828 / 31,486,538
paper67m   65,844,764 / 65,862,474      32,409,092 / 32,426,802    31,468,828 / 31,486,538
small      1,769,897 / 1,774,359        564,500 / 568,962          1,082,425 / 1,086,887
=========  ===========================  =========================  =========================

The paper's table reports 67.15 M; the released block configuration ``[6, 8, 12, 10]`` gives
119.7 M (SPECS §4.3 [DISCREPANCY]). Upstream's model also holds torchlibrosa's frozen STFT
kernels and mel matrix (1,083,456 parameters at n_fft 1024, 64 bins), which a plain parameter
count includes; our front end is a separate module. ``"paper67m"`` uses ``nblocks [3, 4, 7, 3]``:
65.84 M here, 66.93 M with that front end (-0.33 % from 67.15 M), the nearest of the
ResNet-like patterns tried ([3, 4, 6, 3]: 64.27 M / 65.35 M; [3, 4, 8, 3]: 67.42 M / 68.51 M).
The count does not identify the paper's configuration: dozens of block lists land within
0.01 % of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from sleepbench.errors import ConfigError
from sleepbench.methods.lsrm.htsat import MEL_BINS, HTSATBranch
from sleepbench.methods.lsrm.mrinet import MRINet

__all__ = [
    "BRANCHES",
    "SIZES",
    "TARGET_FRAMES",
    "BranchAttention",
    "LSRMNet",
    "SemanticClassifier",
    "count_parameters",
]

BRANCHES = ("both", "freq", "time")
#: Frames the network works on (HTS-AT: 256 x 256 image = 4 chunks of 256 frames).
TARGET_FRAMES = 1024

_PAPER: dict[str, Any] = {
    # MRINet (frequency branch), released config in LSRM model/train.py
    "nblocks": (6, 8, 12, 10),
    "base_channels": 64,
    "ratio": 2,
    # HTS-AT Swin (time branch), HTS-AT config.py defaults
    "embed_dim": 96,
    "depths": (2, 2, 6, 2),
    "num_heads": (4, 8, 16, 32),
    "window_size": 8,
    "mlp_ratio": 4.0,
    "drop_path_rate": 0.1,
    # FSC hidden width (tscam_conv1 512 -> 128)
    "fsc_channels": 128,
}

#: Size presets; every entry can be overridden through ``LSRMNet(**overrides)``.
#: ``"small"`` is for 1-core CPU runs: a batch of 8 log-mels of 801 x 64 frames takes about 0.20 s
#: forward and 0.55 s forward + backward with ``torch.set_num_threads(1)`` (torch 2.11, measured
#: on the development machine; "freq" alone 0.06 / 0.23 s, "time" alone 0.13 / 0.32 s).
SIZES: dict[str, dict[str, Any]] = {
    "paper": _PAPER,
    "paper67m": {**_PAPER, "nblocks": (3, 4, 7, 3)},
    "small": {
        **_PAPER,
        "nblocks": (1, 1, 1, 1),
        "base_channels": 16,
        "embed_dim": 24,
        "depths": (1, 2, 2, 1),  # shifted windows in stages 2 and 3
        "num_heads": (1, 2, 4, 8),
        "fsc_channels": 32,
    },
}


def bicubic_matrix(n_in: int, n_out: int, device: torch.device | None = None) -> torch.Tensor:
    """``[n_out, n_in]`` weights of 1-D bicubic interpolation with ``align_corners=True``.

    The rows are ``F.interpolate``'s own coefficients (interpolating an identity matrix along one
    axis; the other axis keeps its size, which with ``align_corners=True`` is the identity), so
    ``A @ x`` equals ``F.interpolate(x, mode="bicubic", align_corners=True)`` along that axis.
    """
    eye = torch.eye(n_in, device=device).view(1, 1, n_in, n_in)
    return F.interpolate(eye, (n_out, n_in), mode="bicubic", align_corners=True)[0, 0]


def bicubic_resize(x: torch.Tensor, frames: int, bins: int) -> torch.Tensor:
    """``[B, C, T, F]`` -> ``[B, C, frames, bins]``, bicubic with ``align_corners=True``.

    Equal to ``F.interpolate(x, (frames, bins), mode="bicubic", align_corners=True)`` (PyTorch's
    bicubic kernel is separable) but written as two matrix products: CUDA's
    ``upsample_bicubic2d_backward`` has no deterministic implementation and raises under
    ``trainer.deterministic=true``, and gradients reach this step through ``bn0``.
    """
    t, f = x.shape[-2:]
    if t != frames:
        x = torch.matmul(bicubic_matrix(t, frames, x.device).to(x.dtype), x)
    if f != bins:
        x = torch.matmul(x, bicubic_matrix(f, bins, x.device).to(x.dtype).T)
    return x


class BranchAttention(nn.Module):
    """ "FEBA": selective-kernel style attention between the two branch outputs (SPECS §4.3).

    ``s = mean_{H,W}(F + T)`` (``[B, C]``) is read as a length-1 sequence through
    ``Conv1d(C, C, 3, padding 1) -> BatchNorm1d -> ReLU`` and two ``Conv1d(C, C, 3, padding 1)``
    heads give per-channel logits of the two branches, softmax-normalised across branches.
    The convolutions keep upstream's kernel 3 (on a length-1 sequence only the centre tap acts;
    the side taps multiply the zero padding and stay at their initial value apart from weight
    decay) so that the parameter count matches the released model.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(
            nn.Conv1d(channels, channels, kernel_size=3, padding=1),
            nn.BatchNorm1d(channels),
            nn.ReLU(),
        )
        self.heads = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size=3, padding=1) for _ in range(2)
        )

    def weights(self, freq: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        """Branch weights ``[B, 2, C]`` (index 0: frequency, 1: time), summing to 1 over axis 1."""
        s = self.squeeze((freq + time).mean(dim=(2, 3)).unsqueeze(-1))  # [B, C, 1]
        logits = torch.stack([head(s).squeeze(-1) for head in self.heads], dim=1)
        return logits.softmax(dim=1)

    def forward(self, freq: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        """Two ``[B, C, H, W]`` maps -> their per-channel weighted sum ``[B, C, H, W]``."""
        w = self.weights(freq, time)[..., None, None]  # [B, 2, C, 1, 1]
        return w[:, 0] * freq + w[:, 1] * time


class SemanticClassifier(nn.Module):
    """ "FSC": LSRM's two-step version of HTS-AT's token-semantic head.

    ``Conv2d(C -> hidden, kernel (2, 3), padding (0, 1))`` collapses the 2 frequency rows,
    ``Conv2d(hidden -> n_classes, kernel (1, 3), padding (0, 1), stride 2)`` halves time (no
    activation in between, as upstream). ``[B, C, 2, 32]`` -> semantic map ``[B, n_classes, 16]``.
    """

    def __init__(self, channels: int, n_classes: int, hidden: int = 128) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, hidden, kernel_size=(2, 3), padding=(0, 1))
        self.conv2 = nn.Conv2d(hidden, n_classes, kernel_size=(1, 3), padding=(0, 1), stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, 2, T']`` -> ``[B, n_classes, ceil(T'/2)]`` (class logits per time position)."""
        return self.conv2(self.conv1(x)).flatten(2)


def _resolve(size: str, overrides: dict[str, Any]) -> dict[str, Any]:
    if size not in SIZES:
        raise ConfigError(f"unknown LSRM size {size!r}; choose from {sorted(SIZES)}")
    unknown = sorted(set(overrides) - set(SIZES[size]))
    if unknown:
        raise ConfigError(f"unknown LSRM network options {unknown}; known: {sorted(SIZES[size])}")
    return {**SIZES[size], **overrides}


class LSRMNet(nn.Module):
    """LSRM dual-branch network (SPECS §4.3).

    Args:
        n_classes: output classes (4 for ICBHI cycles, 50 for ESC-50).
        size: a key of ``SIZES``.
        branches: ``"both"``, ``"freq"`` or ``"time"`` (see the module docstring).
        n_mels: mel bins of the input (<= 64; fewer are interpolated bicubically to 64).
        target_frames: frames the branches work on; inputs with fewer frames are interpolated
            bicubically (``align_corners=True``, as HTS-AT). Must be 1024 when the time branch
            runs (the 256 x 256 HTS-AT image); a multiple of 64 for ``"freq"``.
        **overrides: replace entries of ``SIZES[size]`` (``nblocks``, ``base_channels``,
            ``ratio``, ``embed_dim``, ``depths``, ``num_heads``, ``window_size``, ``mlp_ratio``,
            ``drop_path_rate``, ``fsc_channels``).

    Attributes ``freq_branch`` / ``time_branch`` are ``None`` when the branch is ablated.
    ``forward(mel [B, 1, T, n_mels])`` returns clip logits ``[B, n_classes]``.
    """

    def __init__(
        self,
        n_classes: int,
        size: str = "paper",
        branches: str = "both",
        n_mels: int = MEL_BINS,
        target_frames: int = TARGET_FRAMES,
        **overrides: Any,
    ) -> None:
        super().__init__()
        cfg = _resolve(size, overrides)
        if branches not in BRANCHES:
            raise ConfigError(f"branches must be one of {BRANCHES}, got {branches!r}")
        if not 1 <= n_mels <= MEL_BINS:
            raise ConfigError(f"n_mels must be in 1..{MEL_BINS} (HTS-AT geometry), got {n_mels}")
        if branches != "freq" and target_frames != TARGET_FRAMES:
            raise ConfigError(
                f"target_frames must be {TARGET_FRAMES} with the time branch, got {target_frames}"
            )
        if target_frames % 64:
            raise ConfigError(f"target_frames must be a multiple of 64, got {target_frames}")
        self.n_classes, self.size, self.branches = n_classes, size, branches
        self.n_mels, self.target_frames, self.config = n_mels, target_frames, cfg
        width = cfg["base_channels"] * cfg["ratio"] ** 3  # fused width: MRINet's output channels

        self.bn0 = nn.BatchNorm2d(n_mels)
        self.freq_branch: MRINet | None = None
        self.freq_norm: nn.LayerNorm | None = None
        self.time_branch: HTSATBranch | None = None
        self.feba: BranchAttention | None = None
        if branches in ("both", "freq"):
            self.freq_branch = MRINet(cfg["nblocks"], cfg["base_channels"], cfg["ratio"])
            # LSRM normalises the transposed MRINet map over its time axis (T/32 steps).
            self.freq_norm = nn.LayerNorm(target_frames // 32)
        if branches in ("both", "time"):
            self.time_branch = HTSATBranch(
                out_channels=width,
                embed_dim=cfg["embed_dim"],
                depths=cfg["depths"],
                num_heads=cfg["num_heads"],
                window_size=cfg["window_size"],
                mlp_ratio=cfg["mlp_ratio"],
                drop_path_rate=cfg["drop_path_rate"],
            )
        if branches == "both":
            self.feba = BranchAttention(width)
        self.fsc = SemanticClassifier(width, n_classes, cfg["fsc_channels"])
        # HTS-AT's _init_weights (applied to the whole LSRM model upstream): timm already
        # initialises the Swin trunk that way; the only other LayerNorm is freq_norm (default 1/0).

    def prepare(
        self, mel: torch.Tensor, augment: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> torch.Tensor:
        """``bn0`` over the mel bins, optional ``augment``, then interpolation to ``[B, 1, target_frames, 64]``.

        ``augment`` (e.g. SpecAugment) is applied after ``bn0`` as HTS-AT/LSRM do; raises
        ``ValueError`` for a wrong shape or more frames than ``target_frames``.
        """
        if mel.ndim != 4 or mel.shape[1] != 1 or mel.shape[3] != self.n_mels:
            raise ValueError(f"expected log-mel [B, 1, T, {self.n_mels}], got {list(mel.shape)}")
        frames = mel.shape[2]
        if frames > self.target_frames:
            raise ValueError(
                f"{frames} frames exceed target_frames={self.target_frames}; cut or downsample the input"
            )
        x = self.bn0(mel.transpose(1, 3)).transpose(1, 3)
        if augment is not None:
            x = augment(x)
        if frames < self.target_frames or self.n_mels < MEL_BINS:
            x = bicubic_resize(x, self.target_frames, MEL_BINS)
        return x

    def semantic_map(
        self, mel: torch.Tensor, augment: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> torch.Tensor:
        """``[B, 1, T, n_mels]`` -> per-position class logits ``[B, n_classes, target_frames / 64]``."""
        x = self.prepare(mel, augment)
        feats = []
        if self.freq_branch is not None:
            freq = self.freq_branch(x).transpose(2, 3)  # [B, C, T/32, 2] -> [B, C, 2, T/32]
            feats.append(self.freq_norm(freq))
        if self.time_branch is not None:
            feats.append(self.time_branch(x))
        fused = self.feba(*feats) if self.feba is not None else feats[0]
        return self.fsc(fused)

    def forward(
        self, mel: torch.Tensor, augment: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Log-mel ``[B, 1, T, n_mels]`` (dB, ``T <= target_frames``) -> clip logits ``[B, n_classes]``.

        ``augment``: optional callable applied after ``bn0`` (upstream order); pass the training
        SpecAugment here to reproduce it. Logits are the mean of the semantic map over time.
        """
        return self.semantic_map(mel, augment).mean(dim=2)

    @torch.no_grad()
    def framewise(self, mel: torch.Tensor) -> torch.Tensor:
        """Frame-wise class probabilities ``[B, n_classes, target_frames]`` (visualisation only).

        ``sigmoid`` of the semantic map, each of its ``target_frames / 64`` positions repeated
        over the 64 frames it covers. (Upstream repeats x32, which covers only the first half of
        the clip after LSRM's stride-2 head; repeating x64 maps the whole input.)
        """
        probs = torch.sigmoid(self.semantic_map(mel))
        return probs.repeat_interleave(self.target_frames // probs.shape[2], dim=2)


def count_parameters(size: str, n_classes: int, branches: str = "both", **overrides: Any) -> int:
    """Number of parameters of ``LSRMNet(n_classes, size, branches, **overrides)``.

    Built on the meta device, so no weights are allocated (fast even for ``"paper"``).
    """
    with torch.device("meta"):
        net = LSRMNet(n_classes, size, branches, **overrides)
    return sum(p.numel() for p in net.parameters())
