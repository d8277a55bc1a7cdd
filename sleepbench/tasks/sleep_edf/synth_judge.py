"""YASA as an independent judge of the synthetic Sleep-EDF nights.

YASA's pretrained EEG + EOG classifier (Vallat & Walker, eLife 2021) was trained on thousands of
real NSRR nights and never saw a synthetic one. If it stages the synthetic nights well, their
EEG/EOG look like real sleep to a model that knows real sleep. The judge reads the written files
back the way the benchmark does (``read_edf`` for the PSG through
:func:`~sleepbench.tasks.sleep_edf.yasa_baseline.yasa_night_probs`, the project's hypnogram
reader for the labels), so it checks the files, not the generator's memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["AASM", "judge_nights", "night_predictions"]

#: the five AASM classes in the order the judge reports them
AASM: tuple[str, ...] = ("W", "N1", "N2", "N3", "REM")


def night_predictions(
    psg: Path, hypnogram: Path, n_epochs: int, eeg: str = "EEG Fpz-Cz", eog: str = "EOG horizontal"
) -> tuple[np.ndarray, np.ndarray]:
    """YASA's stage and the scored stage per epoch of one night (indices into :data:`AASM`).

    Epochs scored ``?`` or movement time are dropped from both.
    """
    from sleepbench.io.sleep_edf_labels import read_hypnogram
    from sleepbench.tasks.sleep_edf.data import CLASS_NAMES
    from sleepbench.tasks.sleep_edf.yasa_baseline import yasa_night_probs

    labels = read_hypnogram(hypnogram, n_epochs=n_epochs)
    proba = yasa_night_probs(psg, eeg, eog, 0, n_epochs)  # columns in CLASS_NAMES order
    pred_name = np.array(CLASS_NAMES)[proba.argmax(1)]
    keep = np.array([lab is not None for lab in labels])
    truth = np.array([AASM.index(lab) for lab in labels if lab is not None])
    pred = np.array([AASM.index(str(p)) for p in pred_name[keep]])
    return pred, truth


def judge_nights(nights: Iterable[Any]) -> dict[str, Any]:
    """κ, accuracy, per-stage F1 and the confusion matrix of YASA over synthetic nights.

    Args:
        nights: :class:`~sleepbench.tasks.sleep_edf.synth.SleepEdfSynthNight` items (anything
            with ``psg_path``, ``hypnogram_path`` and ``n_epochs``).

    Returns:
        ``{"kappa", "acc", "f1": {stage: F1}, "per_night_kappa": [...],
        "confusion": rows=reference, cols=YASA, in AASM order}`` pooled over all epochs.
    """
    from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score

    preds, truths, per_night = [], [], []
    for n in nights:
        p, t = night_predictions(Path(n.psg_path), Path(n.hypnogram_path), int(n.n_epochs))
        preds.append(p)
        truths.append(t)
        per_night.append(float(cohen_kappa_score(t, p)))
    pred, truth = np.concatenate(preds), np.concatenate(truths)
    labels = list(range(len(AASM)))
    f1 = f1_score(truth, pred, labels=labels, average=None, zero_division=0.0)
    return {
        "kappa": float(cohen_kappa_score(truth, pred)),
        "acc": float(np.mean(pred == truth)),
        "f1": {s: float(v) for s, v in zip(AASM, f1)},
        "per_night_kappa": per_night,
        "confusion": confusion_matrix(truth, pred, labels=labels).tolist(),
        "n_epochs": int(truth.size),
    }
