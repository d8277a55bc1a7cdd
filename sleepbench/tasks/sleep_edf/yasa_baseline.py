"""Peer baseline: YASA's pretrained EEG + EOG sleep-staging classifier on the same test nights.

YASA (Vallat & Walker, eLife 2021; ``yasa.SleepStaging``) is a LightGBM classifier over
hand-crafted spectral/temporal features, trained on thousands of NSRR nights and shipped with the
package (no download). It is run on exactly the epochs TinyUStaging is scored on: the test nights
of the fold, each over the span kept in the cache (after trimming to the hypnogram and the
optional wake trimming; ``epoch_offset`` / ``n_epochs`` of the cached night). Its per-epoch
probabilities go through :func:`~sleepbench.tasks.sleep_edf.module.staging_scores`, so the two
rows are scored by the same code against the same reference labels.

Input choice: YASA expects the raw signal in volts at >= 80 Hz with its own filtering and 100-Hz
rate, not our 128-Hz clipped and robust-scaled model input. The cache therefore stays lean
(model inputs only) and the test nights' EEG + EOG are re-read from their EDF files at the native
rate (edfio memory-maps them; a fold's test nights are 15-20 % of the data). The time-of-night
features YASA uses are computed over the same span as the model sees.
"""

from __future__ import annotations

import json
import logging
import platform
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sleepbench.errors import RecordingError
from sleepbench.io.edf import read_edf
from sleepbench.signal.resample import resample_to
from sleepbench.tasks.sleep_edf.data import CLASS_NAMES, EPOCH_S
from sleepbench.tasks.sleep_edf.module import data_protocol_tags, night_artifacts, staging_scores

log = logging.getLogger(__name__)

MODEL_NAME = "YASA"
#: YASA's stage names -> ours
_STAGE = {"WAKE": "W", "W": "W", "N1": "N1", "N2": "N2", "N3": "N3", "REM": "REM", "R": "REM"}
#: physical unit -> factor to volts (mne Raw holds volts; YASA converts to µV itself)
_TO_VOLT = {"uv": 1e-6, "µv": 1e-6, "mv": 1e-3, "v": 1.0, "nv": 1e-9}


def _volts(data: np.ndarray, unit: str, path: Path, label: str) -> np.ndarray:
    factor = _TO_VOLT.get(unit.strip().lower())
    if factor is None:
        raise RecordingError(path, f"channel {label!r} has unit {unit!r}; expected uV, mV or V")
    return data.astype(np.float64) * factor


def classifier_name(with_eog: bool = True) -> str:
    """File name of the pretrained classifier YASA's ``predict("auto")`` picks."""
    import yasa

    folder = Path(yasa.__file__).parent / "classifiers"
    name = "clf_eeg+eog" if with_eog else "clf_eeg"
    found = sorted(folder.glob(f"{name}_lgb_*.joblib"))
    return found[-1].name if found else "missing"


def yasa_night_probs(psg: Path, eeg: str, eog: str, epoch_offset: int, n_epochs: int) -> np.ndarray:
    """YASA's stage probabilities for epochs ``[epoch_offset, epoch_offset + n_epochs)`` of a PSG.

    Args:
        psg: the ``*-PSG.edf`` file.
        eeg: EEG channel label (``"EEG Fpz-Cz"``).
        eog: EOG channel label (``"EOG horizontal"``).
        epoch_offset: first 30-s epoch, counted from the recording start.
        n_epochs: number of epochs.

    Returns:
        float32 ``[n_epochs, 5]`` with columns in :data:`CLASS_NAMES` order.

    Raises:
        RecordingError: unreadable file, missing channel, unknown unit, or a span past the end.
    """
    import mne
    import yasa

    rec = read_edf(psg, channels={"eeg": [eeg], "eog": [eog]})
    fs = rec.signals["eeg"].fs_hz
    per_epoch = round(EPOCH_S * fs)
    if abs(per_epoch - EPOCH_S * fs) > 1e-6:
        raise RecordingError(psg, f"{fs} Hz gives no whole number of samples per 30-s epoch")
    chans = []
    for key in ("eeg", "eog"):
        sig = rec.signals[key]
        data = sig.data if sig.fs_hz == fs else resample_to(sig.data, sig.fs_hz, fs)
        chans.append(_volts(data, sig.unit, psg, sig.name))
    lo, hi = epoch_offset * per_epoch, (epoch_offset + n_epochs) * per_epoch
    if min(c.shape[0] for c in chans) < hi:
        raise RecordingError(psg, f"epochs up to {epoch_offset + n_epochs} lie past the signal end")
    raw = mne.io.RawArray(
        np.stack([c[lo:hi] for c in chans]),
        mne.create_info([eeg, eog], fs, ["eeg", "eog"]),
        verbose=False,
    )
    with warnings.catch_warnings():
        # the shipped classifier was pickled with an older scikit-learn (LabelEncoder only)
        warnings.simplefilter("ignore")
        hyp = yasa.SleepStaging(raw, eeg_name=eeg, eog_name=eog).predict()
    proba = hyp.proba.rename(columns=lambda c: _STAGE.get(str(c).upper(), str(c)))
    proba = proba.reindex(columns=list(CLASS_NAMES), fill_value=0.0).to_numpy(np.float32)
    if proba.shape[0] != n_epochs:
        raise RecordingError(psg, f"YASA returned {proba.shape[0]} epochs, expected {n_epochs}")
    return proba


