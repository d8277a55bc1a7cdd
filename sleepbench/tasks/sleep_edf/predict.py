"""``sleepbench predict`` for sleep_edf: one PSG EDF (+ its hypnogram EDF+) -> a hypnogram.

Reading and scaling are the cache build's own: :func:`~sleepbench.tasks.sleep_edf.data.read_psg`
reads the EEG derivations and the horizontal EOG, :func:`~sleepbench.tasks.sleep_edf.data.model_input`
resamples, clips and robust-scales them, and the evaluation transform
(:class:`~sleepbench.tasks.sleep_edf.data.StagingTransform` with ``train=False``) is applied.

Choices:

* **The whole recording is staged** (every whole 30-s epoch), with or without a hypnogram, so
  the prediction never depends on whether the reference was given. The cache build crops a night
  to the hypnogram's scored span (and, with ``preprocess.trim_wake_min``, to a margin around
  sleep) before scaling; cropping is not essential to staging, and a new recording has no
  hypnogram to crop by. Given the hypnogram, it is aligned to the PSG by
  :func:`~sleepbench.tasks.sleep_edf.data.match_hypnogram` (as in the cache) and the agreement
  is scored on the epochs it scores.
* **Sequences as at test time**: the network reads fixed sequences of ``data.seq_epochs``
  epochs; the night is covered by :func:`~sleepbench.data.covering.covering_windows`
  (consecutive sequences plus one aligned to the night's end) and an epoch two sequences cover
  takes the first one's output (:func:`~sleepbench.data.covering.first_new_label`), exactly the
  rule the benchmark's test scores are computed with. Softmax outputs are averaged over the EEG
  derivations, each paired with the EOG, when ``model.test_channel_averaging`` is on (as
  :meth:`~sleepbench.tasks.sleep_edf.module.SleepStagingModule.eeg_views`).

Output classes are in AASM order (W, N1, N2, N3, REM); the network's own order is
:data:`~sleepbench.tasks.sleep_edf.data.CLASS_NAMES`. Night statistics of both hypnograms come
from :func:`~sleepbench.metrics.hypnogram.hypnogram_statistics`; the agreement uses the
benchmark's multiclass metrics (:func:`~sleepbench.metrics.make_multiclass_metrics`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sleepbench.data.covering import covering_windows, first_new_label
from sleepbench.deploy.predict import InputError, NightPrediction, Predictor, envelope, softmax
from sleepbench.errors import RecordingError
from sleepbench.io.sleep_edf_labels import _HYP_NAME, _PSG_NAME, AASM_LABELS, read_hypnogram
from sleepbench.metrics import flatten_metric_dict, make_multiclass_metrics
from sleepbench.metrics.hypnogram import HYPNOGRAM_DEFINITIONS, hypnogram_statistics
from sleepbench.tasks.sleep_edf.data import (
    CLASS_NAMES,
    EPOCH_S,
    StagingTransform,
    match_hypnogram,
    model_input,
    read_psg,
    staging_channels,
)

__all__ = ["SleepEDFPredictor", "pair_files", "stage_night"]

#: output classes (AASM order) and where each is in the network's output
CLASSES: list[str] = list(AASM_LABELS)
_TO_AASM = [CLASS_NAMES.index(c) for c in CLASSES]
#: hypnogram drawing order, top to bottom
DISPLAY_ORDER = ["W", "REM", "N1", "N2", "N3"]
#: night statistic -> the agreement key of its difference (predicted minus reference)
_DIFFERENCES = {
    "tst_min": "tst_difference_min",
    "sleep_efficiency_pct": "sleep_efficiency_difference_pct",
    "waso_min": "waso_difference_min",
    "sleep_onset_latency_min": "sleep_onset_latency_difference_min",
}
_PSG_SUFFIX, _HYP_SUFFIX = "-psg.edf", "-hypnogram.edf"
ACCEPTS = (
    "one PSG EDF (<night>-PSG.edf with the EEG and horizontal EOG channels), optionally its "
    "hypnogram EDF+ (<night>-Hypnogram.edf; Sleep-EDF: SC4ssNE0-PSG.edf with SC4ssNEx-Hypnogram.edf)"
)


def _record_id(psg: Path) -> str:
    """``SC4001E0`` of ``SC4001E0-PSG.edf`` (the cache's record id); the stem otherwise."""
    name = psg.name
    return name[: -len(_PSG_SUFFIX)] if name.lower().endswith(_PSG_SUFFIX) else psg.stem


def pair_files(files: Sequence[Path]) -> tuple[Path, Path | None]:
    """The night's PSG and, when given, its hypnogram.

    Sleep-EDF names pair when their first seven characters agree (the hypnogram's eighth is the
    scorer, as :func:`~sleepbench.io.sleep_edf_labels.pair_psg_hypnogram` pairs them); other
    names pair as ``<night>-PSG.edf`` with ``<night>-Hypnogram.edf``.

    Raises:
        InputError: a file that is not an EDF, no or several PSGs, several hypnograms, or a
            hypnogram named for another night.
    """
    other = [f.name for f in files if f.suffix.lower() != ".edf"]
    if other:
        raise InputError(f"{', '.join(other)}: not an EDF file (sleep_edf reads {ACCEPTS})")
    hyps = [f for f in files if f.name.lower().endswith(_HYP_SUFFIX)]
    psgs = [f for f in files if f not in hyps]
    if len(psgs) != 1:
        raise InputError(
            f"sleep_edf needs exactly one PSG EDF, got {len(psgs)}"
            + (f" ({', '.join(f.name for f in psgs)})" if psgs else "")
            + f"; it reads {ACCEPTS}"
        )
    if len(hyps) > 1:
        raise InputError(f"at most one hypnogram per night, got {', '.join(f.name for f in hyps)}")
    psg = psgs[0]
    hyp = hyps[0] if hyps else None
    if hyp is not None:
        p, h = _PSG_NAME.fullmatch(psg.name), _HYP_NAME.fullmatch(hyp.name)
        if p is not None and h is not None:
            same, expected = p["key"].upper() == h["key"].upper(), f"{psg.name[:7]}?-Hypnogram.edf"
        else:
            rid = _record_id(psg)
            same = hyp.name[: -len(_HYP_SUFFIX)] == rid
            expected = f"{rid}-Hypnogram.edf"
        if not same:
            raise InputError(f"{hyp.name} is not the hypnogram of {psg.name} (expected {expected})")
    return psg, hyp


def stage_night(
    predict_logits: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    seq_epochs: int,
    epoch_samples: int,
    eeg_views: list[int],
) -> np.ndarray:
    """Per-epoch stage probabilities of a whole night, covered by sequences as at test time.

    Args:
        predict_logits: ``float32 [B, 2, seq_epochs * epoch_samples] -> [B, 5, seq_epochs]``.
        x: the night as :func:`~sleepbench.tasks.sleep_edf.data.model_input` returns it,
            ``[n_eeg + 1, n_epochs * epoch_samples]`` (EEG derivations, then the EOG).
        seq_epochs: epochs per sequence.
        epoch_samples: samples per 30-s epoch.
        eeg_views: EEG channels each paired with the EOG; their softmax outputs are averaged.

    Returns:
        float64 ``[n_epochs, 5]`` in the network's class order (:data:`CLASS_NAMES`).
    """
    n_epochs = x.shape[1] // epoch_samples
    windows = covering_windows(0, n_epochs, epoch_samples, seq_epochs)
    first = first_new_label(windows)
    eog = x.shape[0] - 1
    total = np.zeros((len(windows), len(CLASS_NAMES), seq_epochs))
    for e in eeg_views:  # one view at a time: a night of items is ~80 MB per view
        items = np.stack([x[[e, eog], a:b] for a, b in zip(windows.x_start, windows.x_stop)])
        total += softmax(predict_logits(items), axis=1)
    probs_w = total / len(eeg_views)
    out = np.zeros((n_epochs, len(CLASS_NAMES)))
    for w in range(len(windows)):
        start = int(windows.y_start[w])
        out[start + first[w] : int(windows.y_stop[w])] = probs_w[w, :, first[w] :].T
    return out


class SleepEDFPredictor(Predictor):
    """One PSG -> a hypnogram of 30-s epochs (see the module docstring)."""

    accepts = ACCEPTS

    def predict(self, files: Sequence[Path]) -> NightPrediction:
        """Stage every whole 30-s epoch of one PSG; see :meth:`Predictor.predict`."""
        psg, hyp = pair_files(files)
        pre = self.preprocess_config()
        record_id = _record_id(psg)
        rec, n_epochs = read_psg(psg, pre, record_id, record_id)
        seq = int(self.cfg.data.seq_epochs)
        if n_epochs < seq:
            raise RecordingError(
                psg,
                f"{n_epochs} whole 30-s epochs; the model reads sequences of {seq} epochs "
                f"({seq * EPOCH_S / 60:g} min)",
            )
        reference = (
            None
            if hyp is None
            else match_hypnogram(
                read_hypnogram(hyp), n_epochs, int(pre["max_overhang_epochs"]), source=hyp
            )
        )
        if reference is not None and all(s is None for s in reference):
            raise RecordingError(hyp, f"scores no epoch of {psg.name}")

        x = model_input(rec, 0, n_epochs, pre)
        x, _ = StagingTransform(train=False)(x, np.zeros(n_epochs), np.random.default_rng(0))
        names = staging_channels(pre)
        n_eeg = len(names) - 1
        views = list(range(n_eeg)) if bool(self.cfg.model.test_channel_averaging) else [0]
        probs = stage_night(self.model.logits, x, seq, x.shape[1] // n_epochs, views)[:, _TO_AASM]
        labels = [CLASSES[i] for i in probs.argmax(axis=1)]

        units = []
        for i, label in enumerate(labels):
            unit: dict[str, Any] = {
                "index": i,
                "onset_s": i * EPOCH_S,
                "duration_s": EPOCH_S,
                "label": label,
                "probabilities": dict(zip(CLASSES, probs[i].tolist(), strict=True)),
            }
            if reference is not None:
                unit["reference"] = reference[i]
            units.append(unit)
        summary = {
            "n_epochs": n_epochs,
            **hypnogram_statistics(labels, EPOCH_S),
            "mean_max_probability": float(probs.max(axis=1).mean()),
        }
        timeline: list[dict[str, Any]] = [
            envelope(rec.signals[n].data, rec.signals[n].fs_hz, f"{n} ({rec.signals[n].unit})")
            for n in names
        ]
        timeline.append(self._stages_track("Predicted hypnogram", labels))
        ref_summary, agreement = None, None
        if reference is not None and hyp is not None:
            scored = [s is not None for s in reference]
            ref_summary = {
                "file": hyp.name,
                "scored_epochs": int(sum(scored)),
                "unscored_epochs": int(n_epochs - sum(scored)),
                **hypnogram_statistics(reference, EPOCH_S),
            }
            agreement = self._agreement(probs, labels, reference)
            timeline.append(self._stages_track("Reference hypnogram", reference))
        duration_s = min(s.data.shape[0] / s.fs_hz for s in rec.signals.values())
        return NightPrediction(
            record_id=record_id,
            recording={
                "files": [psg.name] + ([hyp.name] if hyp else []),
                "duration_s": duration_s,
                "channels": [
                    {"name": s.name, "fs_hz": s.fs_hz, "unit": s.unit}
                    for s in (rec.signals[n] for n in names)
                ],
            },
            unit="epoch",
            unit_s=EPOCH_S,
            classes=list(CLASSES),
            units=units,
            summary=summary,
            definitions=DEFINITIONS,
            events=[],
            reference=ref_summary,
            agreement=agreement,
            limitations=self._limitations(pre, names, views, seq, duration_s - n_epochs * EPOCH_S),
            timeline=timeline,
        )

    @staticmethod
    def _stages_track(name: str, labels: Sequence[str | None]) -> dict[str, Any]:
        return {
            "kind": "stages",
            "name": name,
            "unit_s": EPOCH_S,
            "labels": list(labels),
            "order": DISPLAY_ORDER,
        }

    @staticmethod
    def _agreement(
        probs: np.ndarray, labels: list[str], reference: list[str | None]
    ) -> dict[str, Any]:
        """Epoch-by-epoch agreement on the scored epochs, and the differences of the night
        statistics computed on those same epochs."""
        scored = np.array([s is not None for s in reference])
        target = torch.tensor([CLASSES.index(s) for s in reference if s is not None])
        metrics = make_multiclass_metrics(len(CLASSES), "", None, CLASSES, auroc=False)
        metrics.update(torch.from_numpy(probs[scored]), target)
        computed = metrics.compute()
        confmat = computed.pop("confmat").cpu().numpy().astype(int)
        scores = flatten_metric_dict(computed)
        # predicted statistics on the scored epochs only, so both sides cover the same time
        pred = hypnogram_statistics(
            [p if s else None for p, s in zip(labels, scored, strict=True)], EPOCH_S
        )
        ref = hypnogram_statistics(reference, EPOCH_S)
        out: dict[str, Any] = {
            "compared_epochs": int(scored.sum()),
            "accuracy": scores["acc"],
            "kappa": scores["kappa"],
            "f1_macro": scores["f1_macro"],
            "f1_per_stage": {c: scores[f"f1_{c}"] for c in CLASSES},
            "confusion_matrix": {
                "classes": list(CLASSES),
                "rows": "reference",
                "columns": "predicted",
                "counts": confmat.tolist(),
            },
        }
        for key, diff in _DIFFERENCES.items():
            a, b = pred[key], ref[key]
            out[diff] = None if a is None or b is None else a - b
        return out

    @staticmethod
    def _limitations(
        pre: dict[str, Any], names: list[str], views: list[int], seq: int, tail_s: float
    ) -> list[str]:
        eegs = (
            f"each of {' and '.join(names[i] for i in views)}, softmax averaged"
            if len(views) > 1
            else names[views[0]]
        )
        trim = pre.get("trim_wake_min")
        span = (
            "the hypnogram's scored span"
            if trim is None
            else f"±{float(trim):g} min around the scored sleep"
        )
        out = [
            f"The network stages 30-s epochs from one EEG derivation with the {names[-1]} "
            f"({eegs}) in sequences of {seq} epochs; it sees no EMG, "
            "respiration or video, and arousals are not scored.",
            "The whole recording is staged and each channel is robust-scaled over it; the "
            f"training nights were cropped to {span} before scaling, so a recording with long "
            "wake before or after the night is scaled somewhat differently.",
            "The recording carries no lights-off/on times: the time in bed is the whole "
            "recording, which lowers the sleep efficiency of a long recording.",
        ]
        if tail_s >= 0.5:
            out.append(f"The last {tail_s:.0f} s (less than one 30-s epoch) are not staged.")
        return out


DEFINITIONS: dict[str, str] = {
    "n_epochs": "whole 30-s epochs staged (the whole recording)",
    **HYPNOGRAM_DEFINITIONS,
    "mean_max_probability": "mean over epochs of the probability of the predicted stage",
    "scored_epochs": "epochs the hypnogram scores (W, N1, N2, N3, REM)",
    "unscored_epochs": "epochs of the PSG the hypnogram leaves unscored (movement, '?', "
    "past its end)",
    "compared_epochs": "epochs compared: those the hypnogram scores",
    "accuracy": "share of compared epochs whose predicted stage equals the reference",
    "kappa": "Cohen's kappa of predicted vs reference stages",
    "f1_macro": "unweighted mean of the five per-stage F1 scores (a stage absent from both "
    "counts as 0)",
    "f1_per_stage": "F1 of each stage, one-vs-rest",
    "confusion_matrix": "epoch counts, rows = reference stage, columns = predicted stage",
    "tst_difference_min": "predicted minus reference TST on the compared epochs, minutes",
    "sleep_efficiency_difference_pct": "predicted minus reference sleep efficiency on the "
    "compared epochs, percentage points",
    "waso_difference_min": "predicted minus reference WASO on the compared epochs, minutes",
    "sleep_onset_latency_difference_min": "predicted minus reference sleep onset latency, "
    "minutes (None: no sleep on one side)",
}
