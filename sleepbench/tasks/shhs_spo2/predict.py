"""``sleepbench predict`` for shhs_spo2: one SHHS EDF (+ its NSRR XML) -> the night's severity.

The SpO2 is read and preprocessed by
:func:`~sleepbench.tasks.shhs_spo2.night_record.read_spo2_night`, the function the cache build
runs. The network grades the whole night (one unit): severity class
and its probabilities (or P(AHI >= cut-off) for a binary variant). The summary adds the signal's
own oximetry measures (3 % ODI, T90, mean and nadir SpO2): they are measured, not predicted. Given
the NSRR XML, the reference AHI is computed from its scored events with the run's AHI rule
(``labels.ahi_variable``) and compared with the prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sleepbench.deploy.predict import InputError, NightPrediction, Predictor, envelope, softmax
from sleepbench.io.nsrr_xml import ahi_events, ahi_from_events, read_nsrr_xml
from sleepbench.metrics.severity import SEVERITY_CUTOFFS, SEVERITY_NAMES, ahi_to_severity
from sleepbench.signal.oximetry import oximetry_summary
from sleepbench.signal.spo2 import interpolate_artefacts
from sleepbench.tasks.shhs_spo2.data import AHI_RULES, TASK_VARIANTS, read_spo2_night

__all__ = ["ShhsSpO2Predictor", "pair_files"]

#: AHI band (events/h) of each severity class
AHI_BANDS = {
    "normal": [0.0, SEVERITY_CUTOFFS[0]],
    "mild": [SEVERITY_CUTOFFS[0], SEVERITY_CUTOFFS[1]],
    "moderate": [SEVERITY_CUTOFFS[1], SEVERITY_CUTOFFS[2]],
    "severe": [SEVERITY_CUTOFFS[2], None],
}
_NSRR_SUFFIX = "-nsrr"


def pair_files(files: Sequence[Path]) -> tuple[Path, Path | None]:
    """The night's EDF and, when given, its NSRR XML (``<night>-nsrr.xml`` or ``<night>.xml``).

    Raises:
        InputError: no EDF, several EDFs or XMLs, a file of another kind, or an XML named for
            another night.
    """
    edfs = [f for f in files if f.suffix.lower() == ".edf"]
    xmls = [f for f in files if f.suffix.lower() == ".xml"]
    other = [f.name for f in files if f not in edfs and f not in xmls]
    if other:
        raise InputError(f"{', '.join(other)}: not an EDF or NSRR XML file (shhs_spo2 reads those)")
    if len(edfs) != 1:
        raise InputError(
            f"shhs_spo2 needs exactly one EDF, got {len(edfs)}"
            + (f" ({', '.join(f.name for f in edfs)})" if edfs else "")
        )
    if len(xmls) > 1:
        raise InputError(f"at most one NSRR XML per night, got {', '.join(f.name for f in xmls)}")
    edf = edfs[0]
    xml = xmls[0] if xmls else None
    if xml is not None:
        night = xml.stem.removesuffix(_NSRR_SUFFIX)
        if night != edf.stem:
            raise InputError(
                f"{xml.name} is not the annotation of {edf.name} (expected {edf.stem}"
                f"{_NSRR_SUFFIX}.xml)"
            )
    return edf, xml


class ShhsSpO2Predictor(Predictor):
    """One night of SHHS SpO2 -> OSA severity (see the module docstring)."""

    accepts = "one SHHS EDF (with an SpO2 channel), optionally its NSRR XML <night>-nsrr.xml"

    def predict(self, files: Sequence[Path]) -> NightPrediction:
        """Grade one night; see :meth:`Predictor.predict`."""
        edf, xml = pair_files(files)
        pre = self.preprocess_config()["preprocess"]
        night = read_spo2_night(edf, pre, record_id=edf.stem)
        sig = night.signal
        variant = str(self.cfg.task_variant)
        n_out, cutoff_class = TASK_VARIANTS[variant]
        logits = self.model.logits(night.x[None, None, :])[0]
        probs = softmax(logits)
        if cutoff_class is None:
            classes = list(SEVERITY_NAMES)
        else:
            cutoff = SEVERITY_CUTOFFS[cutoff_class - 1]
            classes = [f"AHI < {cutoff:g}", f"AHI >= {cutoff:g}"]
        label = classes[int(np.argmax(probs))]
        duration_s = sig.data.size / sig.fs_hz
        analysed_s = min(duration_s, int(pre["n_samples"]) / float(pre["target_fs_hz"]))
        oxi = oximetry_summary(
            sig.data,
            sig.fs_hz,
            artefact_bounds=(float(pre["artefact_low"]), float(pre["artefact_high"])),
        )
        summary: dict[str, Any] = {
            "prediction": label,
            "probabilities": dict(zip(classes, probs.tolist(), strict=True)),
        }
        if cutoff_class is None:
            summary["severity"] = label
            summary["ahi_band_events_per_h"] = AHI_BANDS[label]
            summary["p_ahi_ge_5"] = float(probs[1:].sum())
            summary["p_ahi_ge_15"] = float(probs[2:].sum())
        else:
            summary[f"p_ahi_ge_{SEVERITY_CUTOFFS[cutoff_class - 1]:g}"] = float(probs[1])
        summary.update(
            {
                "odi3_per_h": oxi.odi_per_h,
                "t90_min": oxi.t90_min,
                "mean_spo2_pct": oxi.mean_spo2_pct,
                "nadir_spo2_pct": oxi.nadir_spo2_pct,
                "artefact_pct": 100.0 * night.artefact_fraction,
                "analysed_h": analysed_s / 3600.0,
            }
        )
        reference, agreement, events = self._reference(xml, classes, cutoff_class, label)
        # the overview shows the signal the network read: artefacts (probe off: 0 %) interpolated
        clean, _ = interpolate_artefacts(
            sig.data, float(pre["artefact_low"]), float(pre["artefact_high"])
        )
        timeline = [envelope(clean, sig.fs_hz, f"SpO2 ({sig.unit or '%'}), artefacts interpolated")]
        if events:
            timeline.append(
                {"kind": "events", "name": "Reference AHI events (XML)", "events": events}
            )
        return NightPrediction(
            record_id=edf.stem,
            recording={
                "files": [edf.name] + ([xml.name] if xml else []),
                "duration_s": duration_s,
                "channels": [{"name": sig.name, "fs_hz": sig.fs_hz, "unit": sig.unit}],
            },
            unit="night",
            unit_s=analysed_s,
            classes=classes,
            units=[
                {
                    "index": 0,
                    "onset_s": 0.0,
                    "duration_s": analysed_s,
                    "label": label,
                    "logits": logits.tolist(),
                    "probabilities": summary["probabilities"],
                    **({"reference": reference["class"]} if reference else {}),
                }
            ],
            summary=summary,
            definitions=self._definitions(variant),
            events=[],
            reference=reference,
            agreement=agreement,
            limitations=[
                f"The network sees SpO2 only, first {analysed_s / 3600:.1f} h of the night "
                f"(preprocess.n_samples {int(pre['n_samples'])} at {float(pre['target_fs_hz']):g} Hz); "
                "it grades the night, it does not locate events or count them.",
                "ODI, T90 and the SpO2 values are measured on the signal, not predicted; an ODI "
                "is not an AHI (it misses apneas without desaturation and arousal-scored "
                "hypopneas).",
            ],
            timeline=timeline,
        )

    def _reference(
        self, xml: Path | None, classes: list[str], cutoff_class: int | None, label: str
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None, list[dict[str, Any]]]:
        """The XML's AHI and severity, the agreement, and its respiratory events for the report."""
        if xml is None:
            return None, None, []
        ann = read_nsrr_xml(xml)
        variable = str(self.cfg.labels.ahi_variable)
        rule = AHI_RULES.get(variable, "3a")
        ahi = float(ahi_from_events(ann, rule=rule))
        severity = int(ahi_to_severity(ahi))
        ref_class = (
            classes[severity] if cutoff_class is None else classes[int(severity >= cutoff_class)]
        )
        # the events the AHI counts under the rule (apneas; hypopneas with desaturation/arousal)
        events = [
            {"onset_s": e.onset_s, "duration_s": e.duration_s, "label": e.label}
            for e in ahi_events(ann, rule=rule)
        ]
        reference = {
            "file": xml.name,
            "ahi_variable": variable,
            "ahi_events_per_h": ahi,
            "severity": SEVERITY_NAMES[severity],
            "class": ref_class,
            "n_ahi_events": len(events),
        }
        agreement = {"class_match": ref_class == label}
        if cutoff_class is None:
            agreement["class_distance"] = abs(classes.index(label) - severity)
        return reference, agreement, events

    @staticmethod
    def _definitions(variant: str) -> dict[str, str]:
        return {
            "prediction": f"the network's class for the night (task variant {variant})",
            "probabilities": "softmax of the network's logits per class",
            "severity": "OSA severity of the AHI (events/h): normal < 5 <= mild < 15 <= "
            "moderate < 30 <= severe",
            "ahi_band_events_per_h": "AHI range of the predicted class, events/h (None: open)",
            "p_ahi_ge_5": "P(mild) + P(moderate) + P(severe): probability that AHI >= 5/h",
            "p_ahi_ge_15": "P(moderate) + P(severe): probability that AHI >= 15/h",
            "odi3_per_h": "oxygen desaturation index: falls of >= 3 points below the highest "
            "SpO2 of the previous 120 s lasting >= 10 s, per hour of recording (measured)",
            "t90_min": "minutes with SpO2 below 90 % (measured)",
            "mean_spo2_pct": "mean SpO2 after artefact interpolation, % (measured)",
            "nadir_spo2_pct": "lowest SpO2 after artefact interpolation, % (measured)",
            "artefact_pct": "share of samples outside the artefact bounds, interpolated, %",
            "analysed_h": "hours of SpO2 the network saw",
            "ahi_events_per_h": "reference AHI from the XML's scored events with the run's rule",
            "class_match": "the predicted class equals the reference's",
            "class_distance": "number of severity classes between prediction and reference",
        }
