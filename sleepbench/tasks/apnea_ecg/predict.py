"""``sleepbench predict`` for apnea_ecg: one WFDB ECG record (+ its ``.apn``) -> apnea minutes.

The record's ECG is read by :func:`~sleepbench.tasks.apnea_ecg.data.read_ecg_record` (the reader
and checks of the cache build, without requiring labels, so any record name is accepted), cut
into consecutive whole minutes of 6000 samples at 100 Hz by
:func:`~sleepbench.tasks.apnea_ecg.data.minute_samples` (a last partial minute edge-padded) and
normalised by :class:`~sleepbench.tasks.apnea_ecg.data.ECGTransform` (no augmentation) with the
training set's robust mean and std saved in the checkpoint. Every minute gets P(apnea) = sigmoid
of the network's logit and the label ``apnea`` when P > 0.5 (the test metrics' rule).

The night summary follows SPECS §2.5: apnea index = predicted apnea minutes per hour of analysed
minutes, diagnosis "apnea" at an index >= 5, plus the database's A/B/C class of the predicted
minutes. Given the ``.apn``, the same numbers are computed from the reference minutes and the
agreement is scored on the minutes it labels (the ``.apn`` may stop a few minutes before the
signal does) with the benchmark's own metric functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchmetrics.functional.classification import binary_cohen_kappa

from sleepbench.deploy.predict import InputError, NightPrediction, Predictor, envelope, sigmoid
from sleepbench.errors import RecordingError, UserError
from sleepbench.io.apnea_ecg_labels import MINUTE_S, apnea_class, label_to_int, read_apn
from sleepbench.metrics.binary import binary_screening_metrics
from sleepbench.tasks.apnea_ecg.data import (
    FS_HZ,
    MINUTE_SAMPLES,
    ECGTransform,
    minute_samples,
    read_ecg_record,
)

__all__ = ["ApneaECGPredictor", "apnea_runs", "pair_files", "risk_of"]

CLASSES = ["normal", "apnea"]
#: apnea index (apnea minutes / h) from which a recording is diagnosed "apnea" (SPECS §2.5)
DIAGNOSIS_CUTOFF = 5.0
#: apnea index from which the seed service's ``risk`` is "high"
HIGH_RISK_CUTOFF = 15.0
THRESHOLD = 0.5
#: files of a record that are read, by suffix
_READ = {".hea", ".dat", ".apn"}
#: annotators a PhysioNet record ships with that predict does not need (accepted, not read)
_IGNORED = {".qrs", ".xws", ".atr"}
ACCEPTS = (
    "one WFDB record: <record>.hea and <record>.dat (single-lead ECG at 100 Hz, first channel), "
    "optionally <record>.apn (per-minute reference labels); .qrs/.xws/.atr are accepted and "
    "not read"
)


def pair_files(files: Sequence[Path]) -> tuple[Path, Path, Path | None, list[Path]]:
    """The record's header, signal, ``.apn`` (when given) and the accepted files left unread.

    Raises:
        InputError: a file of another kind, no or several headers / signal files / ``.apn``,
            files of different records (stems differ) or in different folders.
    """
    by_kind: dict[str, list[Path]] = {}
    for f in files:
        suffix = f.suffix.lower()
        if suffix not in _READ | _IGNORED:
            raise InputError(f"{f.name}: not a file of a WFDB record (apnea_ecg reads {ACCEPTS})")
        by_kind.setdefault(suffix, []).append(f)
    heas, dats = by_kind.get(".hea", []), by_kind.get(".dat", [])
    if len(heas) == 1 and not dats:
        raise InputError(
            f"{heas[0].name}: its signal file {heas[0].stem}.dat was not given (apnea_ecg reads "
            f"{ACCEPTS})"
        )
    for kind, what in ((".hea", "header"), (".dat", "signal file")):
        found = by_kind.get(kind, [])
        if len(found) != 1:
            raise InputError(
                f"apnea_ecg needs exactly one {what} ({kind}), got {len(found)}"
                + (f" ({', '.join(f.name for f in found)})" if found else "")
                + f"; it reads {ACCEPTS}"
            )
    if len(by_kind.get(".apn", [])) > 1:
        raise InputError(f"at most one .apn, got {', '.join(f.name for f in by_kind['.apn'])}")
    hea, dat = by_kind[".hea"][0], by_kind[".dat"][0]
    apn = by_kind[".apn"][0] if ".apn" in by_kind else None
    for f in files:
        if f.stem != hea.stem:
            raise InputError(
                f"{f.name} does not belong to {hea.name}: record names {f.stem} and "
                f"{hea.stem} differ"
            )
        if f.parent != hea.parent:
            # the WFDB reader finds the signal (and labels) beside the header
            raise InputError(f"{f.name} is not in the folder of {hea.name}: put them together")
    ignored = [f for f in files if f.suffix.lower() in _IGNORED]
    return hea, dat, apn, ignored


def apnea_runs(apnea: np.ndarray, n_seconds: float | None = None) -> list[dict[str, Any]]:
    """Runs of consecutive apnea minutes as events ``{onset_s, duration_s, label: "apnea"}``.

    Args:
        apnea: per-minute 0/1 (or bool).
        n_seconds: the signal's length in s: a run ending in the last, partial minute ends there.
    """
    flags = np.concatenate([[0], np.asarray(apnea, dtype=np.int8), [0]])
    edges = np.flatnonzero(np.diff(flags))
    events = []
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        end_s = stop * MINUTE_S if n_seconds is None else min(stop * MINUTE_S, n_seconds)
        events.append(
            {"onset_s": start * MINUTE_S, "duration_s": end_s - start * MINUTE_S, "label": "apnea"}
        )
    return events


def risk_of(apnea_index: float) -> str:
    """The seed service's risk band: "low" below 5, "moderate" below 15, else "high" (/h)."""
    if apnea_index < DIAGNOSIS_CUTOFF:
        return "low"
    return "moderate" if apnea_index < HIGH_RISK_CUTOFF else "high"


