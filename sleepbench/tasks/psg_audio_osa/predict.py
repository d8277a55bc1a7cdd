"""``sleepbench predict`` for psg_audio_osa: a PSG-Audio night's EDF parts (+ its RML) -> apnea
and hypopnea events, and the night's AHI estimate.

The audio is read by :func:`~sleepbench.tasks.psg_audio_osa.data.read_night_audio`, the cache
build's own step (parts placed on the night's timeline, 16-kHz log-mel). The night is covered as
at test time: 60-s windows every 30 s, the evaluation transform
(:class:`~sleepbench.tasks.psg_audio_osa.transform.PsgAudioTransform` without augmentation), the
window softmax averaged per 80-ms frame by the test stage's
:class:`~sleepbench.tasks.psg_audio_osa.stitching.NightStitcher`. Events come from the frame
labels by the task's post-processing
(:meth:`~sleepbench.tasks.psg_audio_osa.evaluation.PostProcessing.apply`: median filter, merge
same-class gaps, drop short events).

Choices:

* **Units are seconds**, not frames: an 8-h night has 360,000 frames of 80 ms (too many for a
  readable JSON). A second's probabilities are the time-weighted mean of the frames' (12.5
  frames a second); its label is their argmax. Seconds without audio (a gap) have neither.
  Events keep the frames' 80-ms resolution.
* **The prediction never depends on the RML**: events are taken over all recorded audio. The
  AHI estimate is per hour of *recorded audio*: audio alone does not stage sleep.
* **Given the RML**, the night is placed on the RML session's timeline as in the cache (so its
  events line up), and the agreement is the task's own evaluation
  (:func:`~sleepbench.tasks.psg_audio_osa.evaluation.evaluate_segments`): frames and events
  scored inside the RML's region of interest, the AHI per hour of its total sleep time, against
  the reference AHI of :func:`~sleepbench.tasks.psg_audio_osa.labels.reference_ahi`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sleepbench.deploy.predict import (
    ENVELOPE_POINTS,
    NightPrediction,
    Predictor,
    envelope,
)
from sleepbench.io.edf import read_edf_header
from sleepbench.io.rml import RmlAnnotations, read_rml
from sleepbench.metrics.severity import SEVERITY_NAMES, ahi_to_severity
from sleepbench.signal.mel import FRAMES_PER_S, dequantize_db, energy_profile
from sleepbench.tasks.psg_audio_osa.data import (
    STRIDE_LABELS,
    NightAudio,
    night_labels,
    read_night_audio,
    subject_of_night,
)
from sleepbench.tasks.psg_audio_osa.evaluation import (
    CLASS_NAMES,
    FRAME_S,
    N_CLASSES,
    NightInfo,
    PostProcessing,
    Segment,
    evaluate_segments,
)
from sleepbench.tasks.psg_audio_osa.labels import NightReference, frame_mask, reference_ahi
from sleepbench.tasks.psg_audio_osa.night_files import ACCEPTS, NightFiles, pair_files
from sleepbench.tasks.psg_audio_osa.stitching import stitch_night

__all__ = ["NightFiles", "PsgAudioPredictor", "pair_files"]

#: half-frames (40 ms) per 1-s unit: a second holds 12.5 frames of 80 ms
_HALVES_PER_S = 25
#: hypnogram drawing order, top to bottom
_STAGE_ORDER = ["W", "REM", "N1", "N2", "N3"]
#: agreement key -> evaluation score key (frames and events of the task's night evaluation)
_SCORES = {
    "frame_accuracy": "acc",
    "frame_kappa": "kappa",
    "frame_f1_macro": "f1_macro",
    "event_precision": "event_precision",
    "event_recall": "event_recall",
    "event_f1": "event_f1",
    "event_iou": "event_iou",
    "agnostic_event_precision": "agn_event_precision",
    "agnostic_event_recall": "agn_event_recall",
    "agnostic_event_f1": "agn_event_f1",
    "collar_f1": "collar_f1",
}


def _bin_means(values: np.ndarray, weight: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Weighted means of the rows ``[n, k]`` over consecutive bins of ``size`` rows.

    Returns:
        ``(mean [n_bins, k], weight [n_bins])``: NaN rows where a bin's weight is 0 (the last
        bin may be short).
    """
    n_bins = -(-values.shape[0] // size)
    pad = n_bins * size - values.shape[0]
    w = np.pad(weight.astype(np.float64), (0, pad)).reshape(n_bins, size)
    v = np.pad(np.where(weight[:, None] > 0, values, 0.0), ((0, pad), (0, 0)))
    total = (v.reshape(n_bins, size, -1) * w[:, :, None]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / w.sum(axis=1)[:, None], w.sum(axis=1)


def _per_second(values: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Time-weighted means per 1-s unit of per-frame rows ``[n, k]`` over the frames in ``keep``
    (a second holds 12.5 frames: each frame counts as two 40-ms halves)."""
    return _bin_means(np.repeat(values, 2, axis=0), np.repeat(keep, 2), _HALVES_PER_S)


class PsgAudioPredictor(Predictor):
    """One PSG-Audio night -> apnea/hypopnea events and an AHI estimate (module docstring)."""

    accepts = ACCEPTS

    def predict(self, files: Sequence[Path]) -> NightPrediction:
        """Predict one night; see :meth:`Predictor.predict`."""
        night = pair_files(files)
        pre = self.preprocess_config()
        rml = read_rml(night.rml) if night.rml is not None else None
        ref = reference_ahi(rml) if rml is not None else None
        audio = read_night_audio(night.parts, night.part_numbers, rml, pre)
        probs = stitch_night(self.model.logits, audio.x, audio.n_pad, self.test_transform())
        layout, n = audio.layout, audio.n_labels
        covered = np.isfinite(probs).all(axis=1)
        pred = np.nan_to_num(probs).argmax(axis=1)
        has_audio = frame_mask(audio.n_pad, (0.0, layout.duration_s), layout.gaps).astype(bool)
        has_audio[n:] = False
        valid = (has_audio & covered)[:n]  # frames of recorded audio some window covered
        post = PostProcessing.from_cfg(self.cfg)
        _, events = post.apply(pred[:n], valid)
        predicted = [
            {
                "onset_s": e.onset_s,
                "duration_s": e.offset_s - e.onset_s,
                "label": CLASS_NAMES[e.label],
            }
            for e in events
        ]

        sec_probs, kept = _per_second(np.nan_to_num(probs[:n]), valid)
        units = self._units(sec_probs, kept, n)
        audio_h = float(valid.sum()) * FRAME_S / 3600.0
        counts = {c: sum(e["label"] == c for e in predicted) for c in CLASS_NAMES[1:]}
        ahi = len(predicted) / audio_h if audio_h > 0 else float("nan")
        summary: dict[str, Any] = {
            "ahi_per_h_recording": ahi,
            "severity": SEVERITY_NAMES[int(ahi_to_severity(ahi))] if audio_h > 0 else None,
            "n_events": len(predicted),
            "n_apneas": counts["apnea"],
            "n_hypopneas": counts["hypopnea"],
            "event_time_min": sum(e["duration_s"] for e in predicted) / 60.0,
            "recording_h": audio_h,
            "duration_h": layout.duration_s / 3600.0,
            "gap_h": sum(b - a for a, b in layout.gaps) / 3600.0,
        }
        timeline = [self._energy_track(audio)]
        timeline += self._series_tracks(sec_probs)
        timeline.append({"kind": "events", "name": "Predicted events", "events": predicted})
        reference = agreement = None
        if rml is not None and ref is not None:
            reference, agreement, ref_events = self._reference(
                night, rml, ref, audio, pred, covered, post, units
            )
            timeline.append(
                {"kind": "events", "name": "Reference events (RML)", "events": ref_events}
            )
            timeline.append(self._stages_track(rml, audio))
        return NightPrediction(
            record_id=night.night_id,
            recording={
                "files": [p.name for p in night.parts] + ([night.rml.name] if night.rml else []),
                "duration_s": layout.duration_s,
                "channels": [
                    {"name": audio.channel, "fs_hz": layout.fs_hz, "unit": self._unit(audio)}
                ],
                "n_parts": len(night.parts),
                "gaps_s": [[a, b] for a, b in layout.gaps],
                "parts_placed_by": layout.placed_by,
            },
            unit="second",
            unit_s=1.0,
            classes=list(CLASS_NAMES),
            units=units,
            summary=summary,
            definitions=self._definitions(post),
            events=predicted,
            reference=reference,
            agreement=agreement,
            limitations=self._limitations(summary, post, rml is not None),
            timeline=timeline,
        )

    # ---- units and tracks ----------------------------------------------------------------------
    @staticmethod
    def _units(sec_probs: np.ndarray, kept: np.ndarray, n_frames: int) -> list[dict[str, Any]]:
        """One entry per second; label and probabilities ``None`` where there was no audio."""
        end_s = n_frames * FRAME_S
        units = []
        for k, (p, w) in enumerate(zip(sec_probs, kept, strict=True)):
            unit: dict[str, Any] = {
                "index": k,
                "onset_s": float(k),
                "duration_s": round(min(1.0, end_s - k), 3),
                "label": None,
                "probabilities": None,
            }
            if w > 0:
                unit["label"] = CLASS_NAMES[int(np.argmax(p))]
                # 4 decimals: an 8-h night has 28,800 seconds; the JSON stays a few MB
                unit["probabilities"] = {c: round(float(v), 4) for c, v in zip(CLASS_NAMES, p)}
            units.append(unit)
        return units

    @staticmethod
    def _energy_track(audio: NightAudio, chunk: int = 360_000) -> dict[str, Any]:
        """The audio's energy profile per 10-ms mel frame (dB), NaN in gaps, as a signal track."""
        n_mel = min(audio.n_mel, audio.x.shape[1])  # the cache keeps 8 * n_labels frames
        energy = np.empty(n_mel, dtype=np.float32)
        for lo in range(0, n_mel, chunk):  # an 8-h night is ~370 MB of uint8 mel
            hi = min(lo + chunk, n_mel)
            energy[lo:hi] = energy_profile(dequantize_db(audio.x[:, lo:hi]))
        t = np.arange(n_mel) / FRAMES_PER_S
        for a, b in audio.layout.gaps:
            energy[(t >= a) & (t < b)] = np.nan
        return envelope(energy, FRAMES_PER_S, "Audio energy (dB re the night's loudest frame)")

    @staticmethod
    def _series_tracks(sec_probs: np.ndarray) -> list[dict[str, Any]]:
        """P(apnea) and P(hypopnea), mean per bin of whole seconds (at most ENVELOPE_POINTS)."""
        step = max(1, -(-len(sec_probs) // ENVELOPE_POINTS))
        means, _ = _bin_means(sec_probs, np.isfinite(sec_probs).all(axis=1), step)
        return [
            {
                "kind": "series",
                "name": f"P({cls})" + (f", mean per {step} s" if step > 1 else ""),
                "unit_s": float(step),
                "values": [None if np.isnan(v) else round(float(v), 4) for v in means[:, k]],
                "range": [0.0, 1.0],
            }
            for k, cls in ((2, "apnea"), (1, "hypopnea"))
        ]

    @staticmethod
    def _stages_track(rml: RmlAnnotations, audio: NightAudio) -> dict[str, Any]:
        """The RML's user staging per 30-s epoch (reference only: audio does not stage sleep)."""
        n_epochs = -(-audio.n_labels // STRIDE_LABELS)
        return {
            "kind": "stages",
            "name": "Reference sleep stages (RML)",
            "unit_s": STRIDE_LABELS * FRAME_S,
            "labels": rml.epoch_stages(STRIDE_LABELS * FRAME_S, n_epochs),
            "order": _STAGE_ORDER,
        }

    @staticmethod
    def _unit(audio: NightAudio) -> str | None:
        """The channel's physical dimension in the first part's header."""
        header = read_edf_header(audio.layout.parts[0].path)
        labels = [c.strip().lower() for c in header["channels"]]
        return header["units"][labels.index(audio.channel.strip().lower())] or None

    # ---- reference -----------------------------------------------------------------------------
    def _reference(
        self,
        night: NightFiles,
        rml: RmlAnnotations,
        ref: NightReference,
        audio: NightAudio,
        pred: np.ndarray,
        covered: np.ndarray,
        post: PostProcessing,
        units: list[dict[str, Any]],
    ) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        """The RML's events and AHI, the task's night evaluation against them, and per-second
        reference labels (added to ``units``: the class covering most of the second's scored
        time; ``None`` outside the ROI)."""
        y, mask, _ = night_labels(rml, ref, audio)
        scored = mask.astype(bool) & covered
        info = NightInfo(
            night.night_id, subject_of_night(night.night_id), ref.tst_s / 3600.0, ref.ahi
        )
        result = evaluate_segments(
            [Segment(night.night_id, pred, y.astype(np.int64), scored)],
            {night.night_id: info},
            post,
            prefix="",
        )
        row = result.per_night[0]
        n = audio.n_labels
        onehot = np.eye(N_CLASSES)[y[:n].astype(np.int64)]
        share, kept = _per_second(onehot, scored[:n])
        for unit, s, w in zip(units, share, kept, strict=True):
            unit["reference"] = CLASS_NAMES[int(np.argmax(s))] if w > 0 else None
        rml_events = rml.respiratory_events()
        events = [
            {
                "onset_s": ev.onset_s,
                "duration_s": ev.duration_s,
                "label": CLASS_NAMES[cls],
                "type": ev.label,
            }
            for ev, cls in rml_events
        ]
        reference = {
            "file": night.rml.name if night.rml else None,
            "ahi_per_h_sleep": ref.ahi,
            "severity": SEVERITY_NAMES[ref.severity],
            "n_events_in_roi": ref.n_events,
            "n_apneas": sum(cls == 2 for _, cls in rml_events),
            "n_hypopneas": sum(cls == 1 for _, cls in rml_events),
            "tst_h": ref.tst_s / 3600.0,
            "roi_s": [ref.roi_start_s, ref.roi_end_s],
        }
        ahi_pred = float(row["ahi_pred"])
        severity_pred = SEVERITY_NAMES[int(ahi_to_severity(ahi_pred))]
        agreement: dict[str, Any] = {k: result.scores.get(v) for k, v in _SCORES.items()}
        agreement.update(
            {
                "iou_threshold": post.iou_threshold,
                "n_frames_scored": int(scored.sum()),
                "n_predicted_events_in_roi": int(row["n_pred_events"]),
                "n_reference_events_in_roi": int(row["n_ref_events"]),
                "ahi_pred_per_h_sleep": ahi_pred,
                "ahi_difference": ahi_pred - ref.ahi,
                "severity_pred": severity_pred,
                "severity_match": severity_pred == SEVERITY_NAMES[ref.severity],
            }
        )
        return reference, agreement, events

    # ---- words -----------------------------------------------------------------------------------
    @staticmethod
    def _limitations(summary: dict[str, Any], post: PostProcessing, with_rml: bool) -> list[str]:
        out = [
            "The AHI estimate counts events per hour of recorded audio, not per hour of sleep: "
            "audio alone does not stage sleep, so wake time lowers it against a PSG AHI "
            "(events per hour of total sleep time).",
            f"Events are the network's frame labels after the task's post-processing (median "
            f"filter of {post.median_kernel} frames, same-class gaps < {post.merge_gap_s:g} s "
            f"merged, events < {post.min_duration_s:g} s dropped); events are not typed "
            "(obstructive / central / mixed).",
            "The network heard one microphone channel of PSG-Audio's set-up (one hospital's "
            "rooms and devices); other microphones and rooms may change its answers.",
        ]
        if summary["gap_h"] > 0:
            out.append(
                f"{summary['gap_h'] * 60:.1f} min of the night have no audio (a gap between parts "
                "or session segments): nothing is predicted there."
            )
        if with_rml:
            out.append(
                "The agreement scores frames and events inside the RML's region of interest and "
                "divides the events found there by the RML's total sleep time, as the benchmark "
                "does; reference events are the RML's apneas and hypopneas rasterised to 80-ms frames."
            )
        return out

    @staticmethod
    def _definitions(post: PostProcessing) -> dict[str, str]:
        return {
            "units": "one per second of the night: the time-weighted mean of the 80-ms frame "
            "probabilities (each frame: the window softmax averaged over the 60-s windows every "
            "30 s covering it), rounded to 4 decimals; label = the most probable class (before "
            "rounding); none where there was no audio",
            "ahi_per_h_recording": "predicted apneas + hypopneas per hour of recorded audio",
            "severity": "OSA severity of that AHI (events/h): normal < 5 <= mild < 15 <= "
            "moderate < 30 <= severe",
            "n_events": "predicted apnea and hypopnea events",
            "n_apneas": "events of class apnea",
            "n_hypopneas": "events of class hypopnea",
            "event_time_min": "total length of the predicted events, minutes",
            "recording_h": "hours of recorded audio (gaps excluded)",
            "duration_h": "hours from the session start to the end of the audio or session",
            "gap_h": "hours without audio (missing stretches between parts or segments)",
            "ahi_per_h_sleep": "reference AHI: the RML's apneas + hypopneas starting in the region "
            "of interest (lights off to on) per hour of its total sleep time (N1/N2/N3/REM)",
            "frame_accuracy": "share of scored 80-ms frames (ROI, audio) whose median-filtered "
            "predicted class equals the RML's",
            "frame_kappa": "Cohen's kappa of those frame classes",
            "frame_f1_macro": "mean over normal / hypopnea / apnea of the frame F1",
            "event_precision": f"predicted events matched one-to-one to a reference event of the "
            f"same class at IoU >= {post.iou_threshold:g}, over all predicted events in the ROI",
            "event_recall": "matched reference events over all reference events in the ROI",
            "event_f1": "harmonic mean of event precision and recall",
            "event_iou": "mean IoU of the matched event pairs",
            "agnostic_event_precision": "event precision with apnea and hypopnea as one class",
            "agnostic_event_recall": "event recall with apnea and hypopnea as one class",
            "agnostic_event_f1": "event F1 with apnea and hypopnea as one class",
            "collar_f1": f"event F1 with onset within {post.collar_s:g} s and offset within "
            f"max({post.collar_s:g} s, 50 % of the length) of the reference's",
            "ahi_pred_per_h_sleep": "predicted events in the ROI per hour of the RML's total sleep "
            "time: the AHI the benchmark compares with the reference",
            "ahi_difference": "ahi_pred_per_h_sleep minus the reference AHI, events/h",
            "severity_match": "the severity of ahi_pred_per_h_sleep equals the reference's",
        }
