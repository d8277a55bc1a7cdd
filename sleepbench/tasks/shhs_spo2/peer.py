"""Clinical peer of the shhs_spo2 task: the oxygen desaturation index (ODI) on the same nights.

Every oximetry paper compares its model with the ODI, so the task scores it beside
MSC-Mamba-LSTM, on exactly the model's test nights (the SHHS1 hold-out and the SHHS2 second test
set), with the model's own metric objects, so the metric names match (``test/acc``,
``test/kappa``, ``test/ahi5_auroc``, ``test/shhs2_acc``...).

The signal: each night's SpO2 from its EDF, as the model's preprocessing starts it: samples
outside ``preprocess.artefact_low``/``artefact_high`` interpolated, resampled to 1 Hz, the
model's window kept (``n_samples`` at ``target_fs_hz``: the first 8 h). Neither smoothed nor
min-max scaled: after a per-night min-max scaling a "3 % drop" means nothing
(:func:`sleepbench.signal.oximetry.clean_spo2`).

The index: desaturations of at least ``drop`` percentage points below the running maximum of the
preceding ``baseline_s`` seconds, lasting ``min_duration_s`` seconds or more, per hour of signal
(:func:`sleepbench.signal.oximetry.odi_per_hour`): per hour of *recording*, as an oximeter has no
sleep staging, while the AHI it is graded against is per hour of sleep.

The severity grade from the ODI, one result row each (``peer.drops`` x ``peer.cutoffs``):

- ``ODI3 (AHI cut-offs)``: the AHI cut-offs 5 / 15 / 30 applied to the ODI as they are (the
  common clinical shortcut), nothing fitted;
- ``ODI3 (fitted cut-offs)``: the three cut-offs chosen on the SHHS1 *training* nights of the
  split (:func:`fit_cutoffs`: every monotone triple of candidate values, maximising training
  accuracy, ties broken by kappa; ``peer.fit_metric: kappa`` swaps the two);
- the same for ODI4. ``task_variant: binary5`` / ``binary15`` use one cut-off (5 or 15).

Rows are tagged ``fitted_on`` (``nothing`` or the number of training nights). Class
probabilities, needed for the AUROC metrics, are the hard grade softened by an ordinal logistic
of log(1 + ODI) around the cut-offs (:func:`odi_probs`): the grade is their argmax and every
"AHI >= cut-off" probability rises with the ODI, so ``ahi5_auroc`` / ``ahi15_auroc`` are the
AUROCs of the ODI itself (the same for both cut-off rows).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sleepbench.errors import RecordingError
from sleepbench.io.edf import read_edf
from sleepbench.metrics.severity import SEVERITY_CUTOFFS, collapse_probs_at_cutoff
from sleepbench.signal.oximetry import clean_spo2, odi_per_hour
from sleepbench.tasks.shhs_spo2.data import TASK_VARIANTS, SeverityTarget
from sleepbench.tasks.shhs_spo2.odi_grading import fit_cutoffs, grade, odi_probs

log = logging.getLogger(__name__)

__all__ = [
    "CUTOFF_MODES",
    "OdiPeer",
    "fit_cutoffs",
    "grade",
    "night_odi",
    "odi_probs",
    "peer_model_name",
    "run_odi_peer",
]

#: ``peer.cutoffs`` entries -> how the row names them
CUTOFF_MODES = {"ahi": "AHI cut-offs", "fitted": "fitted cut-offs"}


def peer_model_name(drop: float, mode: str) -> str:
    """Row name, e.g. ``"ODI3 (fitted cut-offs)"``."""
    return f"ODI{drop:g} ({CUTOFF_MODES[mode]})"


@dataclass(frozen=True)
class OdiPeer:
    """Settings of the peer (config block ``peer``)."""

    enabled: bool = True
    drops: tuple[float, ...] = (3.0, 4.0)
    cutoffs: tuple[str, ...] = ("ahi", "fitted")
    baseline_s: int = 120
    min_duration_s: int = 10
    fit_metric: str = "acc"

    @classmethod
    def from_cfg(cls, cfg: Any) -> OdiPeer:
        """Settings from ``cfg.peer`` (missing keys keep their defaults)."""
        p = cfg.get("peer") or {}
        d = cls()
        peer = cls(
            enabled=bool(p.get("enabled", d.enabled)),
            drops=tuple(float(x) for x in p.get("drops", d.drops)),
            cutoffs=tuple(str(x) for x in p.get("cutoffs", d.cutoffs)),
            baseline_s=int(p.get("baseline_s", d.baseline_s)),
            min_duration_s=int(p.get("min_duration_s", d.min_duration_s)),
            fit_metric=str(p.get("fit_metric", d.fit_metric)),
        )
        unknown = set(peer.cutoffs) - set(CUTOFF_MODES)
        if unknown:
            raise ValueError(f"peer.cutoffs: unknown {sorted(unknown)}; use {list(CUTOFF_MODES)}")
        if peer.fit_metric not in ("acc", "kappa"):
            raise ValueError(f"peer.fit_metric must be acc or kappa, got {peer.fit_metric!r}")
        return peer


def night_odi(edf: str | Path, pre: Mapping[str, Any], peer: OdiPeer) -> tuple[dict, float]:
    """ODI of one night for every ``peer.drops``, on the model's window of its SpO2.

    Args:
        edf: the night's EDF.
        pre: the ``preprocess`` config (channel aliases, artefact bounds, ``n_samples`` at
            ``target_fs_hz``).
        peer: the settings.

    Returns:
        ``({drop: events per hour}, hours of signal analysed)``.

    Raises:
        RecordingError: unreadable EDF, no SpO2 channel, no valid sample.
    """
    rec = read_edf(edf, {"spo2": list(pre["spo2_channels"])})
    sig = rec.signals["spo2"]
    window_s = int(round(float(pre["n_samples"]) / float(pre["target_fs_hz"])))
    try:
        x = clean_spo2(
            sig.data,
            sig.fs_hz,
            (float(pre["artefact_low"]), float(pre["artefact_high"])),
            n_samples=window_s,
        )
    except ValueError as err:
        raise RecordingError(edf, f"SpO2 channel {sig.name!r}: {err}") from None
    odi = odi_per_hour(x, peer.drops, peer.baseline_s, peer.min_duration_s)
    return odi, x.size / 3600.0


# --------------------------------------------------------------------------------------------
# metrics


def _scores(
    probs: np.ndarray, target: np.ndarray, visit: np.ndarray, variant: str
) -> tuple[dict[str, float], dict[str, Any]]:
    """Test metrics (the model's metric objects and names) and confusion matrices."""
    from sleepbench.tasks.shhs_spo2.module import (
        BINARY_CUTOFFS,
        TEST_SETS,
        _test_metrics,
        compute_test_set,
    )

    cutoff_class = TASK_VARIANTS[variant][1]
    scores: dict[str, float] = {}
    confmats: dict[str, Any] = {}
    for v, infix in TEST_SETS.items():
        sel = visit == v
        if not sel.any():
            continue
        metrics = _test_metrics(f"test/{infix}", variant)
        p = torch.as_tensor(probs[sel], dtype=torch.float32)
        y = torch.as_tensor(target[sel], dtype=torch.long)
        if cutoff_class is None:
            metrics["severity"].update(p, y)
            for ahi, cls in BINARY_CUTOFFS.items():
                metrics[f"ahi{ahi}"].update(collapse_probs_at_cutoff(p, cls), (y >= cls).long())
        else:
            (binary,) = metrics.values()
            binary.update(p[:, 1], y)
        set_scores, set_confmats = compute_test_set(metrics, v)
        scores.update(set_scores)
        confmats.update(set_confmats)
    return scores, confmats


def _figure(odi: dict[str, np.ndarray], ahi: dict[str, np.ndarray], cuts: dict, drops) -> Any:
    """ODI against AHI (log-log) for training and test nights, with both sets of cut-offs."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(drops), 3.8), layout="constrained")
    axes = fig.subplots(1, len(drops), squeeze=False)[0]
    for ax, drop in zip(axes, drops):
        for part, marker in (("train", "o"), ("test", "s")):
            x, y = ahi[part], odi[part][drop]
            if x.size:
                label = "training nights" if part == "train" else "test nights (SHHS1 + SHHS2)"
                ax.scatter(x + 0.5, y + 0.5, s=14, marker=marker, alpha=0.6, label=label)
        for c in SEVERITY_CUTOFFS:
            ax.axvline(c + 0.5, color="0.6", lw=0.8)
            ax.axhline(c + 0.5, color="0.6", lw=0.8, ls=":")
        for c in cuts.get(drop, ()):
            ax.axhline(c + 0.5, color="tab:red", lw=0.8)
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="AHI (events/h of sleep) + 0.5",
            ylabel=f"ODI{drop:g} (events/h of recording) + 0.5",
            title=f"ODI{drop:g}: grey AHI cut-offs, red fitted",
        )
        ax.legend(fontsize=7, loc="upper left")
    return fig


# --------------------------------------------------------------------------------------------
# the extra_runs hook


def run_odi_peer(cfg: Any, datamodule: Any, result: Any, run_dir: Path) -> list[dict[str, Any]]:
    """``Task.extra_runs`` hook: the ODI rows for the fold just tested.

    Args:
        cfg: the run config (``peer.*``, ``preprocess.*``, ``task_variant``, ``labels.*``).
        datamodule: the set-up :class:`~sleepbench.tasks.shhs_spo2.data.ShhsSpO2DataModule`.
        result: the model's :class:`~sleepbench.results.RunResult` (key parts reused).
        run_dir: the model run's folder; the peer's outputs go to its ``odi_peer/`` subfolder
            (per-night ODI and grades, cut-offs, confusion matrices, an ODI-vs-AHI figure).

    Returns:
        One result row per ODI threshold and cut-off mode; none when ``peer.enabled`` is false.
    """
    from sleepbench.results import peer_result

    peer = OdiPeer.from_cfg(cfg)
    if not peer.enabled or not peer.drops or not peer.cutoffs:
        return []
    variant = str(cfg.task_variant)
    n_classes, cutoff_class = TASK_VARIANTS[variant]
    target_of = SeverityTarget(cutoff_class).label
    ahi_cuts = SEVERITY_CUTOFFS if cutoff_class is None else (SEVERITY_CUTOFFS[cutoff_class - 1],)
    store, pre = datamodule.store, cfg.preprocess
    sources = {s.record_id: s for s in datamodule.list_sources(datamodule.root, cfg)}
    visits = datamodule.record_visit()

    def measure(records: Sequence[int]) -> tuple[list[int], dict[float, np.ndarray], float, dict]:
        kept, odi, hours, failed = [], {d: [] for d in peer.drops}, 0.0, {}
        for rec in records:
            rid = store.records[rec].record_id
            try:
                source = sources.get(rid)
                if source is None or not source.meta.get("edf"):
                    raise RecordingError(datamodule.root, f"{rid}: EDF no longer found")
                values, h = night_odi(source.meta["edf"], pre, peer)
            except RecordingError as err:
                log.error("ODI peer could not score %s: %s", rid, err)
                failed[rid] = str(err)
                continue
            kept.append(rec)
            hours += h
            for d in peer.drops:
                odi[d].append(values[d])
        return kept, {d: np.asarray(v, dtype=np.float64) for d, v in odi.items()}, hours, failed

    def severity(records: Sequence[int]) -> np.ndarray:
        return np.array([int(store.records[r].attrs["severity"]) for r in records], np.int64)

    t0 = time.perf_counter()
    train, train_odi, _, train_failed = measure([store.index_of(r) for r in datamodule.split.train])
    fitted: dict[float, tuple[tuple[float, ...], float, float]] = {}
    if "fitted" in peer.cutoffs and train:
        y_train = target_of(severity(train))
        for d in peer.drops:
            fitted[d] = fit_cutoffs(train_odi[d], y_train, n_classes, peer.fit_metric)
    elif "fitted" in peer.cutoffs:
        log.error("ODI peer: no training night could be measured; no fitted-cut-off rows")
    train_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    tested = sorted({int(r) for r in np.unique(datamodule.test_set.index.record)})
    test, test_odi, hours, test_failed = measure(tested)
    measure_s = time.perf_counter() - t1
    if not test:
        log.error("ODI peer scored no test night; no ODI rows")
        return []
    target = target_of(severity(test))
    visit = visits[np.asarray(test, dtype=np.int64)]

    out_dir = Path(run_dir) / "odi_peer"
    out_dir.mkdir(parents=True, exist_ok=True)
    per_record = [
        {
            "record": store.records[r].record_id,
            "visit": int(visits[r]),
            "ahi": float(store.records[r].attrs["ahi"]),
            "target": int(target[i]),
            **{f"odi{d:g}": round(float(test_odi[d][i]), 4) for d in peer.drops},
        }
        for i, r in enumerate(test)
    ]
    base_tags = {
        "method": (
            f"ODI: >= d % below the {peer.baseline_s}-s running maximum for "
            f">= {peer.min_duration_s} s, per hour of the model's window (1 Hz, unscaled)"
        ),
        "task_variant": variant,
        "ahi_variable": str(cfg.labels.ahi_variable),
        "nights": "identical to the model's test nights"
        if not test_failed
        else f"{len(test_failed)} test nights could not be scored",
    }
    rows, confmats, cutoff_report = [], {}, {}
    for d in peer.drops:
        for mode in peer.cutoffs:
            if mode == "fitted" and d not in fitted:
                continue
            t2 = time.perf_counter()
            cuts = tuple(ahi_cuts) if mode == "ahi" else fitted[d][0]
            probs = odi_probs(test_odi[d], cuts)
            scores, confmats[peer_model_name(d, mode)] = _scores(probs, target, visit, variant)
            pred = probs.argmax(axis=1)
            for i, row in enumerate(per_record):
                row[f"pred_odi{d:g}_{mode}"] = int(pred[i])
            if mode == "fitted":
                fitted_on = (
                    f"{len(train)} SHHS1 training nights (max training {peer.fit_metric}; "
                    f"acc {fitted[d][1]:.3f}, kappa {fitted[d][2]:.3f})"
                )
                n_params = len(cuts)
            else:
                fitted_on = "nothing (AHI cut-offs as-is)"
                n_params = 0
            cutoff_report[peer_model_name(d, mode)] = {
                "cutoffs": list(cuts),
                "fitted_on": fitted_on,
            }
            tags = base_tags | {
                "drop_pct": f"{d:g}",
                "cutoffs": " / ".join(f"{c:.3g}" for c in cuts) + " events/h",
                "fitted_on": fitted_on,
            }
            rows.append(
                peer_result(
                    result,
                    model=peer_model_name(d, mode),
                    metrics=scores,
                    protocol_tags=tags,
                    data=dict(datamodule.provenance)
                    | {"odi_failed": {**train_failed, **test_failed}},
                    reference_note="clinical peer (oxygen desaturation index); no published "
                    "numbers on this split",
                    train_s=train_s if mode == "fitted" else 0.0,
                    test_s=measure_s + time.perf_counter() - t2,
                    hours=hours,
                    n_params=n_params,
                ).to_dict()
            )
            log.info(
                "%s: cut-offs %s, test acc %.3f kappa %.3f",
                peer_model_name(d, mode),
                cuts,
                scores.get("test/acc", float("nan")),
                scores.get("test/kappa", float("nan")),
            )
    (out_dir / "per_record.json").write_text(json.dumps(per_record, indent=1))
    (out_dir / "cutoffs.json").write_text(json.dumps(cutoff_report, indent=1))
    (out_dir / "confusion_matrix.json").write_text(json.dumps(confmats, indent=1))
    fig = _figure(
        {"train": train_odi, "test": test_odi},
        {
            "train": np.array([float(store.records[r].attrs["ahi"]) for r in train]),
            "test": np.array([row["ahi"] for row in per_record]),
        },
        {d: fitted[d][0] for d in fitted},
        peer.drops,
    )
    fig.savefig(out_dir / "odi_vs_ahi.png", dpi=100)
    return rows
