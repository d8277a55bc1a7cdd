"""Peer baseline of the psg_audio_osa task: a training-free breath-sound envelope rule.

The envelope is the cached audio's energy profile (mean of the dB mel bands, the CRNN's second
input stream) per 80-ms frame (:func:`frame_energy_db`),
smoothed over ``smooth_s``. Its running baseline is a rolling quantile over ``baseline_s`` of the
scored frames. A frame is *apnea* where the envelope lies at least ``apnea_drop_db`` below the
baseline (power below ``10^(-apnea_drop_db / 10)`` of it), *hypopnea* where it lies at least
``hypopnea_drop_db`` (but less than ``apnea_drop_db``) below. The ≥ 10-s rule is the shared
post-processing (median filter, merge gaps < 3 s, drop events < 10 s).

The two thresholds are the only fitted numbers: grid-searched on the training nights of the
fold (maximising frame macro-F1 of the raw frame labels on ROI-valid frames, computed exactly
from per-class sorted deficits, so the whole grid costs one sort), then applied to the test
nights, which are scored by the very function that scores the CRNN
(:func:`~sleepbench.tasks.psg_audio_osa.evaluation.evaluate_segments`). A deep model that cannot
beat this row has learnt little beyond "the room went quiet".
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sleepbench.signal.mel import dequantize_db, energy_profile
from sleepbench.tasks.psg_audio_osa.evaluation import (
    FRAME_S,
    N_CLASSES,
    PostProcessing,
    Segment,
    evaluate_segments,
    evaluation_tags,
    night_info,
    parity_segments,
)

log = logging.getLogger(__name__)

__all__ = [
    "MODEL_NAME",
    "EnvelopeRule",
    "envelope_deficit_db",
    "fit_thresholds",
    "frame_energy_db",
    "label_frames",
    "run_acoustic_baseline",
]

MODEL_NAME = "AcousticEnvelope"
#: mel frames per output frame
MEL_PER_FRAME = 8


def frame_energy_db(store: Any, record: int, chunk_frames: int = 360_000) -> np.ndarray:
    """Energy envelope of a cached night per 80-ms frame, in dB (≤ 0, re the night's maximum).

    The contract's energy profile (mean over the 128 mel bands of the dB mel spectrogram per
    10-ms frame, before any normalisation) averaged over the 8 mel frames of each output frame.
    The night is read in chunks (an 8-h night is ~370 MB of uint8 mel).

    Args:
        store: the cache (:class:`~sleepbench.cache.store.CacheStore`).
        record: record position.
        chunk_frames: mel frames per read (a multiple of 8).

    Returns:
        float32 ``[n_labels]``, aligned with the record's ``y``.
    """
    n_labels = int(store.records[record].shapes["y"][0])
    n_mel = int(store.records[record].shapes["x"][-1])
    chunk = max(MEL_PER_FRAME, chunk_frames - chunk_frames % MEL_PER_FRAME)
    out = np.full(n_labels, np.nan, dtype=np.float32)
    for lo in range(0, min(n_mel, n_labels * MEL_PER_FRAME), chunk):
        hi = min(lo + chunk, n_labels * MEL_PER_FRAME, n_mel)
        energy = energy_profile(
            dequantize_db(store.read(record, "x", (slice(None), slice(lo, hi))))
        )
        n = (hi - lo) // MEL_PER_FRAME
        out[lo // MEL_PER_FRAME : lo // MEL_PER_FRAME + n] = (
            energy[: n * MEL_PER_FRAME].reshape(n, MEL_PER_FRAME).mean(axis=1)
        )
    return out


@dataclass(frozen=True)
class EnvelopeRule:
    """The baseline's settings (config block ``baseline``) and fitted thresholds (dB)."""

    smooth_s: float = 3.0
    baseline_s: float = 120.0
    quantile: float = 0.5
    apnea_drop_db: float = 6.0
    hypopnea_drop_db: float = 3.0

    @classmethod
    def from_cfg(cls, cfg: Any) -> EnvelopeRule:
        """Settings from ``cfg.baseline`` (missing keys keep their defaults)."""
        b = cfg.get("baseline") or {}
        d = cls()
        return cls(
            smooth_s=float(b.get("smooth_s", d.smooth_s)),
            baseline_s=float(b.get("baseline_s", d.baseline_s)),
            quantile=float(b.get("quantile", d.quantile)),
        )


