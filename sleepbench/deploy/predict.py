"""``sleepbench predict``: one recording in its real format -> a JSON result and a night report.

Each task's ``predict.py`` (named by ``Task.predict_ref``) provides a :class:`Predictor`: it tells
the recording's files apart, reads them with the task's own readers and preprocessing (the code
the cache build runs), cuts the input items the network takes, and turns the logits into per-unit
predictions (minutes, 30-s epochs, frames, cycles, a clip or a whole night), a night summary and,
when reference annotations were given, the agreement with them. :func:`predict_files` adds what is
common: the model and its provenance, the recording's facts (file names, never header fields
about the patient), the limitations, and a version. The result is plain JSON; the night report
(:mod:`sleepbench.deploy.report`) is drawn from it alone.

Result layout (``schema`` 1)::

    {"schema": 1, "sleepbench": version, "created": ISO time, "task": ...,
     "model": {task, name, file, format, sha256, config_hash, protocol, trained_on_synthetic_data},
     "recording": {record_id, files, duration_s, channels: [{name, fs_hz, unit}], ...},
     "unit": "minute" | "epoch" | "frame" | "cycle" | "window" | "clip" | "night",
     "unit_s": seconds per unit (null when units vary),
     "classes": [output classes in order],
     "units": [{index, onset_s, duration_s, label, probabilities: {class: p}, reference?}],
     "events": [{onset_s, duration_s, label}]   (predicted events, when the task has events),
     "summary": {name: value}, "definitions": {name: what it means, with units},
     "reference": {...} | null, "agreement": {...} | null,
     "limitations": [sentences], "timeline": [report tracks], ...task extras}

Timeline tracks (drawn on one time axis by the report) are dicts with ``kind``:
``"signal"`` (``name``, ``t0_s``, ``step_s``, ``low``, ``high``: a min/max envelope, see
:func:`envelope`), ``"stages"`` (``name``, ``unit_s``, ``labels``, ``order``), ``"events"``
(``name``, ``events``) or ``"series"`` (``name``, ``unit_s``, ``values``, ``range``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from sleepbench.deploy.model import DeployedModel
from sleepbench.errors import InputError, RecordingError, UserError
from sleepbench.registry import get_task

__all__ = [
    "SCHEMA_VERSION",
    "InputError",
    "NightPrediction",
    "Predictor",
    "envelope",
    "get_predictor",
    "predict_files",
    "softmax",
    "sigmoid",
    "write_prediction",
]

SCHEMA_VERSION = 1
#: points of a signal overview track (min/max pairs): enough for a page-wide trace
ENVELOPE_POINTS = 1200
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class NightPrediction:
    """What a task's predictor returns for one recording (see the module docstring's layout).

    Args:
        record_id: the recording's name (file stem; never a header's patient field).
        recording: facts of the input: ``files`` (names), ``duration_s``, ``channels``...
        unit: what one entry of ``units`` covers.
        unit_s: seconds per unit, or ``None`` when units vary (cycles).
        classes: output classes in order.
        units: per-unit predictions.
        summary: night summary numbers; ``definitions`` says what each means.
        definitions: summary (and agreement) key -> definition with units.
        events: predicted events (``onset_s``, ``duration_s``, ``label``).
        reference: the reference annotations' summary, when given.
        agreement: agreement of the prediction with the reference, when given.
        limitations: what the model cannot tell, task-specific sentences.
        timeline: report tracks.
        extras: further top-level fields of the task (``apnea_ecg``: the seed service's fields).
    """

    record_id: str
    recording: dict[str, Any]
    unit: str
    unit_s: float | None
    classes: list[str]
    units: list[dict[str, Any]]
    summary: dict[str, Any]
    definitions: dict[str, str]
    events: list[dict[str, Any]] = field(default_factory=list)
    reference: dict[str, Any] | None = None
    agreement: dict[str, Any] | None = None
    limitations: list[str] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)


class Predictor(ABC):
    """A task's reading and interpreting of one recording (``tasks/<name>/predict.py``).

    Args:
        model: the trained model; ``model.cfg`` is the run's config (preprocessing settings),
            ``model.input_state`` its normalisation values.

    Subclasses set :attr:`accepts` (what files make a recording, in words, for ``--help`` and the
    service's error messages) and implement :meth:`predict`.
    """

    #: the files one recording is given as, in words
    accepts: str = ""

    def __init__(self, model: DeployedModel) -> None:
        self.model = model
        self.cfg = model.cfg

    def datamodule(self) -> Any:
        """The task's datamodule on the run's config (nothing is read or cached): the one
        place its preprocessing settings and item transforms come from."""
        cfg = self.cfg.copy()
        if OmegaConf.select(cfg, "data.root") is None:  # only the cache location uses it
            OmegaConf.update(cfg, "data.root", ".", force_add=True)
        return get_task(self.model.task).datamodule(cfg)

    def preprocess_config(self) -> dict[str, Any]:
        """The preprocessing settings the run's cache build used (the task datamodule's
        ``preprocess_config()`` of the run's config): pass them to the task's preprocess
        function so a new recording is prepared exactly as the training data were."""
        return self.datamodule().preprocess_config()

    def test_transform(self) -> Any:
        """The task's item transform of the test stage (scaling, fixed length; no
        augmentation): ``(x, y, rng) -> (x, y)``."""
        return self.datamodule().transform("test")

    @abstractmethod
    def predict(self, files: Sequence[Path]) -> NightPrediction:
        """Predict one recording given as ``files`` (its parts, in any order).

        Raises:
            InputError: the files do not make one recording of this task.
            RecordingError: a file is unreadable or its content is refused (the reader's message).
        """


def get_predictor(model: DeployedModel) -> Predictor:
    """The task's :class:`Predictor` for ``model``."""
    task = get_task(model.task)
    if task.predictor is None:
        raise UserError(f"task {model.task} has no predictor (Task.predict_ref)")
    return task.predictor(model)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Probabilities of class logits along ``axis`` (float64, numerically stable)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Probabilities of binary logits (float64)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def envelope(
    data: np.ndarray, fs_hz: float, name: str, points: int = ENVELOPE_POINTS, digits: int = 4
) -> dict[str, Any]:
    """A ``"signal"`` timeline track: the min/max of ``data`` over ``points`` equal bins.

    Args:
        data: 1-D samples (NaN ignored; an all-NaN bin gives ``None``).
        fs_hz: its rate in Hz.
        name: the track's title (with the unit: ``"SpO2 (%)"``).
        points: number of bins (fewer when the signal has fewer samples).
        digits: significant digits kept (the report needs no more; the JSON stays small).

    Returns:
        ``{"kind": "signal", "name", "t0_s": 0, "step_s": seconds per bin, "low", "high"}``.
    """
    data = np.asarray(data, dtype=np.float64).ravel()
    n = max(1, min(int(points), data.size))
    edges = np.linspace(0, data.size, n + 1).astype(np.int64)
    low: list[float | None] = []
    high: list[float | None] = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        chunk = data[a : max(b, a + 1)]
        finite = chunk[np.isfinite(chunk)]
        low.append(float(f"{finite.min():.{digits}g}") if finite.size else None)
        high.append(float(f"{finite.max():.{digits}g}") if finite.size else None)
    return {
        "kind": "signal",
        "name": name,
        "t0_s": 0.0,
        "step_s": data.size / float(fs_hz) / n,
        "low": low,
        "high": high,
    }


def predict_files(model: DeployedModel, files: Sequence[str | Path]) -> dict[str, Any]:
    """Predict one recording given as ``files`` with ``model``; the result as plain JSON.

    Raises:
        InputError: no file, a file that does not exist, or files that are not one recording.
        RecordingError: a file unreadable or refused by the task's reader.
    """
    from sleepbench import __version__

    paths = [Path(f) for f in files]
    if not paths:
        raise InputError("no file given: pass the recording's files")
    for p in paths:
        if not p.is_file():
            raise InputError(f"{p}: no such file")
    night = get_predictor(model).predict(paths)
    limitations = list(night.limitations)
    if model.synthetic:
        limitations.insert(
            0,
            "This model was trained on SYNTHETIC data (sleepbench's generator), not on real "
            "recordings: its output shows that the pipeline runs, not a clinical finding.",
        )
    limitations.append(
        "A research model from a benchmark: not a medical device; a clinician scores the night."
    )
    return _jsonable(
        {
            "schema": SCHEMA_VERSION,
            "sleepbench": __version__,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "task": model.task,
            "model": model.describe(),
            "recording": {"record_id": night.record_id, **night.recording},
            "unit": night.unit,
            "unit_s": night.unit_s,
            "classes": list(night.classes),
            "units": night.units,
            "events": night.events,
            "summary": night.summary,
            "definitions": night.definitions,
            "reference": night.reference,
            "agreement": night.agreement,
            "limitations": limitations,
            "timeline": night.timeline,
            **night.extras,
        }
    )


def _jsonable(obj: Any) -> Any:
    """numpy scalars/arrays to Python, NaN/inf to None (strict JSON has neither)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if np.isfinite(value) else None
    if isinstance(obj, Path):
        return obj.name
    return obj


def write_prediction(result: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``<record_id>.json`` and the night report ``<record_id>.html`` into ``out_dir``.

    Returns:
        ``{"json": path, "html": path}``.
    """
    from sleepbench.deploy.report import render_report

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = _SAFE.sub("_", str(result["recording"]["record_id"])) or "recording"
    paths = {"json": out_dir / f"{stem}.json", "html": out_dir / f"{stem}.html"}
    for kind, text in (
        ("json", json.dumps(result, indent=1, allow_nan=False)),
        ("html", render_report(result)),
    ):
        tmp = paths[kind].with_suffix(f".{kind}.partial")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(paths[kind])  # never a half-written result under the final name
    return paths


def reading_errors() -> tuple[type[Exception], ...]:
    """Exceptions that mean "this input is bad" (400), not "sleepbench is broken" (500)."""
    return (InputError, RecordingError)
