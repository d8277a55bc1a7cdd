"""``sleepbench predict`` for icbhi_lung: one lung-sound recording (+ its cycle file) -> normal /
crackle / wheeze / both per respiratory cycle.

The recording is read by :func:`~sleepbench.tasks.icbhi_lung.data.read_recording`, the cache
build's own step (read at its own rate and sample type, resampled to ``preprocess.fs_hz``, faded
in and out). Each item is fixed to ``preprocess.cycle_s`` seconds by the task's evaluation
transform (:class:`~sleepbench.tasks.icbhi_lung.data.CycleTransform`: repeated and faded out,
or cut).

* **With the cycle file** (``<stem>.txt``: ``start end crackles wheezes`` a line), each annotated
  cycle is one unit, cut at the sample positions the cache uses
  (:func:`~sleepbench.io.icbhi.cycle_samples`); its flags are the reference, and the agreement
  is the ICBHI challenge's (:func:`~sleepbench.metrics.icbhi.icbhi_score`: Se, Sp, score) with the
  accuracy and the confusion matrix.
* **Without it** the cycle boundaries are unknown: the recording is cut into consecutive windows
  of ``cycle_s`` seconds (a last piece shorter than half a window is left out), which the network
  never saw in training (a window may hold parts of two cycles).

Device, chest location and acquisition mode come from an ICBHI file name
(:func:`~sleepbench.io.icbhi.parse_icbhi_name`); another name is read all the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from sleepbench.deploy.predict import InputError, NightPrediction, Predictor, envelope, softmax
from sleepbench.errors import RecordingError
from sleepbench.io.icbhi import CLASSES, IcbhiName, cycle_samples, parse_icbhi_name, read_cycles
from sleepbench.metrics.icbhi import icbhi_score
from sleepbench.tasks.icbhi_lung.data import CYCLE_FS_HZ, read_recording

__all__ = ["IcbhiPredictor", "pair_files"]

ACCEPTS = (
    "one lung-sound .wav (ICBHI 2017: <patient>_<index>_<location>_<mode>_<device>.wav), "
    "optionally its cycle annotation <stem>.txt"
)
#: what an abnormal unit's event is called on the report's time axis
_ABNORMAL = CLASSES[1:]


def pair_files(files: Sequence[Path]) -> tuple[Path, Path | None]:
    """The recording's ``.wav`` and, when given, its cycle file ``<stem>.txt``.

    Raises:
        InputError: a file of another kind, no or several wavs, several cycle files, or a cycle
            file named for another recording.
    """
    wavs = [f for f in files if f.suffix.lower() == ".wav"]
    txts = [f for f in files if f.suffix.lower() == ".txt"]
    other = [f.name for f in files if f not in wavs and f not in txts]
    if other:
        raise InputError(
            f"{', '.join(other)}: not a .wav or cycle .txt (icbhi_lung reads {ACCEPTS})"
        )
    if len(wavs) != 1:
        raise InputError(
            f"icbhi_lung needs exactly one .wav, got {len(wavs)}"
            + (f" ({', '.join(f.name for f in wavs)})" if wavs else "")
        )
    if len(txts) > 1:
        raise InputError(f"at most one cycle file, got {', '.join(f.name for f in txts)}")
    wav, txt = wavs[0], (txts[0] if txts else None)
    if txt is not None and txt.stem != wav.stem:
        raise InputError(
            f"{txt.name} is not the cycle file of {wav.name} (expected {wav.stem}.txt)"
        )
    return wav, txt


class IcbhiPredictor(Predictor):
    """One ICBHI recording -> a class per respiratory cycle (see the module docstring)."""

    accepts = ACCEPTS

    def predict(self, files: Sequence[Path]) -> NightPrediction:
        """Classify one recording's cycles (or windows); see :meth:`Predictor.predict`."""
        wav, txt = pair_files(files)
        fs = int(self.preprocess_config().get("fs_hz", CYCLE_FS_HZ))
        x, info = read_recording(wav, fs)
        cycle_s = float(OmegaConf.select(self.cfg, "preprocess.cycle_s", default=8.0))
        if txt is not None:
            cycles = read_cycles(txt)
            start, stop = cycle_samples(txt, cycles, fs, len(x))
            onsets = [c.start_s for c in cycles]
            durations = [c.end_s - c.start_s for c in cycles]
            ref_labels: list[int] | None = [c.label for c in cycles]
        else:
            win = round(cycle_s * fs)
            start = np.arange(0, len(x), win, dtype=np.int64)
            stop = np.minimum(start + win, len(x))
            # a short last piece would be mostly repeats of itself; kept when it is all there is
            keep = (stop - start >= win / 2) | (start == 0)
            start, stop = start[keep], stop[keep]
            onsets = (start / fs).tolist()
            durations = ((stop - start) / fs).tolist()
            ref_labels = None

        transform = self.test_transform()
        rng = np.random.default_rng(0)  # unused without augmentation; the transform's signature
        items = np.stack([transform(x[a:b], np.zeros(1), rng)[0] for a, b in zip(start, stop)])
        logits = self.model.logits(items)
        probs = softmax(logits)
        pred = probs.argmax(axis=1)
        unit = "cycle" if txt is not None else "window"
        units = []
        for i, (onset, dur) in enumerate(zip(onsets, durations, strict=True)):
            entry: dict[str, Any] = {
                "index": i,
                "onset_s": float(onset),
                "duration_s": float(dur),
                "label": CLASSES[pred[i]],
                "probabilities": dict(zip(CLASSES, probs[i].tolist(), strict=True)),
                "logits": logits[i].tolist(),
            }
            if ref_labels is not None:
                entry["reference"] = CLASSES[ref_labels[i]]
            units.append(entry)

        name = _name(wav)
        counts = {c: int((pred == k).sum()) for k, c in enumerate(CLASSES)}
        summary: dict[str, Any] = {
            "n_units": len(units),
            "counts": counts,
            "shares": {c: n / len(units) for c, n in counts.items()},
            "abnormal_share": 1.0 - counts["normal"] / len(units),
            "device": name.device if name else None,
            "chest_location": name.location if name else None,
            "acquisition_mode": name.mode if name else None,
            "source_fs_hz": info.fs_hz,
        }
        events = _abnormal_events(units, "label")
        timeline = [
            envelope(x, fs, f"Lung sound at {fs / 1000:g} kHz (full scale 1)"),
            {"kind": "events", "name": f"Predicted abnormal {unit}s", "events": events},
        ]
        reference = agreement = None
        if ref_labels is not None and txt is not None:
            reference, agreement = _agreement(txt, np.asarray(ref_labels), pred)
            timeline.append(
                {
                    "kind": "events",
                    "name": "Reference abnormal cycles (annotation)",
                    "events": _abnormal_events(units, "reference"),
                }
            )
        limitations = [
            f"Each {unit} is fixed to {cycle_s:g} s before the network reads it (a shorter one "
            "repeated end to end and faded out, a longer one cut), as in training.",
            "Crackles and wheezes are judged per unit, not located inside it.",
        ]
        if txt is None:
            limitations.insert(
                0,
                f"No cycle file was given: the recording was cut into consecutive {cycle_s:g}-s "
                "windows, not respiratory cycles; the network was trained on single cycles, so "
                "its answers on windows are less reliable.",
            )
        if name is None:
            limitations.append(
                f"{wav.name} is not an ICBHI file name: device and chest location are unknown; "
                "the network knows ICBHI's four stethoscopes only."
            )
        return NightPrediction(
            record_id=wav.stem,
            recording={
                "files": [wav.name] + ([txt.name] if txt else []),
                "duration_s": info.duration_s,
                "channels": [{"name": "audio", "fs_hz": info.fs_hz, "unit": "full scale"}],
                "sample_type": info.subtype,
                "device": summary["device"],
                "chest_location": summary["chest_location"],
                "acquisition_mode": summary["acquisition_mode"],
            },
            unit=unit,
            unit_s=None if txt is not None else cycle_s,
            classes=list(CLASSES),
            units=units,
            summary=summary,
            definitions=_DEFINITIONS,
            events=events,
            reference=reference,
            agreement=agreement,
            limitations=limitations,
            timeline=timeline,
        )