def run_yasa(cfg: Any, datamodule: Any, result: Any, run_dir: Path) -> list[dict[str, Any]]:
    """``Task.extra_runs`` hook: the YASA row for the fold just tested.

    Args:
        cfg: the run config (``yasa.*``, ``preprocess.*``, ``output.runs_dir``).
        datamodule: the set-up :class:`~sleepbench.tasks.sleep_edf.data.SleepEDFDataModule`.
        result: the TinyUStaging :class:`~sleepbench.results.RunResult` (key parts reused).
        run_dir: the model run's folder; YASA's outputs go to its ``yasa/`` subfolder.

    Returns:
        One result row (a dict as :meth:`RunResult.to_dict` makes), or none when
        ``yasa.enabled`` is false. Figures and per-night predictions go to ``<run dir>/yasa/``.
    """
    from sleepbench.results import peer_result

    if not bool(cfg.yasa.enabled):
        return []
    import yasa

    store = datamodule.store
    sources = {s.record_id: s for s in datamodule.list_sources(datamodule.root, cfg)}
    eeg, eog = str(cfg.yasa.eeg_channel), str(cfg.preprocess.eog_channel)
    # exactly the nights the model was tested on (nights too short for a sequence are out of both)
    tested = sorted({int(r) for r in np.unique(datamodule.test_set.index.record)})
    probs, target, records, epochs, failed = [], [], [], [], {}
    hours, t0 = 0.0, time.perf_counter()
    for i in tested:
        rec = store.records[i]
        n, offset = int(rec.attrs["n_epochs"]), int(rec.attrs["epoch_offset"])
        try:
            source = sources.get(rec.record_id)
            if source is None:
                raise RecordingError(datamodule.root, f"{rec.record_id}: PSG no longer found")
            p = yasa_night_probs(Path(source.paths[0]), eeg, eog, offset, n)
        except RecordingError as err:
            log.error("YASA could not score %s: %s", rec.record_id, err)
            failed[rec.record_id] = str(err)
            continue
        probs.append(p)
        target.append(store.read(i, "y").astype(np.int64))
        records.append(np.full(n, i))
        epochs.append(np.arange(n))
        hours += n * EPOCH_S / 3600.0
    test_s = time.perf_counter() - t0
    if not probs:
        log.error("YASA scored no test night; no YASA row")
        return []
    records_arr, epochs_arr = np.concatenate(records), np.concatenate(epochs)
    probs_t = torch.from_numpy(np.concatenate(probs))
    target_t = torch.from_numpy(np.concatenate(target))
    subjects = [store.records[r].subject_id for r in records_arr]
    scores, confmat, per_subject = staging_scores(probs_t, target_t, subjects, "test/")

    run_dir = Path(run_dir) / "yasa"
    run_dir.mkdir(parents=True, exist_ok=True)
    artifacts = night_artifacts(
        store,
        records_arr,
        epochs_arr,
        probs_t.argmax(1).numpy(),
        target_t.numpy(),
        model_name=MODEL_NAME,
        plots=bool(cfg.plots.hypnograms),
    )
    artifacts["confusion_matrix"] = {
        "rows=reference,cols=predicted": confmat.tolist(),
        "classes": list(CLASS_NAMES),
    }
    artifacts["per_subject"] = per_subject
    for name, value in artifacts.items():
        if hasattr(value, "savefig"):
            value.savefig(run_dir / f"{name}.png", dpi=100, bbox_inches="tight")
        else:
            (run_dir / f"{name}.json").write_text(json.dumps(value, indent=1))

    tags = data_protocol_tags(cfg) | {
        "channels": f"{eeg} + {eog} (raw, native rate)",
        "classifier": classifier_name(),
        "pretrained": "YASA release (trained on NSRR nights, not on this data)",
        "nights": "identical to the TinyUStaging test nights"
        if not failed
        else f"{len(failed)} test nights could not be scored",
    }
    row = peer_result(
        result,
        model=MODEL_NAME,
        metrics=scores,
        protocol_tags=tags,
        data=dict(datamodule.provenance) | {"yasa_failed": failed},
        reference_note="YASA (Vallat & Walker, eLife 2021) publishes no Sleep-EDF numbers",
        train_s=0.0,
        test_s=test_s,
        hours=hours,
        hardware={
            "accelerator": "cpu",
            "cpu": platform.processor() or platform.machine(),
            "yasa": yasa.__version__,
        },
    )
    return [row.to_dict()]
