"""Classical peer of the apnea_ecg task: HRV + CVHR + EDR features and a shallow classifier.

The approach of the Apnea-ECG challenge entries and most papers since (Penzel et al. 2002;
de Chazal et al. 2003; Varon et al. 2015), scored beside the deep model on exactly its test
minutes and through the same metric code
(:func:`~sleepbench.tasks.apnea_ecg.scoring.score_minutes`: ``test/acc``, ``test/f1``,
``test/auroc``, ``test/index_pearson_r``, ``test/class_abc_acc``...).

Per record:

- R peaks: the database's ``.qrs`` annotations (machine-detected, shipped with every Apnea-ECG
  record) when present, else wfdb's XQRS detector on the ECG with its peaks moved onto the
  local extreme (``peer.detector``: ``auto``, ``qrs`` or ``xqrs``);
- the ECG: the record read as the model's reader reads it
  (:func:`~sleepbench.tasks.apnea_ecg.data.read_ecg_record`), cut to the labelled minutes;
- per-minute features (:func:`sleepbench.signal.hrv.minute_features`): clean RR statistics, the
  CVHR band power of the RR series over +-``context_min`` minutes, and the R-amplitude EDR; band
  powers enter the classifier as log10.

The classifier (``peer.classifier``): ``logistic`` (median imputation -> standardisation ->
logistic regression) or ``gboost`` (histogram gradient boosting, which routes missing values
itself). It is fitted on the model's training windows (``peer.fit_on: train``) or on its training
and validation windows (``train+val``), one per minute with the same labels; the row's
``fitted_on`` tag says which. Features of minute ``i`` always go with label ``i`` (the corrected
alignment), whatever the protocol. A record that cannot be read is logged, listed in the row's
data and skipped, for training and for testing alike.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits
from wfdb import processing

from sleepbench.errors import RecordingError
from sleepbench.io.apnea_ecg_labels import read_qrs
from sleepbench.methods.classical import CLASSIFIERS, build_classifier, fitted_size
from sleepbench.signal.hrv import minute_features
from sleepbench.tasks.apnea_ecg.data import FS_HZ, minute_samples, read_ecg_record
from sleepbench.tasks.apnea_ecg.scoring import score_minutes

log = logging.getLogger(__name__)

__all__ = [
    "ClassicalPeer",
    "peer_model_name",
    "record_features",
    "record_peaks",
    "run_classical_peer",
]

DETECTORS = ("auto", "qrs", "xqrs")
FIT_ON = ("train", "train+val")


def peer_model_name(classifier: str) -> str:
    """Row name, e.g. ``"HRV+EDR logistic regression"``."""
    return f"HRV+EDR {CLASSIFIERS[classifier]}"


@dataclass(frozen=True)
class ClassicalPeer:
    """Settings of the peer (config block ``peer``)."""

    enabled: bool = True
    detector: str = "auto"
    classifier: str = "logistic"
    context_min: int = 2
    min_rr: int = 10
    fit_on: str = "train"

    @classmethod
    def from_cfg(cls, cfg: Any) -> ClassicalPeer:
        """Settings from ``cfg.peer`` (missing keys keep their defaults).

        Raises:
            ValueError: an unknown detector, classifier or ``fit_on``.
        """
        p = cfg.get("peer") or {}
        d = cls()
        peer = cls(
            enabled=bool(p.get("enabled", d.enabled)),
            detector=str(p.get("detector", d.detector)),
            classifier=str(p.get("classifier", d.classifier)),
            context_min=int(p.get("context_min", d.context_min)),
            min_rr=int(p.get("min_rr", d.min_rr)),
            fit_on=str(p.get("fit_on", d.fit_on)),
        )
        for key, allowed in (
            ("detector", DETECTORS),
            ("classifier", tuple(CLASSIFIERS)),
            ("fit_on", FIT_ON),
        ):
            if getattr(peer, key) not in allowed:
                raise ValueError(f"peer.{key}={getattr(peer, key)!r}; use one of {list(allowed)}")
        return peer


def record_peaks(
    stem: Path, ecg: np.ndarray, fs_hz: float, detector: str
) -> tuple[np.ndarray, str]:
    """R-peak sample indices of one record.

    Args:
        stem: the record path without extension (its ``.qrs`` sits beside it).
        ecg: the record's ECG (mV), for the detector.
        fs_hz: its sampling rate (Hz).
        detector: ``qrs`` (the annotation file, required), ``xqrs`` (wfdb's detector) or
            ``auto`` (the annotation file when there is one, else the detector).

    Returns:
        ``(peaks, source)``: sorted int64 sample indices and ``"qrs"`` or ``"xqrs"``.

    Raises:
        RecordingError: no or an unreadable ``.qrs`` (``qrs``), or the detector failed.
    """
    qrs = stem.parent / f"{stem.name}.qrs"
    if detector == "qrs" or (detector == "auto" and qrs.exists()):
        if not qrs.exists():
            raise RecordingError(qrs, "no .qrs annotation file (peer.detector=qrs)")
        return np.unique(read_qrs(stem)), "qrs"  # the task's reader: beat marks only
    x = np.nan_to_num(np.asarray(ecg, dtype=np.float64))
    try:
        found = processing.xqrs_detect(x, fs=fs_hz, verbose=False)
        # XQRS marks the QRS complex, not its extreme; the amplitude features need the extreme
        found = processing.correct_peaks(
            x,
            np.asarray(found, dtype=np.int64),
            search_radius=max(1, round(0.05 * fs_hz)),
            smooth_window_size=max(2, round(0.2 * fs_hz)),
            peak_dir="compare",
        )
    except Exception as err:  # flat or very short signals make XQRS fail in many ways
        raise RecordingError(stem, f"XQRS detection failed: {err}") from None
    found = np.asarray(found, dtype=np.int64)
    return np.unique(found[(found >= 0) & (found < x.size)]), "xqrs"


def record_features(
    stem: Path, n_minutes: int, peer: ClassicalPeer, max_nan_run_s: float
) -> tuple[np.ndarray, tuple[str, ...], str]:
    """Per-minute features of one record's first ``n_minutes`` minutes.

    Args:
        stem: record path without extension.
        n_minutes: labelled minutes (the cache's ``n_minutes``).
        peer: the settings (detector, context, beats per minute).
        max_nan_run_s: longest gap (s) the reader interpolates (``preprocess.max_nan_run_s``).

    Returns:
        ``(features, names, peak_source)``: float64 ``[n_minutes, n_features]`` (power columns
        as log10), their names, and ``"qrs"`` or ``"xqrs"``.

    Raises:
        RecordingError: unreadable record or annotations, or no beats found.
    """
    ecg = minute_samples(read_ecg_record(stem, max_nan_run_s).data, n_minutes)
    peaks, source = record_peaks(stem, ecg, FS_HZ, peer.detector)
    if peaks.size < 3:
        raise RecordingError(stem, f"only {peaks.size} R peaks ({source})")
    x, names = minute_features(peaks, ecg, FS_HZ, n_minutes, peer.context_min, peer.min_rr)
    power = [i for i, n in enumerate(names) if "power" in n]
    # band powers span decades between records and minutes; a linear model wants their log
    x[:, power] = np.log10(np.maximum(x[:, power], 1e-12))
    return x, tuple(n.replace("power", "log10_power") for n in names), source


def run_classical_peer(
    cfg: Any, datamodule: Any, result: Any, run_dir: Path
) -> list[dict[str, Any]]:
    """``Task.extra_runs`` hook: the classical row for the fold just tested.

    Args:
        cfg: the run config (``peer.*``, ``preprocess.max_nan_run_s``, ``metrics.index_cutoffs``).
        datamodule: the set-up :class:`~sleepbench.tasks.apnea_ecg.data.ApneaECGDataModule`.
        result: the model's :class:`~sleepbench.results.RunResult` (key parts reused).
        run_dir: the model run's folder; the peer's outputs go to its ``classical_peer/``
            subfolder (per-record indices, per-minute probabilities, confusion matrix, the
            fitted model's description).

    Returns:
        One result row, or none when ``peer.enabled`` is false or nothing could be fitted or
        scored (logged).
    """
    from sleepbench.results import peer_result

    peer = ClassicalPeer.from_cfg(cfg)
    if not peer.enabled:
        return []
    store = datamodule.store
    sources = {s.record_id: s for s in datamodule.list_sources(datamodule.root, cfg)}
    max_nan = float(cfg.preprocess.max_nan_run_s)
    cache: dict[int, tuple[np.ndarray, np.ndarray] | None] = {}
    peak_source: dict[str, str] = {}
    failed: dict[str, str] = {}
    names: tuple[str, ...] = ()

    def features(rec: int) -> tuple[np.ndarray, np.ndarray] | None:
        nonlocal names
        if rec not in cache:
            rid = store.records[rec].record_id
            try:
                source = sources.get(rid)
                if source is None:
                    raise RecordingError(datamodule.root, f"{rid}: record no longer found")
                n_min = int(store.records[rec].attrs["n_minutes"])
                stem = Path(source.paths[0]).with_suffix("")
                x, names, peak_source[rid] = record_features(stem, n_min, peer, max_nan)
                cache[rec] = (x, store.read(rec, "y").astype(np.int64))
            except RecordingError as err:
                log.error("classical peer could not read %s: %s", rid, err)
                failed[rid] = str(err)
                cache[rec] = None
        return cache[rec]

    def minutes(index: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Features, labels, records and minutes of the windows of ``index`` still readable."""
        xs, ys, recs, mins = [], [], [], []
        for rec in np.unique(index.record):
            got = features(int(rec))
            if got is None:
                continue
            m = np.asarray(index.y_start[index.record == rec], dtype=np.int64)
            xs.append(got[0][m])
            ys.append(got[1][m])
            recs.append(np.full(m.size, int(rec)))
            mins.append(m)
        if not xs:
            return np.zeros((0, 0)), *(np.zeros(0, np.int64) for _ in range(3))
        return np.concatenate(xs), np.concatenate(ys), np.concatenate(recs), np.concatenate(mins)

    t0 = time.perf_counter()
    fit_sets = [datamodule.train_set.index]
    if peer.fit_on == "train+val":
        fit_sets.append(datamodule.val_set.index)
    parts = [p for p in (minutes(ix) for ix in fit_sets) if p[1].size]
    y_train = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    if np.unique(y_train).size < 2:
        log.error("classical peer: training minutes hold %s label(s); no row", np.unique(y_train))
        return []
    x_train = np.concatenate([p[0] for p in parts])
    train_records = {int(r) for p in parts for r in np.unique(p[2])}
    # one OpenMP thread: with torch loaded, two OpenMP runtimes spin against each other and
    # a boosting fit of a few hundred minutes takes a minute instead of a fraction of a second
    with threadpool_limits(1, user_api="openmp"):
        pipe = build_classifier(peer.classifier, int(cfg.seed)).fit(x_train, y_train)
    train_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    test_index = datamodule.test_set.index
    x_test, y_test, rec_test, min_test = minutes(test_index)
    if not len(y_test):
        log.error("classical peer scored no test minute; no row")
        return []
    with threadpool_limits(1, user_api="openmp"):
        probs = pipe.predict_proba(x_test)[:, 1]
    scores, per_record, confmat = score_minutes(
        probs,
        y_test,
        rec_test,
        min_test,
        tuple(cfg.metrics.index_cutoffs),
        [r.record_id for r in store.records],
    )
    test_s = time.perf_counter() - t1

    model = peer_model_name(peer.classifier)
    split = "training and validation" if peer.fit_on == "train+val" else "training"
    fitted_on = (
        f"{len(train_records)} {split} records of the model's split "
        f"({y_train.size} minutes, {int(y_train.sum())} apnea)"
    )
    used = sorted(set(peak_source.values()))
    n_test = len(test_index)
    n_unread = sum(cache.get(int(r)) is None for r in np.unique(test_index.record))
    tags = {
        "method": (
            "RR intervals (cleaned) -> per-minute HRV (mean RR, SDNN, RMSSD, pNN50, range, HR), "
            f"CVHR 0.01-0.05 Hz RR power (+-{peer.context_min} min), R-amplitude EDR "
            f"-> {CLASSIFIERS[peer.classifier]}"
        ),
        "r_peaks": " + ".join(
            "database .qrs annotations" if s == "qrs" else "wfdb XQRS detector" for s in used
        ),
        "classifier": CLASSIFIERS[peer.classifier],
        "fitted_on": fitted_on,
        "alignment": "corrected (features of minute i with label i)",
        "leaky": bool(datamodule.split.leaky),
        "minutes": "identical to the model's test minutes"
        if len(y_test) == n_test
        else f"{len(y_test)} of the model's {n_test} test minutes "
        f"({n_unread} test records could not be read)",
    }
    out_dir = Path(run_dir) / "classical_peer"
    out_dir.mkdir(parents=True, exist_ok=True)
    for row in per_record:
        row["r_peaks"] = peak_source.get(row["record"], "")
    (out_dir / "per_record.json").write_text(json.dumps(per_record, indent=1))
    (out_dir / "per_minute.csv").write_text(
        "record,minute,prob,target\n"
        + "".join(
            f"{store.records[r].record_id},{m},{p:.4f},{y}\n"
            for r, m, p, y in zip(rec_test, min_test, probs, y_test)
        )
    )
    if confmat is not None:
        (out_dir / "confusion_matrix.json").write_text(
            json.dumps({"rows=target,cols=pred": confmat.tolist()}, indent=1)
        )
    clf = pipe.named_steps["clf"]
    description = {
        "model": model,
        "features": list(names),
        "fitted_on": fitted_on,
        "failed": failed,
        "r_peaks": peak_source,
    }
    if hasattr(clf, "coef_"):  # standardised features: comparable weights
        description["coefficients"] = dict(zip(names, map(float, clf.coef_[0])))
        description["intercept"] = float(clf.intercept_[0])
    (out_dir / "model.json").write_text(json.dumps(description, indent=1))
    log.info(
        "%s: test acc %.3f (majority %.3f), auroc %.3f, index r %.3f",
        model,
        scores.get("test/acc", float("nan")),
        scores.get("test/majority_acc", float("nan")),
        scores.get("test/auroc", float("nan")),
        scores.get("test/index_pearson_r", float("nan")),
    )
    row = peer_result(
        result,
        model=model,
        metrics=scores,
        protocol_tags=tags,
        data=dict(datamodule.provenance) | {"classical_peer_failed": failed},
        reference_note="classical peer (HRV + CVHR + EDR features); no published numbers "
        "on this split",
        train_s=train_s,
        test_s=test_s,
        hours=len(y_test) / 60.0,
        n_params=fitted_size(pipe),
    )
    return [row.to_dict()]