def _name(wav: Path) -> IcbhiName | None:
    """The ICBHI fields of the file name, ``None`` for another name."""
    try:
        return parse_icbhi_name(wav.stem, wav)
    except RecordingError:
        return None


def _abnormal_events(units: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Units whose ``key`` class is abnormal, as timeline events labelled by that class."""
    return [
        {"onset_s": u["onset_s"], "duration_s": u["duration_s"], "label": u[key]}
        for u in units
        if u.get(key) in _ABNORMAL
    ]


def _agreement(
    txt: Path, ref: np.ndarray, pred: np.ndarray
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The annotation's per-class counts, and accuracy, ICBHI Se/Sp/score, confusion matrix."""
    scores = icbhi_score(
        torch.as_tensor(pred), torch.as_tensor(ref), num_classes=len(CLASSES), normal_class=0
    )
    confusion = np.zeros((len(CLASSES), len(CLASSES)), dtype=np.int64)
    np.add.at(confusion, (ref, pred), 1)
    reference = {
        "file": txt.name,
        "n_cycles": len(ref),
        "counts": {c: int((ref == k).sum()) for k, c in enumerate(CLASSES)},
    }
    agreement = {
        "accuracy": float((ref == pred).mean()),
        "icbhi_se": float(scores["icbhi_se"]),
        "icbhi_sp": float(scores["icbhi_sp"]),
        "icbhi_score": float(scores["icbhi_score"]),
        "confusion_matrix": {
            "rows": "reference",
            "columns": "prediction",
            "classes": list(CLASSES),
            "counts": confusion.tolist(),
        },
    }
    return reference, agreement


_DEFINITIONS = {
    "units": "one per annotated respiratory cycle (with the cycle file) or per consecutive "
    "window of preprocess.cycle_s seconds (without it)",
    "probabilities": "softmax of the network's logits over normal, crackle, wheeze, both",
    "n_units": "cycles (or windows) classified",
    "counts": "units predicted in each class",
    "shares": "share of the units predicted in each class",
    "abnormal_share": "share of the units predicted crackle, wheeze or both",
    "device": "stethoscope / microphone from the ICBHI file name (AKGC417L, LittC2SE, "
    "Litt3200, Meditron)",
    "chest_location": "Tc trachea; A/P/L anterior/posterior/lateral, l/r left/right",
    "acquisition_mode": "sc single channel, mc multichannel",
    "source_fs_hz": "the file's own sampling rate, Hz (resampled for the network)",
    "accuracy": "share of cycles whose predicted class equals the annotation's",
    "icbhi_se": "ICBHI sensitivity: abnormal cycles predicted as their exact abnormal class / "
    "abnormal cycles",
    "icbhi_sp": "ICBHI specificity: normal cycles predicted normal / normal cycles",
    "icbhi_score": "(icbhi_se + icbhi_sp) / 2, the ICBHI 2017 challenge score",
    "confusion_matrix": "cycle counts, rows = annotation, columns = prediction",
}
