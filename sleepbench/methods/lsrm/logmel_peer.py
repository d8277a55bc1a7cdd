"""The classical peer of ``icbhi_lung`` and ``esc50``: log-mel band statistics and a shallow
classifier, scored through the model's own test loop on exactly its test clips.

What the deep network adds is measured against the oldest recipe of both fields: summary
statistics of a mel spectrogram per clip and a shallow classifier (the spectral-feature baselines
of ESC-50's own paper, Piczak 2015, and of the ICBHI 2017 challenge entries, e.g. boosted trees in
Chambres et al. 2018). Per clip, from the task's log-mel front end (the model's, unchanged): for
each mel band the mean and the standard deviation over time and the mean absolute frame-to-frame
change (transients such as crackles raise it), so ``3 x n_mels`` features. ``peer.classifier``
picks the model (:mod:`sleepbench.methods.classical`, as apnea_ecg's classical row): ``logistic``
regression or ``gboost`` (gradient-boosted trees), with balanced class weights (the ICBHI score
weighs the abnormal classes' sensitivity and the specificity equally; ESC-50 is balanced anyway),
fitted on the model's training clips.

The fitted classifier sits behind the front end in an ``nn.Module`` (:class:`LogMelStatsPeer`),
so the row is scored by the task's own :class:`~lightning.pytorch.LightningModule` test loop: the
same metrics (ICBHI Se / Sp / score per device, accuracy, macro-F1, majority rate) on the same
clips.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from sleepbench.methods.classical import CLASSIFIERS, build_classifier, fitted_size
from sleepbench.results import RunResult

__all__ = [
    "LogMelStatsPeer",
    "fit_logmel_peer",
    "logmel_statistics",
    "peer_model_name",
    "run_logmel_peer",
]

log = logging.getLogger(__name__)


def peer_model_name(classifier: str) -> str:
    """Row name, e.g. ``"log-mel statistics + logistic regression"``."""
    return f"log-mel statistics + {CLASSIFIERS[classifier]}"


#: the LSRM module's tags that describe its network, not this peer
_NETWORK_TAGS = ("branches", "size", "pretraining")


def logmel_statistics(mel: torch.Tensor) -> torch.Tensor:
    """Per-band statistics of log-mel spectrograms.

    Args:
        mel: ``[B, 1, frames, n_mels]`` log-mel (dB), as the LSRM front end returns it.

    Returns:
        ``[B, 3 * n_mels]``: per band the mean over time, the standard deviation over time and the
        mean absolute difference of consecutive frames.
    """
    x = mel[:, 0].float()  # [B, T, M]
    delta = (x[:, 1:] - x[:, :-1]).abs().mean(dim=1)
    return torch.cat([x.mean(dim=1), x.std(dim=1, unbiased=False), delta], dim=1)


class LogMelStatsPeer(nn.Module):
    """Waveform in, clip log-probabilities out: front end -> :func:`logmel_statistics` -> a
    fitted scikit-learn classifier (:func:`~sleepbench.methods.classical.build_classifier`).

    Args:
        frontend: waveform ``[B, samples]`` -> log-mel ``[B, 1, frames, n_mels]``.
        classifier: fitted pipeline with ``predict_proba`` and ``classes_``.
        n_classes: classes of the task; one the classifier never saw gets probability ~0.

    ``forward`` returns ``log(p)`` ``[B, n_classes]``, so ``softmax`` gives back the classifier's
    probabilities and the task's test loop scores them as it scores the network's logits.
    """

    def __init__(self, frontend: nn.Module, classifier: Any, n_classes: int) -> None:
        super().__init__()
        self.frontend = frontend
        self.classifier = classifier
        self.n_classes = int(n_classes)

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """Features ``[B, 3 * n_mels]`` of waveforms ``[B, samples]``."""
        return logmel_statistics(self.frontend(wave))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Log-probabilities ``[B, n_classes]`` of waveforms ``[B, samples]``."""
        x = self.features(wave).detach().double().cpu().numpy()
        probs = np.zeros((x.shape[0], self.n_classes))
        probs[:, np.asarray(self.classifier.classes_, dtype=np.int64)] = (
            self.classifier.predict_proba(x)
        )
        # a floor instead of log(0) = -inf: an unseen class is never chosen, softmax stays finite
        return torch.from_numpy(np.log(np.maximum(probs, 1e-12))).float().to(wave.device)


