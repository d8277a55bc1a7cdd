"""Network of method 001: per-minute apnea detection from one ECG lead (SPECS §2.3).

``ApneaECGNet`` maps a 60-s, 100-Hz single-lead ECG window ``[B, 1, 6000]`` to one apnea logit per
window ``[B]``. It chains three parts, as coded in the SICSA notebook (``psgroup730/SICSA``):

1. ``LeadProjection``: a learnt 1 -> 12 lead expansion so that the 12-lead backbone can be reused.
2. ``ConvNeXtV21d``: the 1-D ConvNeXt-V2 signal encoder of ESI ("ECG Semantic Integrator",
   Yu, Guo & Sano, TMLR 2024, code ``comp-well-org/ESI``, file ``model/convnextv2.py``), with the
   same parameter names so that ESI safetensors load after stripping their ``img_encoder.`` prefix
   (``load_esi_checkpoint``). It returns a pooled embedding (1024-d for ``"base"``).
3. ``MultiTemporalHead``: BiLSTM + additive attention + avg/max pooling + MLP. Upstream runs it on
   the pooled embedding as a length-1 sequence, so the "temporal" parts see no time axis
   (SPECS §2.3 [DISCREPANCY]); the head accepts any sequence length so a variant that keeps the
   backbone's time axis can reuse it.

The encoder and its ESI quirks live in :mod:`~sleepbench.tasks.apnea_ecg.convnext1d`.

Parameter count of ``ApneaECGNet("base")``: 90,570,551 in total (lead projection 48, backbone
85,558,528, ESI's unused 5-class encoder head 5,125, multi-temporal head 5,006,850), of which
5,006,898 stay trainable after ``freeze_backbone()``, as printed by the upstream notebook.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from sleepbench.tasks.apnea_ecg.convnext1d import (
    ConvNeXtBlock1d,
    ConvNeXtV21d,
    GlobalResponseNorm1d,
    TimeAxisNorm,
)

__all__ = [
    "ESI_HEAD_CLASSES",
    "ESI_PREFIX",
    "SIZES",
    "ApneaECGNet",
    "ConvNeXtBlock1d",
    "ConvNeXtV21d",
    "GlobalResponseNorm1d",
    "LeadProjection",
    "MultiTemporalHead",
    "NetSize",
    "TimeAxisNorm",
    "load_esi_checkpoint",
]

#: Prefix of the signal-encoder keys in ESI's exported safetensors (``ESI.img_encoder``).
ESI_PREFIX = "img_encoder."
#: Upstream clamps activations to [-CLAMP, CLAMP] after the lead projection and before the MLP.
CLAMP = 10.0
#: ESI builds its encoder with ``num_classes=5`` (``main.py`` default); the head is unused but its
#: 1024 x 5 + 5 = 5,125 parameters are part of upstream's 90,570,551 count and of the checkpoint.
ESI_HEAD_CLASSES = 5
#: Upstream initialises every linear layer (and the lead projection) Xavier-uniform with this gain.
XAVIER_GAIN = 0.5


@dataclass(frozen=True)
class NetSize:
    """Widths and depths of one ``ApneaECGNet`` size.

    ``depths``/``dims``: blocks and channels of the four backbone stages; ``lstm_hidden``: hidden
    units per LSTM direction; ``attention_hidden``: width of the additive attention; ``mlp_hidden``:
    the two hidden widths of the classifier MLP.
    """

    depths: tuple[int, int, int, int]
    dims: tuple[int, int, int, int]
    lstm_hidden: int
    attention_hidden: int
    mlp_hidden: tuple[int, int]


#: ``"base"`` is exactly upstream (ESI ``convnextv2_base`` + SICSA head); ``"small"`` uses ESI's
#: ``convnextv2_atto`` backbone widths and ``"tiny"`` is for CPU tests. Only ``"base"`` can load the
#: released ESI weights.
SIZES: dict[str, NetSize] = {
    "base": NetSize((3, 3, 27, 3), (128, 256, 512, 1024), 256, 256, (256, 64)),
    "small": NetSize((2, 2, 6, 2), (40, 80, 160, 320), 64, 64, (64, 32)),
    "tiny": NetSize((1, 1, 2, 1), (16, 32, 64, 128), 32, 32, (32, 16)),
}


class LeadProjection(nn.Module):
    """Learnt expansion of one ECG lead into ``n_leads`` pseudo-leads.

    ``Conv1d(1, n_leads, kernel 1)`` (Xavier-uniform weight with gain 0.5, zero bias) ->
    ``BatchNorm1d(n_leads)`` -> clamp to ``[-clamp, clamp]``. Takes ``[B, 1, L]`` (normalised ECG,
    any sampling rate) and returns ``[B, n_leads, L]``.
    """

    def __init__(self, n_leads: int = 12, clamp: float = CLAMP) -> None:
        super().__init__()
        self.clamp = clamp
        self.conv = nn.Conv1d(1, n_leads, kernel_size=1)
        self.bn = nn.BatchNorm1d(n_leads)
        nn.init.xavier_uniform_(self.conv.weight, gain=XAVIER_GAIN)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, L]`` -> ``[B, n_leads, L]``."""
        return self.bn(self.conv(x)).clamp(-self.clamp, self.clamp)