def night_numbers(apnea: np.ndarray) -> dict[str, Any]:
    """Apnea minutes, analysed hours, apnea index, diagnosis and A/B/C class of per-minute 0/1."""
    n = int(apnea.size)
    minutes = int(np.sum(apnea))
    hours = n / 60.0
    index = minutes / hours if hours else float("nan")
    return {
        "apnea_minutes": minutes,
        "analysed_minutes": n,
        "recording_h": hours,
        "apnea_index_per_h": index,
        "diagnosis": "apnea" if index >= DIAGNOSIS_CUTOFF else "normal",
        "apnea_ecg_class": apnea_class(["A" if a else "N" for a in apnea.tolist()]),
    }


class ApneaECGPredictor(Predictor):
    """One Apnea-ECG style record -> per-minute apnea (see the module docstring)."""

    accepts = ACCEPTS

    def _transform(self) -> ECGTransform:
        state = self.model.input_state
        missing = [k for k in ("ecg_mean_mv", "ecg_std_mv") if k not in state]
        if missing:
            raise UserError(
                f"{self.model.path.name} lacks the ECG normalisation of its training data "
                f"({', '.join(missing)}): the checkpoint predates saved normalisation; retrain "
                "(or export again from a run trained with this sleepbench)"
            )
        return ECGTransform(float(state["ecg_mean_mv"]), float(state["ecg_std_mv"]), augment=False)

    def predict(self, files: Sequence[Path]) -> NightPrediction:
        """Score every minute of one record; see :meth:`Predictor.predict`."""
        hea, dat, apn, ignored = pair_files(files)
        transform = self._transform()
        pre = self.preprocess_config()
        stem = hea.with_suffix("")
        signal = read_ecg_record(stem, float(pre["max_nan_run_s"]))
        n_samples = int(signal.data.shape[0])
        duration_s = n_samples / FS_HZ
        n_min = -(-n_samples // MINUTE_SAMPLES)  # whole minutes, a last partial one included
        x = minute_samples(signal.data, n_min).reshape(n_min, 1, MINUTE_SAMPLES)
        # the evaluation transform, on all minutes at once (it is element-wise)
        items, _ = transform(x, np.zeros(n_min), np.random.default_rng(0))
        logits = self.model.logits(items).reshape(-1).astype(np.float64)
        probs = sigmoid(logits)
        apnea = (probs > THRESHOLD).astype(np.int8)
        ref = self._read_reference(apn, stem, duration_s)

        units = []
        for i in range(n_min):
            unit: dict[str, Any] = {
                "index": i,
                "onset_s": i * MINUTE_S,
                "duration_s": min(MINUTE_S, duration_s - i * MINUTE_S),
                "label": CLASSES[apnea[i]],
                "logit": float(logits[i]),
                "probabilities": {"normal": 1.0 - probs[i], "apnea": probs[i]},
            }
            if ref is not None:
                unit["reference"] = CLASSES[ref[i]] if i < ref.size else None
            units.append(unit)
        numbers = night_numbers(apnea)
        summary = {**numbers, "mean_apnea_probability": float(probs.mean())}
        events = apnea_runs(apnea, duration_s)
        reference, agreement = None, None
        timeline = [
            envelope(signal.data, signal.fs_hz, f"ECG ({signal.unit or 'mV'})"),
            {
                "kind": "series",
                "name": "P(apnea) per minute",
                "unit_s": MINUTE_S,
                "values": probs.tolist(),
                "range": [0.0, 1.0],
            },
            {"kind": "events", "name": "Predicted apnea minutes", "events": events},
        ]
        if ref is not None and apn is not None:
            reference = {"file": apn.name, "labelled_minutes": int(ref.size), **night_numbers(ref)}
            agreement = self._agreement(probs[: ref.size], ref)
            timeline.append(
                {
                    "kind": "events",
                    "name": "Reference apnea minutes (.apn)",
                    "events": apnea_runs(ref, duration_s),
                }
            )
        index = numbers["apnea_index_per_h"]
        return NightPrediction(
            record_id=stem.name,
            recording={
                "files": [hea.name, dat.name] + ([apn.name] if apn else []),
                "ignored_files": [f.name for f in ignored],
                "duration_s": duration_s,
                "channels": [{"name": signal.name, "fs_hz": signal.fs_hz, "unit": signal.unit}],
            },
            unit="minute",
            unit_s=MINUTE_S,
            classes=list(CLASSES),
            units=units,
            summary=summary,
            definitions=DEFINITIONS,
            events=events,
            reference=reference,
            agreement=agreement,
            limitations=self._limitations(n_samples),
            timeline=timeline,
            extras={
                "probability": float(probs.mean()),
                "logit": float(logits.mean()),
                "risk": risk_of(index),
                "diagnosis": numbers["diagnosis"],
            },
        )

    @staticmethod
    def _read_reference(apn: Path | None, stem: Path, duration_s: float) -> np.ndarray | None:
        """Per-minute reference 0/1 of the ``.apn``, refused when it outlasts the signal (as
        :func:`~sleepbench.io.apnea_ecg_labels.read_apnea_ecg_record` refuses it)."""
        if apn is None:
            return None
        labels = read_apn(stem)
        if len(labels) * MINUTE_S > duration_s:
            raise RecordingError(
                apn, f"{len(labels)} labelled minutes but the signal lasts {duration_s:.1f} s"
            )
        return np.array([label_to_int[s] for s in labels], dtype=np.int8)

    @staticmethod
    def _agreement(probs: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
        """Minute-by-minute and night-level agreement on the minutes the ``.apn`` labels."""
        p, t = torch.from_numpy(probs), torch.from_numpy(ref.astype(np.int64))
        scores = {k: float(v) for k, v in binary_screening_metrics(p, t, THRESHOLD).items()}
        pred_night, ref_night = (
            night_numbers((probs > THRESHOLD).astype(np.int8)),
            night_numbers(ref),
        )
        return {
            "compared_minutes": int(ref.size),
            "accuracy": scores["acc"],
            "kappa": float(binary_cohen_kappa(p, t, threshold=THRESHOLD)),
            "sensitivity": scores["sens"],
            "specificity": scores["spec"],
            "ppv": scores["ppv"],
            "f1": scores["f1"],
            "auroc": scores["auroc"],
            "apnea_index_difference_per_h": pred_night["apnea_index_per_h"]
            - ref_night["apnea_index_per_h"],
            "diagnosis_match": pred_night["diagnosis"] == ref_night["diagnosis"],
            "class_match": pred_night["apnea_ecg_class"] == ref_night["apnea_ecg_class"],
        }

    @staticmethod
    def _limitations(n_samples: int) -> list[str]:
        out = [
            "The network judges each minute from the single-lead ECG alone (heart-rate and "
            "ECG-derived respiration patterns); an apnea minute is a minute containing apnea or "
            "hypopnea, so the apnea index counts minutes per hour, not events per hour: it "
            "estimates, and is not, an AHI.",
            "The A/B/C class uses the apnea minutes of each hour in place of the hourly apnea "
            "index of the database's definition.",
        ]
        if n_samples % MINUTE_SAMPLES:
            out.append(
                f"The last minute holds {n_samples % MINUTE_SAMPLES / FS_HZ:.0f} s of signal, "
                "edge-padded to 60 s."
            )
        return out


DEFINITIONS: dict[str, str] = {
    "apnea_minutes": "minutes whose P(apnea) > 0.5",
    "analysed_minutes": "whole minutes of signal scored (a last partial minute counts as one)",
    "recording_h": "analysed minutes / 60, hours",
    "apnea_index_per_h": "apnea minutes per hour of analysed minutes (SPECS §2.5: estimated "
    "AHI = predicted apnea minutes / recording hours)",
    "diagnosis": f"'apnea' when the apnea index is >= {DIAGNOSIS_CUTOFF:g}/h, else 'normal'",
    "apnea_ecg_class": "Apnea-ECG record class: C (control) < 5 apnea minutes; A (apnea) >= 100 "
    "apnea minutes and an hour with >= 10; B (borderline) otherwise",
    "mean_apnea_probability": "mean over minutes of P(apnea)",
    "labelled_minutes": "minutes the .apn labels (from minute 0)",
    "compared_minutes": "minutes compared: those the .apn labels",
    "accuracy": "share of compared minutes whose predicted label equals the reference",
    "kappa": "Cohen's kappa of predicted vs reference minutes",
    "sensitivity": "share of reference apnea minutes predicted apnea",
    "specificity": "share of reference normal minutes predicted normal",
    "ppv": "share of predicted apnea minutes that are reference apnea minutes",
    "f1": "F1 of the apnea class",
    "auroc": "area under the ROC curve of P(apnea) against the reference minutes (None: one "
    "class only)",
    "apnea_index_difference_per_h": "predicted minus reference apnea index on the compared "
    "minutes, per hour",
    "diagnosis_match": "predicted and reference diagnosis (apnea index >= 5/h) agree "
    "on the compared minutes",
    "class_match": "predicted and reference A/B/C class agree on the compared minutes",
    "probability": "(service field) mean per-minute P(apnea)",
    "logit": "(service field) mean per-minute raw logit of the network",
    "risk": "(service field) 'low' apnea index < 5/h, 'moderate' 5-15/h, 'high' >= 15/h",
}