def fit_logmel_peer(
    frontend: nn.Module,
    dataset: Any,
    n_classes: int,
    classifier: str = "logistic",
    batch_size: int = 32,
    seed: int = 0,
) -> LogMelStatsPeer:
    """Fit the peer on the clips of ``dataset``.

    Args:
        frontend: the task's log-mel front end (eval mode is set here).
        dataset: items ``{"x": waveform [samples], "y": label}`` (the model's training clips).
        n_classes: classes of the task.
        classifier: ``logistic`` or ``gboost`` (:data:`~sleepbench.methods.classical.CLASSIFIERS`),
            with balanced class weights.
        batch_size: clips per front-end pass.
        seed: random state of the classifier.

    Returns:
        The fitted :class:`LogMelStatsPeer` on the front end.
    """
    frontend = frontend.eval()
    feats, labels = [], []
    with torch.no_grad():
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            feats.append(logmel_statistics(frontend(batch["x"].float())).double().numpy())
            labels.append(np.asarray(batch["y"]).astype(np.int64))
    x, y = np.concatenate(feats), np.concatenate(labels)
    if np.unique(y).size < 2:
        raise ValueError(f"the log-mel peer needs two classes in training, got {np.unique(y)}")
    pipe = build_classifier(classifier, seed, balanced=True).fit(x, y)
    return LogMelStatsPeer(frontend, pipe, n_classes)


def run_logmel_peer(
    cfg: DictConfig, datamodule: Any, result: RunResult, run_dir: Path
) -> list[dict[str, Any]]:
    """Fit the log-mel peer on the model's training clips and test it on its test clips.

    Args:
        cfg: the model's run config (the task module is built from it for its metrics).
        datamodule: the model's set-up data module (same split, same clips).
        result: the model's row (key parts reused, see :func:`~sleepbench.results.peer_result`).
        run_dir: the model's run folder; the peer's outputs go to ``logmel_peer/``.

    Returns:
        One result row (``[]`` on non-zero ranks).
    """
    from sleepbench.registry import get_task
    from sleepbench.results import peer_result
    from sleepbench.train import _scalar_metrics, build_trainer, hardware, protocol_tags

    peer_cfg = OmegaConf.merge(cfg, {"logger": {"wandb": False}})
    module = get_task(str(result.task)).build_module(peer_cfg, datamodule)
    kind = str((cfg.get("peer") or {}).get("classifier", "logistic"))
    name = peer_model_name(kind)
    log.info("fitting the %s peer on the model's training clips", name)
    t0 = time.perf_counter()
    module.net = fit_logmel_peer(
        module.net.frontend,
        datamodule.train_set,
        int(module.n_classes),
        classifier=kind,
        batch_size=int(cfg.data.batch_size),
        seed=int(cfg.get("seed", 0)),
    )
    train_s = time.perf_counter() - t0
    out_dir = Path(run_dir) / "logmel_peer"
    trainer = build_trainer(peer_cfg, out_dir, module.monitor, module.monitor_mode)
    t1 = time.perf_counter()
    logged = trainer.test(module, datamodule=datamodule, verbose=False)
    test_s = time.perf_counter() - t1
    if not trainer.is_global_zero:
        return []
    hours = module._infer_windows * module.window_s / 3600.0
    row = peer_result(
        result,
        model=name,
        metrics=_scalar_metrics(logged[0] if logged else {}),
        protocol_tags={
            **{
                k: v
                for k, v in protocol_tags(peer_cfg, module, datamodule).items()
                if k not in _NETWORK_TAGS
            },
            "peer_of": result.model,
            "fitted_on": "train",
            "features": "mean, SD and mean |change| over time of each log-mel band",
            "classifier": CLASSIFIERS[kind],
        },
        data=datamodule.provenance,
        reference_note="classical baseline fitted here on the model's training clips",
        train_s=train_s,
        test_s=test_s,
        hours=hours,
        n_params=fitted_size(module.net.classifier),
        hardware=hardware(trainer),
    )
    row.timings["inference_ms_per_hour"] = module.inference_ms_per_hour()
    return [row.to_dict()]