class MultiTemporalHead(nn.Module):
    """SICSA's "multi-temporal" classification head, as coded upstream.

    Takes a sequence ``[B, T, in_dim]`` (``[B, in_dim]`` is read as ``T = 1``, which is what
    upstream feeds) and returns one logit per item ``[B]``:

    - 2-layer BiLSTM (``lstm_hidden`` per direction, dropout 0.3 between layers) -> ``[B, T, 2H]``;
    - additive attention ``Linear(2H, A) -> tanh -> Linear(A, 1)``, softmax over T, weighted sum
      -> ``[B, 2H]``;
    - average and max pooling of the input over T -> ``[B, in_dim]`` each;
    - concat ``[attended, avg, max]`` (2560 wide for base) -> clamp ``[-clamp, clamp]`` ->
      ``Linear -> LayerNorm -> ReLU -> Dropout(0.3) -> Linear -> LayerNorm -> ReLU ->
      Dropout(0.15) -> Linear(., 1)``.

    Init: Xavier-uniform (gain 0.5) linears, orthogonal LSTM weights, zero biases.
    """

    def __init__(
        self,
        in_dim: int = 1024,
        lstm_hidden: int = 256,
        lstm_layers: int = 2,
        attention_hidden: int = 256,
        mlp_hidden: tuple[int, int] = (256, 64),
        lstm_dropout: float = 0.3,
        mlp_dropout: tuple[float, float] = (0.3, 0.15),
        clamp: float = CLAMP,
    ) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.clamp = clamp
        self.lstm = nn.LSTM(
            in_dim,
            lstm_hidden,
            num_layers=lstm_layers,
            batch_first=True,
            bidirectional=True,
            dropout=lstm_dropout if lstm_layers > 1 else 0.0,
        )
        self.attention = nn.Sequential(
            nn.Linear(2 * lstm_hidden, attention_hidden),
            nn.Tanh(),
            nn.Linear(attention_hidden, 1),
        )
        h1, h2 = mlp_hidden
        self.classifier = nn.Sequential(
            nn.Linear(2 * lstm_hidden + 2 * in_dim, h1),
            nn.LayerNorm(h1),
            nn.ReLU(),
            nn.Dropout(mlp_dropout[0]),
            nn.Linear(h1, h2),
            nn.LayerNorm(h2),
            nn.ReLU(),
            nn.Dropout(mlp_dropout[1]),
            nn.Linear(h2, 1),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight, gain=XAVIER_GAIN)
                nn.init.zeros_(module.bias)
        for name, param in self.lstm.named_parameters():
            if name.startswith("weight"):
                nn.init.orthogonal_(param)
            else:
                nn.init.zeros_(param)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_dim]`` or ``[B, T, in_dim]`` -> logits ``[B]``."""
        if x.ndim == 2:
            x = x.unsqueeze(1)
        if x.ndim != 3 or x.shape[-1] != self.in_dim:
            raise ValueError(f"expected [B, T, {self.in_dim}], got shape {tuple(x.shape)}")
        seq, _ = self.lstm(x)
        weights = torch.softmax(self.attention(seq), dim=1)  # [B, T, 1]
        attended = (weights * seq).sum(dim=1)
        features = torch.cat([attended, x.mean(dim=1), x.amax(dim=1)], dim=-1)
        return self.classifier(features.clamp(-self.clamp, self.clamp)).squeeze(-1)


class ApneaECGNet(nn.Module):
    """Method 001 network: lead projection -> ESI ConvNeXt-V2 -> multi-temporal head.

    Takes normalised single-lead ECG windows ``[B, 1, n_samples]`` (upstream: 60 s at 100 Hz =
    6000 samples; any ``n_samples >= 64`` works) and returns apnea logits ``[B]`` (sigmoid > 0.5
    means apnea minute).

    Parameters: ``size`` a key of ``SIZES`` (``"base"`` = upstream, 90,570,551 parameters);
    ``drop_path_rate`` backbone stochastic depth (upstream 0); ``n_leads`` pseudo-leads produced by
    the lead projection (12 to match ESI's pre-training); ``head_input`` ``"pooled"`` (upstream:
    the head sees the pooled embedding as a length-1 sequence) or ``"temporal"`` (the extension
    SPECS §2.3 suggests: the head runs over the backbone's last-stage time axis, 6000/32 = 187
    steps, so its BiLSTM and attention have a temporal axis to work on). The backbone carries ESI's unused 5-class
    ``head`` (frozen) so that the parameter count and checkpoint keys match upstream.

    Gradual unfreezing (SPECS §2.4): ``freeze_backbone()`` at the start, then
    ``unfreeze_stages([3])`` and later ``unfreeze_stages([2, 3])``; optimisers should be built over
    ``trainable_parameters()``.
    """

    def __init__(
        self,
        size: str = "base",
        drop_path_rate: float = 0.0,
        n_leads: int = 12,
        head_input: str = "pooled",
    ) -> None:
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; choose one of {sorted(SIZES)}")
        if head_input not in ("pooled", "temporal"):
            raise ValueError(f"head_input must be 'pooled' or 'temporal', got {head_input!r}")
        self.head_input = head_input
        spec = SIZES[size]
        self.size = size
        self.lead_projection = LeadProjection(n_leads)
        self.backbone = ConvNeXtV21d(
            n_leads, spec.depths, spec.dims, drop_path_rate, num_classes=ESI_HEAD_CLASSES
        )
        # ESI's encoder head gets no gradient (forward returns the embedding); freezing it keeps
        # it out of optimisers and DDP's unused-parameter check. Upstream never trains it either:
        # it is frozen with the backbone and no unfreezing rule matches "head".
        self.backbone.head.requires_grad_(False)
        self.head = MultiTemporalHead(
            in_dim=self.backbone.embed_dim,
            lstm_hidden=spec.lstm_hidden,
            attention_hidden=spec.attention_hidden,
            mlp_hidden=spec.mlp_hidden,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, n_samples]`` float -> logits ``[B]``."""
        if x.ndim != 3 or x.shape[1] != 1:
            raise ValueError(f"expected a [B, 1, n_samples] ECG batch, got shape {tuple(x.shape)}")
        features = self.lead_projection(x)
        if self.head_input == "temporal":
            # [B, L/32, C]: the head's BiLSTM, attention and pooling see a real time axis
            seq = self.backbone.forward_feature_map(features).transpose(1, 2)
            return self.head(self.backbone.norm(seq))
        embedding = self.backbone(features)
        return self.head(embedding.unsqueeze(1))  # upstream: a length-1 sequence

    def freeze_backbone(self) -> None:
        """Stop gradients to every backbone parameter; lead projection and head stay trainable."""
        self.backbone.requires_grad_(False)

    def unfreeze_stages(self, stage_indices: Sequence[int]) -> list[str]:
        """Make the blocks of the given backbone stages trainable; return the names unfrozen.

        Upstream rule: a backbone parameter is unfrozen when its name contains ``stages.<i>``. With
        four stages this is exactly ``stages.<i>.*``: the downsample layer feeding the stage and
        the final ``norm`` stay frozen. Names are relative to the backbone.
        """
        n_stages = len(self.backbone.stages)
        bad = [i for i in stage_indices if not 0 <= i < n_stages]
        if bad:
            raise ValueError(f"stage indices {bad} out of range 0..{n_stages - 1}")
        prefixes = tuple(f"stages.{i}." for i in stage_indices)
        unfrozen = []
        for name, param in self.backbone.named_parameters():
            if name.startswith(prefixes):
                param.requires_grad_(True)
                unfrozen.append(name)
        return unfrozen

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters with ``requires_grad`` set, in module order (for building an optimiser)."""
        return [p for p in self.parameters() if p.requires_grad]


def load_esi_checkpoint(net: ApneaECGNet | ConvNeXtV21d, path: str | Path) -> dict[str, object]:
    """Load ESI's pre-trained signal-encoder weights from a ``.safetensors`` file into ``net``.

    Keys starting with ``img_encoder.`` are kept and stripped of that prefix (the rest of ESI,
    text model and attention pooling, is ignored); a file whose keys carry no such prefix is read
    as an already-stripped encoder state dict. The weights are loaded non-strictly into the
    backbone (``net.backbone`` for an ``ApneaECGNet``).

    Returns ``{"loaded": int, "missing": list[str], "unexpected": list[str]}``: tensors loaded,
    backbone keys absent from the file, and file keys not loaded (absent from the backbone, or
    ``head.*`` tensors of another class count: ESI's head is unused, so it may differ).
    Raises ``FileNotFoundError`` if ``path`` does not exist and ``ValueError`` when no key matches
    or a tensor used by ``forward`` has the wrong shape (e.g. base weights into a smaller size).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ESI checkpoint not found: {path}")
    backbone = net.backbone if isinstance(net, ApneaECGNet) else net
    raw = load_file(str(path))
    if any(key.startswith(ESI_PREFIX) for key in raw):
        state = {k[len(ESI_PREFIX) :]: v for k, v in raw.items() if k.startswith(ESI_PREFIX)}
    else:
        state = raw
    own = backbone.state_dict()
    matched = [k for k in state if k in own and state[k].shape == own[k].shape]
    wrong = [k for k in state if k in own and state[k].shape != own[k].shape]
    fatal = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in wrong
        if not k.startswith("head.")
    ]
    if fatal:
        raise ValueError(f"{path}: shape mismatch for {len(fatal)} tensors, e.g. {fatal[:3]}")
    if not matched:
        raise ValueError(f"{path}: none of its {len(raw)} tensors matches the ConvNeXt-V2 backbone")
    result = backbone.load_state_dict({k: state[k] for k in matched}, strict=False)
    return {
        "loaded": len(matched),
        "missing": list(result.missing_keys),
        "unexpected": sorted(k for k in state if k not in matched),
    }
