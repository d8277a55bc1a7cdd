"""One SHHS night -> its cache record: the SpO2 channel read and preprocessed, the AHI label from
the dataset CSV and/or the NSRR XML events (see :mod:`sleepbench.tasks.shhs_spo2.data`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sleepbench.cache.build import ProcessedRecord, SourceRecord
from sleepbench.errors import RecordingError
from sleepbench.io.edf import read_edf
from sleepbench.io.nsrr_xml import ahi_from_events, read_nsrr_xml
from sleepbench.metrics.severity import ahi_to_severity
from sleepbench.recording import Signal
from sleepbench.signal.spo2 import interpolate_artefacts, preprocess_spo2
from sleepbench.tasks.shhs_spo2.nsrr_layout import AHI_RULES

__all__ = ["SpO2Night", "preprocess_record", "read_spo2_night"]


def _xml_ahi(xml: str | None, variable: str) -> tuple[float | None, str]:
    """AHI from the XML events with ``variable``'s rule, or (None, why not)."""
    if xml is None:
        return None, "no NSRR XML"
    if variable not in AHI_RULES:
        return None, f"no event rule for {variable!r} (known: {sorted(AHI_RULES)})"
    try:
        return float(ahi_from_events(read_nsrr_xml(xml), rule=AHI_RULES[variable])), ""
    except RecordingError as err:
        return None, err.reason


def _label(source: SourceRecord, labels: Mapping[str, Any]) -> dict[str, Any]:
    """AHI, its source and both candidate values of one night (see the module docstring)."""
    variable = str(labels["ahi_variable"])
    mode = str(labels["source"])
    if mode not in ("auto", "csv", "xml"):
        raise ValueError(f"labels.source must be auto, csv or xml, got {mode!r}")
    ahi_csv = source.meta.get("ahi_csv")
    want_xml = mode == "xml" or bool(labels.get("compare_xml", True)) or ahi_csv is None
    ahi_xml, why = _xml_ahi(source.meta.get("xml"), variable) if want_xml else (None, "")
    where = source.meta.get("xml") or source.meta.get("edf") or source.record_id
    if mode == "csv" or (mode == "auto" and ahi_csv is not None):
        if ahi_csv is None:
            raise RecordingError(
                where, f"no {variable} value for nsrrid {source.subject_id} in CSV"
            )
        ahi, used = float(ahi_csv), "csv"
    else:
        if ahi_xml is None:
            raise RecordingError(where, f"no {variable} in the CSV and none from the XML: {why}")
        ahi, used = ahi_xml, "xml"
    tolerance = labels.get("max_disagreement")
    if tolerance is not None and ahi_csv is not None and ahi_xml is not None:
        if abs(ahi_csv - ahi_xml) > float(tolerance):
            raise RecordingError(
                where,
                f"{variable} disagrees: CSV {ahi_csv:.2f} vs XML events {ahi_xml:.2f} events/h "
                f"(labels.max_disagreement {tolerance})",
            )
    nan = float("nan")
    return {
        "ahi": ahi,
        "ahi_source": used,
        "ahi_csv": nan if ahi_csv is None else float(ahi_csv),
        "ahi_xml": nan if ahi_xml is None else float(ahi_xml),
    }


def read_spo2_night(edf: str | Path, pre: Mapping[str, Any], record_id: str = "") -> SpO2Night:
    """Read one night's SpO2 from an SHHS EDF and preprocess it as the network takes it.

    Args:
        edf: the EDF file.
        pre: the ``preprocess`` config (channel aliases, artefact bounds, rate, length, smoothing).
        record_id: the night's name, for messages and the returned record.

    Returns:
        :class:`SpO2Night`: the network input ``x`` float32 ``[n_samples]``, the raw channel
        (``signal``, %, native rate) and the fraction of samples outside the artefact bounds.

    Raises:
        RecordingError: EDF unreadable or truncated, SpO2 channel missing/flat, too many
            artefacts (``preprocess.max_artefact_fraction``).
    """
    rec = read_edf(edf, {"spo2": list(pre["spo2_channels"])}, record_id=record_id)
    sig = rec.signals["spo2"]
    low, high = float(pre["artefact_low"]), float(pre["artefact_high"])
    try:
        _, invalid = interpolate_artefacts(sig.data, low, high)
    except ValueError as err:
        raise RecordingError(edf, f"SpO2 channel {sig.name!r}: {err}") from None
    fraction = float(invalid.mean())
    if fraction > float(pre["max_artefact_fraction"]):
        raise RecordingError(
            edf,
            f"{100 * fraction:.1f} % of SpO2 samples outside [{low:g}, {high:g}] % "
            f"(preprocess.max_artefact_fraction {pre['max_artefact_fraction']})",
        )
    try:
        x = preprocess_spo2(
            sig.data,
            sig.fs_hz,
            target_fs_hz=float(pre["target_fs_hz"]),
            n_samples=int(pre["n_samples"]),
            artefact_low=low,
            artefact_high=high,
            smoothing=str(pre["smoothing"]),
            smoothing_params=pre.get("smoothing_params") or {},
            pad_value=float(pre["pad_value"]),
        )
    except ValueError as err:
        raise RecordingError(edf, f"SpO2 preprocessing failed: {err}") from None
    return SpO2Night(x=x, signal=sig, artefact_fraction=fraction)


@dataclass(frozen=True)
class SpO2Night:
    """One night's SpO2 as read by :func:`read_spo2_night`.

    Args:
        x: float32 ``[n_samples]`` network input (1 Hz, smoothed, min-max scaled, padded).
        signal: the raw SpO2 channel (%, native rate), as the EDF holds it.
        artefact_fraction: share of samples outside the artefact bounds (0-1).
    """

    x: np.ndarray
    signal: Signal
    artefact_fraction: float


def preprocess_record(source: SourceRecord, cfg: Mapping[str, Any]) -> ProcessedRecord:
    """Read one night's SpO2 and label it; the cache build's per-record function.

    Args:
        source: from :func:`discover_sources`.
        cfg: ``{"preprocess": ..., "labels": ...}`` as returned by
            :meth:`ShhsSpO2DataModule.preprocess_config`.

    Returns:
        ``x`` float32 ``[1, n_samples]`` in [0, 1] (padding = ``pad_value``), ``y`` int8 ``[1]``
        (severity class), attrs: visit, nsrrid, AHI values and source, the SpO2 channel's label,
        native rate (Hz), unit, duration (s) and artefact fraction.

    Raises:
        RecordingError: EDF missing, SpO2 channel missing/flat/unreadable, too many artefacts,
            no AHI, or CSV and XML AHI disagreeing beyond ``labels.max_disagreement``.
    """
    pre, labels = cfg["preprocess"], cfg["labels"]
    edf = source.meta.get("edf")
    if edf is None:
        raise RecordingError(
            source.meta.get("xml") or source.record_id,
            f"annotation file has no EDF: {source.meta.get('expected_edf')} does not exist",
        )
    night = read_spo2_night(edf, pre, record_id=source.record_id)
    sig = night.signal
    label = _label(source, labels)
    severity = int(ahi_to_severity(label["ahi"]))
    return ProcessedRecord(
        arrays={"x": night.x[None, :], "y": np.array([severity], dtype=np.int8)},
        attrs={
            "visit": source.meta["visit"],
            "nsrrid": source.meta["nsrrid"],
            "severity": severity,
            **label,
            "channel": sig.name,
            "fs_hz": float(sig.fs_hz),
            "unit": sig.unit,
            "duration_s": float(sig.data.size / sig.fs_hz),
            "artefact_fraction": night.artefact_fraction,
        },
    )