def envelope_deficit_db(
    energy_db: np.ndarray, mask: np.ndarray, rule: EnvelopeRule, frame_s: float = FRAME_S
) -> np.ndarray:
    """How far the smoothed envelope lies below its running baseline, per frame (dB).

    Args:
        energy_db: ``[n]`` envelope per frame (dB).
        mask: ``[n]`` scored frames; the others enter neither the smoothing nor the baseline.
        rule: ``smooth_s`` (centred moving mean), ``baseline_s`` and ``quantile`` (centred
            rolling quantile of the smoothed envelope).
        frame_s: seconds per frame.

    Returns:
        float64 ``[n]``: baseline minus envelope (positive = quieter than usual); NaN where not
        scored.
    """
    valid = np.asarray(mask, dtype=bool) & np.isfinite(energy_db)
    e = pd.Series(np.where(valid, energy_db, np.nan), dtype="float64")
    smooth = e.rolling(max(1, round(rule.smooth_s / frame_s)), center=True, min_periods=1).mean()
    # the baseline on a 2-s grid (rolling quantiles over thousands of frames are slow), then
    # held constant over each 2-s step
    step = max(1, round(2.0 / frame_s))
    n_steps = -(-len(smooth) // step)
    padded = np.full(n_steps * step, np.nan)
    padded[: len(smooth)] = smooth.to_numpy()
    blocks = padded.reshape(n_steps, step)
    n_valid = np.isfinite(blocks).sum(axis=1)
    sums = np.nansum(blocks, axis=1)
    coarse = pd.Series(np.divide(sums, n_valid, out=np.full(n_steps, np.nan), where=n_valid > 0))
    window = max(1, round(rule.baseline_s / (step * frame_s)))
    base = coarse.rolling(window, center=True, min_periods=1).quantile(rule.quantile).to_numpy()
    baseline = np.repeat(base, step)[: len(smooth)]
    return np.where(valid, baseline - smooth.to_numpy(), np.nan)


def label_frames(
    deficit_db: np.ndarray, apnea_drop_db: float, hypopnea_drop_db: float
) -> np.ndarray:
    """Frame labels from deficits: 2 (apnea) ≥ ``apnea_drop_db`` > 1 (hypopnea) ≥
    ``hypopnea_drop_db`` > 0; NaN deficits are 0. Returns int64 ``[n]``."""
    d = np.nan_to_num(np.asarray(deficit_db, dtype=np.float64), nan=-np.inf)
    out = np.zeros(d.shape, dtype=np.int64)
    out[d >= hypopnea_drop_db] = 1
    out[d >= apnea_drop_db] = 2
    return out


def fit_thresholds(
    deficits: Sequence[np.ndarray], targets: Sequence[np.ndarray], grid_db: np.ndarray
) -> tuple[float, float, float]:
    """Thresholds maximising the frame macro-F1 over all scored training frames.

    Every pair ``hypopnea_drop <= apnea_drop`` of ``grid_db`` is tried (equal values: no
    hypopnea). Counts come from per-class sorted deficits, so the search is exact and costs one
    sort per class.

    Args:
        deficits: per night, ``[n]`` deficits (NaN = not scored).
        targets: per night, ``[n]`` reference labels.
        grid_db: candidate thresholds (dB).

    Returns:
        ``(apnea_drop_db, hypopnea_drop_db, macro_f1)``; ties go to the first pair in grid order.
    """
    d = np.concatenate([np.asarray(x, np.float64) for x in deficits])
    t = np.concatenate([np.asarray(x, np.int64) for x in targets])
    keep = np.isfinite(d)
    d, t = d[keep], t[keep]
    grid = np.asarray(sorted(set(np.asarray(grid_db, np.float64).tolist())))
    if grid.size == 0:
        raise ValueError("empty threshold grid")
    # ge[c, j] = frames of reference class c with deficit >= grid[j]
    ge = np.stack(
        [
            len(dc) - np.searchsorted(np.sort(dc), grid, side="left")
            for dc in (d[t == c] for c in range(N_CLASSES))
        ]
    ).astype(np.float64)
    n_c = np.array([(t == c).sum() for c in range(N_CLASSES)], np.float64)
    a_idx, h_idx = np.meshgrid(np.arange(grid.size), np.arange(grid.size), indexing="ij")
    pairs = h_idx <= a_idx  # hypopnea threshold never above the apnea one
    a_idx, h_idx = a_idx[pairs], h_idx[pairs]
    # confusion[c, k] for every pair: predicted 2 = ge(a), 1 = ge(h) - ge(a), 0 = rest
    pred2 = ge[:, a_idx]
    pred1 = ge[:, h_idx] - pred2
    pred0 = n_c[:, None] - ge[:, h_idx]
    conf = np.stack([pred0, pred1, pred2], axis=1)  # [c, k, pair]
    tp = conf[np.arange(N_CLASSES), np.arange(N_CLASSES)]  # [k, pair]
    den = conf.sum(axis=0) + n_c[:, None]  # predicted k + reference k
    f1 = np.divide(2 * tp, den, out=np.zeros_like(tp), where=den > 0)
    macro = f1.mean(axis=0)
    best = int(np.argmax(macro))
    return float(grid[a_idx[best]]), float(grid[h_idx[best]]), float(macro[best])


# ---- the extra_runs hook -----------------------------------------------------------------------
def _night_arrays(store: Any, rec: int, rule: EnvelopeRule) -> tuple[np.ndarray, ...]:
    """``(energy_db, deficit_db, y, mask)`` of cached record ``rec``."""
    energy = frame_energy_db(store, rec)
    mask = store.read(rec, "mask").astype(bool)
    y = store.read(rec, "y").astype(np.int64)
    return energy, envelope_deficit_db(energy, mask, rule), y, mask


def _windowed(
    index: Any, labels: dict[int, np.ndarray], store: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Night labels cut into the test windows: ``(window, pred, target)`` for
    :func:`~sleepbench.tasks.psg_audio_osa.module.parity_segments` (target -1 where unscored)."""
    n = len(index)
    width = int((index.y_stop - index.y_start).max()) if n else 0
    pred = np.zeros((n, width), np.int64)
    target = np.full((n, width), -1, np.int64)
    for w in range(n):
        rec, lo = int(index.record[w]), int(index.y_start[w])
        hi = min(int(index.y_stop[w]), len(labels[rec]))
        y = store.read(rec, "y")[lo:hi].astype(np.int64)
        m = store.read(rec, "mask")[lo:hi].astype(bool)
        pred[w, : hi - lo] = labels[rec][lo:hi]
        target[w, : hi - lo] = np.where(m, y, -1)
    return np.arange(n), pred, target


def run_acoustic_baseline(
    cfg: Any, datamodule: Any, result: Any, run_dir: Path
) -> list[dict[str, Any]]:
    """``Task.extra_runs`` hook: the acoustic-envelope row for the fold just tested.

    Args:
        cfg: the run config (``baseline.*``, ``eval.*``, ``plots.*``).
        datamodule: the set-up data module (``store``, ``split``, ``test_set.index``).
        result: the CRNN's :class:`~sleepbench.results.RunResult` (key parts reused).
        run_dir: the CRNN run's folder; the baseline's outputs go to ``acoustic_baseline/``.

    Returns:
        One result row (:meth:`RunResult.to_dict`), none when ``baseline.enabled`` is false.
    """
    from sleepbench.results import peer_result
    from sleepbench.tasks.psg_audio_osa.module import night_artifacts

    b = cfg.get("baseline") or {}
    if not bool(b.get("enabled", True)):
        return []
    store, post = datamodule.store, PostProcessing.from_cfg(cfg)
    rule = EnvelopeRule.from_cfg(cfg)
    mode = str((cfg.get("eval") or {}).get("mode", "night"))

    t0 = time.perf_counter()
    train = [store.index_of(r) for r in datamodule.split.train]
    if b.get("max_train_nights") is not None:
        train = train[: int(b.get("max_train_nights"))]
    fit = [_night_arrays(store, rec, rule) for rec in train]
    step, top = float(b.get("grid_step_db", 0.5)), float(b.get("grid_max_db", 20.0))
    grid = np.arange(1, int(round(top / step)) + 1) * step
    apnea_db, hypopnea_db, train_f1 = fit_thresholds(
        [np.where(m, d, np.nan) for _, d, _, m in fit], [y for _, _, y, _ in fit], grid
    )
    rule = EnvelopeRule(rule.smooth_s, rule.baseline_s, rule.quantile, apnea_db, hypopnea_db)
    train_s = time.perf_counter() - t0
    log.info(
        "acoustic baseline: apnea drop %.1f dB, hypopnea drop %.1f dB (train frame macro-F1 %.3f)",
        apnea_db,
        hypopnea_db,
        train_f1,
    )

    t1 = time.perf_counter()
    index = datamodule.test_set.index
    tested = sorted({int(r) for r in np.unique(index.record)})
    labels, energy, segments, nights = {}, {}, [], {}
    for rec in tested:
        env, deficit, y, mask = _night_arrays(store, rec, rule)
        labels[rec] = label_frames(deficit, apnea_db, hypopnea_db)
        info = night_info(store, rec)
        energy[info.record_id] = env
        segments.append(Segment(info.record_id, labels[rec], y, mask))
        nights[info.record_id] = info
    if mode == "parity":
        segments, nights = parity_segments(store, index, *_windowed(index, labels, store))
    evaluation = evaluate_segments(segments, nights, post, "test/", median_frames=mode == "night")
    test_s = time.perf_counter() - t1
    hours = sum(len(v) for v in labels.values()) * FRAME_S / 3600.0

    out_dir = Path(run_dir) / "acoustic_baseline"
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = cfg.get("plots") or {}
    artifacts = night_artifacts(
        store,
        evaluation,
        post,
        MODEL_NAME,
        figures=mode == "night" and bool(plots.get("nights", True)),
        max_figures=plots.get("max_nights"),
        energy=energy,
    )
    artifacts["rule"] = asdict(rule) | {"train_frame_f1_macro": train_f1, "grid_db": grid.tolist()}
    for name, value in artifacts.items():
        if hasattr(value, "savefig"):
            value.savefig(out_dir / f"{name}.png", dpi=100, bbox_inches="tight")
        else:
            (out_dir / f"{name}.json").write_text(json.dumps(value, indent=1, default=float))

    tags = evaluation_tags(mode, post) | {
        "method": "training-free envelope rule (mean dB of the cached mel bands)",
        "fitted": (
            f"apnea drop {apnea_db:g} dB (power < {10 ** (-apnea_db / 10):.2f} x baseline), "
            f"hypopnea drop {hypopnea_db:g} dB, on {len(train)} training nights"
        ),
        "nights": "identical to the CRNN test nights",
    }
    row = peer_result(
        result,
        model=MODEL_NAME,
        metrics=evaluation.scores,
        protocol_tags=tags,
        data=dict(datamodule.provenance),
        reference_note="training-free peer baseline; no published numbers",
        train_s=train_s,
        test_s=test_s,
        hours=hours,
        n_params=2,  # the two fitted thresholds
    )
    return [row.to_dict()]
