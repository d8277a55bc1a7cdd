"""PSG-Audio data: EDF parts + RML per night -> cached whole-night log-mel with 80-ms frame
labels -> patient-wise splits -> 60-s windows (SPECS §1.1, §1.2, §1.8).

Per night, into the cache (:func:`preprocess_night`):

1. read the RML of ``data.annotations`` (``APNEA_RML`` or ``APNEA_RML_clean``): user staging
   (required: the ROI and TST come from it), respiratory events, session segments;
2. find the audio channel ``preprocess.channel`` (``Mic``; ``Tracheal``) by label in every part,
   place the parts on the session's timeline and find the gaps
   (:func:`sleepbench.io.psg_audio_parts.place_parts`);
3. stream the night at its own rate (48 kHz on real files), resample block-wise to 16 kHz with
   the polyphase filter, and compute the whole-night log-mel block-wise
   (:func:`sleepbench.signal.mel.night_log_mel`; dB referenced to the night's maximum,
   quantised to uint8); steps 2-3 are :func:`read_night_audio`, which ``sleepbench predict``
   runs on a new night too;
4. rasterise the apneas (2) and hypopneas (1) onto 80-ms frames, mask frames outside the ROI
   and inside gaps; pad the night to whole 30-s strides (at least one 60-s window) with
   masked, -80-dB padding, so every window has the same shape.

Cache record (shared contract): ``x`` uint8 ``[128, 8 * n_labels]`` (100 frames/s), ``y`` int8
``[n_labels]``, ``mask`` uint8 ``[n_labels]`` and the attrs listed in :func:`preprocess_night`.

Windows: 60 s (6000 mel frames, 750 labels) every 30 s in every stage; training leaves out
windows whose frames are all masked (they carry no loss). Items
(:class:`~sleepbench.tasks.psg_audio_osa.transform.PsgAudioTransform`): ``x`` float32
``[129, 6000]`` = the window's mel dB z-scored with its own mean/std, plus the z-scored energy
profile as row 128; training adds the SPECS §1.2 augmentations.

Protocols (split files like every task): ``psga_5fold`` (default; patient-wise 5-fold stratified
by reference-AHI severity, validation = a stratified ``split.val_fraction`` of the training
patients) and ``psga_holdout`` (patient-wise ``split.holdout`` = 70/15/15, stratified; the
upstream code's own assumption).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from sleepbench.cache.build import ProcessedRecord, SourceRecord
from sleepbench.config import to_plain
from sleepbench.data.datamodule import CachedDataModule
from sleepbench.data.splits import Split, group_kfold, holdout_subjects
from sleepbench.data.windows import WindowIndex, regular_windows
from sleepbench.io.psg_audio import EDF_DIR, discover_nights
from sleepbench.io.psg_audio_parts import NightLayout, place_parts, read_part_info, stream_audio
from sleepbench.io.rml import RmlAnnotations, read_rml
from sleepbench.signal.mel import (
    MEL_FS_HZ,
    n_frames,
    night_log_mel,
)
from sleepbench.signal.resample import resample_ratio, stream_resampled
from sleepbench.tasks.psg_audio_osa.labels import (
    STAGE_CODES,
    STAGE_EPOCH_S,
    NightReference,
    frame_mask,
    rasterise_events,
    reference_ahi,
)
from sleepbench.tasks.psg_audio_osa.transform import PsgAudioTransform

__all__ = [
    "LABELS_PER_WINDOW",
    "MEL_PER_LABEL",
    "PROTOCOLS",
    "STRIDE_LABELS",
    "NightAudio",
    "PsgAudioDataModule",
    "PsgAudioTransform",
    "night_labels",
    "padded_labels",
    "preprocess_night",
    "read_night_audio",
    "subject_of_night",
]

log = logging.getLogger(__name__)

MEL_PER_LABEL = 8  # 10-ms mel frames per 80-ms label frame
LABELS_PER_WINDOW = 750  # 60 s
STRIDE_LABELS = 375  # 30 s
PROTOCOLS = ("psga_5fold", "psga_holdout")


def subject_of_night(night_id: str) -> str:
    """Patient of a night id: the part before the first dash (``00000995-100507`` -> ``00000995``)."""
    return night_id.split("-", 1)[0]


def padded_labels(n_labels: int) -> int:
    """Labels after padding a night to whole 30-s strides, at least one 60-s window."""
    extra = max(0, n_labels - LABELS_PER_WINDOW)
    return LABELS_PER_WINDOW + STRIDE_LABELS * math.ceil(extra / STRIDE_LABELS)


# --------------------------------------------------------------------------------------------
# one night


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run torch on one thread inside the block.

    The cache build forks its workers; torch's OpenMP thread pool, once used by the parent, is not
    fork-safe and a forked worker's first multi-threaded op can hang. One thread also makes the
    per-core build speed the measured one; the build parallelises over nights instead.
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@dataclass
class NightAudio:
    """One night's audio as the cache stores it, read without its labels.

    Args:
        layout: where the parts lie on the night's timeline (gaps, rate, placement).
        channel: the parts' own label of the audio channel read.
        x: uint8 log-mel codes ``[128, 8 * n_pad]`` (100 frames/s; -80 dB padding at the end).
        n_mel: 10-ms mel frames of the audio before padding.
        n_labels: 80-ms frames of the audio before padding (``n_mel // 8``).
        n_pad: frames after padding to whole 30-s strides (:func:`padded_labels`).
    """

    layout: NightLayout
    channel: str
    x: np.ndarray
    n_mel: int
    n_labels: int
    n_pad: int


def read_night_audio(
    parts: Sequence[str | Path],
    part_numbers: Sequence[int],
    rml: RmlAnnotations | None,
    cfg: Mapping[str, Any],
) -> NightAudio:
    """Steps 2-3 of the module docstring: place the parts and compute the night's log-mel.

    The cache build (:func:`preprocess_night`) and ``sleepbench predict`` both read a night's
    audio here; only the labels (from the RML) are the cache's own.

    Args:
        parts: the EDF parts in part order.
        part_numbers: their numbers (``[001]`` -> 1), parallel to ``parts``.
        rml: the night's annotations (session start, length and segments place the parts);
            ``None``: the parts' own start times alone.
        cfg: ``channel`` (default ``Mic``) and ``gap_tolerance_s`` (s, default 1.0).

    Raises:
        RecordingError: a part without the channel (or with it at another rate), a truncated
            part, parts that cannot be placed.
    """
    channel = str(cfg.get("channel", "Mic"))
    infos = [read_part_info(p, channel, int(n)) for p, n in zip(parts, part_numbers, strict=True)]
    layout = place_parts(infos, rml, float(cfg.get("gap_tolerance_s", 1.0)))
    up, down = resample_ratio(layout.fs_hz, MEL_FS_HZ)
    n_mel = n_frames(-(-layout.n_samples * up // down))
    n_labels = n_mel // MEL_PER_LABEL
    n_pad = padded_labels(n_labels)
    audio = stream_resampled(stream_audio(layout), layout.fs_hz, MEL_FS_HZ)
    with _one_torch_thread():
        x = night_log_mel(audio, n_out_frames=MEL_PER_LABEL * n_pad)
    return NightAudio(layout, infos[0].channel, x, n_mel, n_labels, n_pad)


def night_labels(
    rml: RmlAnnotations, ref: NightReference, audio: NightAudio
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step 4 of the module docstring: frame labels, scoring mask and staging of a night.

    Args:
        rml: the night's annotations.
        ref: its :func:`~sleepbench.tasks.psg_audio_osa.labels.reference_ahi` (the ROI).
        audio: the night's audio (frame counts and gaps).

    Returns:
        ``y`` int8 ``[n_pad]`` (0 normal, 1 hypopnea, 2 apnea), ``mask`` uint8 ``[n_pad]``
        (1: inside the ROI, in no gap, before the padding), ``stages`` int8 per 30-s epoch
        (:data:`STAGE_CODES`).
    """
    n_pad = audio.n_pad
    events = [(ev.onset_s, ev.duration_s, cls) for ev, cls in rml.respiratory_events()]
    y = rasterise_events(events, n_pad)
    mask = frame_mask(n_pad, (ref.roi_start_s, ref.roi_end_s), audio.layout.gaps)
    mask[audio.n_labels :] = 0
    # the user staging per 30-s epoch, for the night report (not a model input)
    n_epochs = -(-n_pad // STRIDE_LABELS)  # 375 labels of 80 ms = one 30-s epoch
    stages = np.array(
        [STAGE_CODES[label] for label in rml.epoch_stages(STAGE_EPOCH_S, n_epochs)],
        dtype=np.int8,
    )
    return y, mask, stages


def preprocess_night(source: SourceRecord, cfg: Mapping[str, Any]) -> ProcessedRecord:
    """Features, frame labels and mask of one night; the cache build's per-record function.

    Args:
        source: ``meta`` has ``parts`` (paths in part order), ``part_numbers`` and ``rml``.
        cfg: ``{"annotations": "APNEA_RML", "channel": "Mic", "gap_tolerance_s": 1.0}``
            (:meth:`PsgAudioDataModule.preprocess_config`).

    Returns:
        ``x`` uint8 ``[128, 8 * n]``, ``y`` int8 ``[n]``, ``mask`` uint8 ``[n]`` (``n`` padded,
        see :func:`padded_labels`), ``stages`` int8 per 30-s epoch (:data:`STAGE_CODES`: the
        RML user staging, for the night figure); attrs ``duration_s``, ``source_fs_hz``, ``channel``,
        ``roi_start_s``, ``roi_end_s``, ``tst_s``, ``ahi_ref``, ``severity``, ``n_events``,
        ``gaps`` (JSON ``[[start_s, end_s], ...]``), ``annotations``, ``n_labels`` and
        ``n_mel`` (before padding), ``n_parts``, ``missing_parts``, ``placed_by``.

    Raises:
        RecordingError: RML without staging or without sleep in the ROI, a part without the
            channel (or with it at another rate), a truncated part, parts that cannot be placed.
    """
    meta = source.meta
    rml = read_rml(meta["rml"])
    ref = reference_ahi(rml)
    audio = read_night_audio(meta["parts"], meta["part_numbers"], rml, cfg)
    layout = audio.layout
    y, mask, stages = night_labels(rml, ref, audio)
    if layout.gaps:
        log.info("%s: gaps %s (%s)", source.record_id, layout.gaps, layout.placed_by)
    return ProcessedRecord(
        arrays={"x": audio.x, "y": y, "mask": mask, "stages": stages},
        attrs={
            "duration_s": float(layout.duration_s),
            "source_fs_hz": float(layout.fs_hz),
            "channel": audio.channel,
            "roi_start_s": float(ref.roi_start_s),
            "roi_end_s": float(ref.roi_end_s),
            "tst_s": float(ref.tst_s),
            "ahi_ref": float(ref.ahi),
            "severity": int(ref.severity),
            "n_events": int(ref.n_events),
            "gaps": json.dumps([[round(a, 3), round(b, 3)] for a, b in layout.gaps]),
            "annotations": str(cfg.get("annotations", "APNEA_RML")),
            "n_labels": int(audio.n_labels),
            "n_mel": int(audio.n_mel),
            "n_parts": len(layout.parts),
            "missing_parts": json.dumps(layout.missing_parts),
            "placed_by": layout.placed_by,
        },
    )


# --------------------------------------------------------------------------------------------
# datamodule


class PsgAudioDataModule(CachedDataModule):
    """PSG-Audio sleep audio -> per-80-ms apnea/hypopnea frames (method 000)."""

    task_name = "psg_audio_osa"
    reader_version = "psg-audio-2"
    preprocess_fn = staticmethod(preprocess_night)
    extra_keys = ("mask",)

    @classmethod
    def list_sources(cls, root: Path, cfg: DictConfig | None) -> list[SourceRecord]:
        """Every night under ``root``; a night without RML or without EDF parts is listed with
        ``missing`` set so the build reports it as skipped."""
        root = Path(root)
        if not root.is_dir():
            return []
        annotations = "APNEA_RML"
        if cfg is not None and cfg.get("data") is not None:
            annotations = str(cfg.data.get("annotations", annotations))
        sources = []
        for night in discover_nights(root, annotations):
            missing = None
            if not night.parts:
                missing = (
                    f"{night.rml} has no EDF parts: no {night.night_id}[NNN].edf under "
                    f"{root / EDF_DIR}"
                )
            elif night.rml is None:
                missing = (
                    f"{night.parts[0].parent} ({len(night.parts)} parts of {night.night_id}) "
                    f"has no RML: {night.expected_rml} does not exist"
                )
            paths = night.parts + ((night.rml,) if night.rml is not None else ())
            meta = {
                "parts": [str(p) for p in night.parts],
                "part_numbers": list(night.part_numbers),
                "rml": str(night.rml) if night.rml is not None else None,
            }
            sources.append(
                SourceRecord(night.night_id, subject_of_night(night.night_id), paths, meta, missing)
            )
        return sources

    def preprocess_config(self) -> dict[str, Any]:
        """What changes the cache: ``preprocess.*`` and ``data.annotations``."""
        pre = to_plain(self.cfg.preprocess) if "preprocess" in self.cfg else {}
        return {**pre, "annotations": str(self.cfg.data.get("annotations", "APNEA_RML"))}

    # ---- split -----------------------------------------------------------------------------
    def make_split(self, subject_of_record: Mapping[str, str]) -> Split:
        """``psga_5fold`` or ``psga_holdout`` over patients, stratified by severity."""
        protocol = str(self.cfg.protocol)
        fold, seed = int(self.cfg.fold), int(self.cfg.seed)
        split_cfg = self.cfg.get("split") or {}
        by_subject: dict[str, list[str]] = {}
        strata: dict[str, int] = {}
        for rec in self.store.records:
            if rec.record_id not in subject_of_record:
                continue
            subject = subject_of_record[rec.record_id]
            by_subject.setdefault(subject, []).append(rec.record_id)
            strata[subject] = max(strata.get(subject, 0), int(rec.attrs["severity"]))
        if protocol == "psga_5fold":
            n_folds = int(split_cfg.get("n_folds", 5))
            if not 0 <= fold < n_folds:
                raise ValueError(f"fold {fold} outside 0..{n_folds - 1} for {protocol}")
            folds = group_kfold(list(by_subject), n_folds, seed, strata)
            test_subjects = set(folds[fold])
            rest = {s: r for s, r in by_subject.items() if s not in test_subjects}
            train, val = holdout_subjects(
                rest, float(split_cfg.get("val_fraction", 0.15)), seed + fold, strata
            )
            test = sorted(r for s in test_subjects for r in by_subject[s])
        elif protocol == "psga_holdout":
            f_train, f_val, f_test = (float(f) for f in split_cfg.get("holdout", (0.7, 0.15, 0.15)))
            seed = seed + fold
            rest_ids, test = holdout_subjects(
                by_subject, f_test / (f_train + f_val + f_test), seed, strata
            )
            rest = {s: r for s, r in by_subject.items() if r[0] in set(rest_ids)}
            train, val = holdout_subjects(rest, f_val / (f_train + f_val), seed + 1, strata)
        else:
            raise ValueError(f"unknown protocol {protocol!r} for psg_audio_osa; known: {PROTOCOLS}")
        counts = np.bincount(list(strata.values()), minlength=4).tolist()
        notes = {"subjects": str(len(by_subject)), "severity_counts": str(counts)}
        return Split(protocol, fold, seed, train, val, test, notes=notes)

    # ---- windows ---------------------------------------------------------------------------
    def window_index(self, record_ids: list[str], stage: str) -> WindowIndex:
        """60-s windows every 30 s; ``fit`` leaves out windows whose frames are all masked."""
        parts = []
        for rid in record_ids:
            i = self.store.index_of(rid)
            n = self.store.records[i].shapes["y"][0]
            win = regular_windows(i, n, MEL_PER_LABEL, LABELS_PER_WINDOW, STRIDE_LABELS)
            if stage == "fit":
                cum = np.concatenate([[0], np.cumsum(self.store.read(i, "mask"), dtype=np.int64)])
                win = win.subset(cum[win.y_stop] - cum[win.y_start] > 0)
            parts.append(win)
        return WindowIndex.concat(parts)

    def transform(self, stage: str) -> PsgAudioTransform:
        """Features for every stage; augmentation for ``fit`` only."""
        augment = to_plain(self.cfg.augment) if "augment" in self.cfg else None
        return PsgAudioTransform(stage == "fit", augment)

    def setup(self, stage: str | None = None) -> None:
        """Shared setup, plus per-part frame-class counts and gap facts in the provenance."""
        if self.store is not None:
            return
        super().setup(stage)
        attrs = {r.record_id: r.attrs for r in self.store.records}
        self.provenance["annotations"] = str(self.cfg.data.get("annotations", "APNEA_RML"))
        self.provenance["nights_with_gaps"] = sorted(
            rid for rid, a in attrs.items() if a.get("gaps")
        )
        self.provenance["severity_counts"] = {
            part: np.bincount([int(attrs[r]["severity"]) for r in ids], minlength=4).tolist()
            for part, ids in (
                ("train", self.split.train),
                ("val", self.split.val),
                ("test", self.split.test),
            )
        }
