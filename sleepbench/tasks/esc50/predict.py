"""``sleepbench predict`` for esc50: one sound clip -> its ESC-50 class (50 environmental sounds).

The clip is read by :func:`~sleepbench.tasks.esc50.data.read_clip`, the cache build's own step
(read at its own rate and sample type, resampled to ``preprocess.fs_hz``), and fixed to
``preprocess.clip_s`` seconds by the task's evaluation transform
(:class:`~sleepbench.tasks.esc50.data.ClipTransform`: repeated end to end, or cut). The result
is one unit (the clip) with the probabilities of the 50 classes and the top five. When the file
is named as an ESC-50 clip (``{fold}-{source}-{take}-{target}.wav``), its target class is the
reference: the agreement says whether it is the top-1 and among the top-5 predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from sleepbench.deploy.predict import InputError, NightPrediction, Predictor, envelope, softmax
from sleepbench.errors import RecordingError
from sleepbench.io.esc50 import CATEGORIES, parse_esc50_name
from sleepbench.tasks.esc50.data import CLIP_FS_HZ, read_clip

__all__ = ["Esc50Predictor", "clip_file"]

ACCEPTS = "one sound clip .wav (ESC-50: {fold}-{source}-{take}-{target}.wav)"
TOP_K = 5


def clip_file(files: Sequence[Path]) -> Path:
    """The one ``.wav`` of ``files``.

    Raises:
        InputError: a file of another kind, or not exactly one wav.
    """
    other = [f.name for f in files if f.suffix.lower() != ".wav"]
    if other:
        raise InputError(f"{', '.join(other)}: not a .wav (esc50 reads {ACCEPTS})")
    if len(files) != 1:
        raise InputError(
            f"esc50 classifies one clip at a time, got {len(files)} "
            f"({', '.join(f.name for f in files)})"
        )
    return files[0]


class Esc50Predictor(Predictor):
    """One clip -> probabilities of the 50 ESC-50 classes (see the module docstring)."""

    accepts = ACCEPTS

    def predict(self, files: Sequence[Path]) -> NightPrediction:
        """Classify one clip; see :meth:`Predictor.predict`."""
        wav = clip_file(files)
        fs = int(self.preprocess_config().get("fs_hz", CLIP_FS_HZ))
        x, info = read_clip(wav, fs)
        clip_s = float(OmegaConf.select(self.cfg, "preprocess.clip_s", default=10.0))
        item, _ = self.test_transform()(x, np.zeros(1), np.random.default_rng(0))
        logits = self.model.logits(item[None])[0]
        probs = softmax(logits)
        order = np.argsort(-probs, kind="stable")
        top = [{"class": CATEGORIES[k], "probability": float(probs[k])} for k in order[:TOP_K]]
        label = CATEGORIES[int(order[0])]
        duration_s = info.duration_s
        summary: dict[str, Any] = {
            "prediction": label,
            "probability": float(probs[order[0]]),
            "top5": top,
            "duration_s": duration_s,
            "source_fs_hz": info.fs_hz,
        }
        target = _target(wav)
        reference = agreement = None
        if target is not None:
            rank = int(np.flatnonzero(order == target)[0]) + 1
            reference = {
                "source": "file name",
                "target": target,
                "class": CATEGORIES[target],
            }
            agreement = {
                "top1_hit": rank == 1,
                "top5_hit": rank <= TOP_K,
                "reference_rank": rank,
                "reference_probability": float(probs[target]),
            }
        limitations = [
            f"The network reads {clip_s:g} s: a shorter clip is repeated end to end to that "
            "length (as in training), a longer one is cut after it.",
            "It knows the 50 ESC-50 classes only: any other sound is given one of them.",
        ]
        if duration_s > clip_s:
            limitations.insert(
                0,
                f"The clip is {duration_s:.1f} s long: only its first {clip_s:g} s were "
                "classified.",
            )
        return NightPrediction(
            record_id=wav.stem,
            recording={
                "files": [wav.name],
                "duration_s": duration_s,
                "channels": [{"name": "audio", "fs_hz": info.fs_hz, "unit": "full scale"}],
                "sample_type": info.subtype,
            },
            unit="clip",
            unit_s=min(duration_s, clip_s),
            classes=list(CATEGORIES),
            units=[
                {
                    "index": 0,
                    "onset_s": 0.0,
                    "duration_s": min(duration_s, clip_s),
                    "label": label,
                    "probabilities": dict(zip(CATEGORIES, probs.tolist(), strict=True)),
                    "logits": logits.tolist(),
                    **({"reference": reference["class"]} if reference else {}),
                }
            ],
            summary=summary,
            definitions=_DEFINITIONS,
            reference=reference,
            agreement=agreement,
            limitations=limitations,
            timeline=[envelope(x, fs, f"Audio at {fs / 1000:g} kHz (full scale 1)")],
        )


def _target(wav: Path) -> int | None:
    """The target class an ESC-50 file name states; ``None`` for another name."""
    try:
        return parse_esc50_name(wav.name, wav)[3]
    except RecordingError:
        return None


_DEFINITIONS = {
    "prediction": "the most probable of the 50 ESC-50 classes",
    "probability": "its softmax probability",
    "top5": "the five most probable classes with their probabilities",
    "duration_s": "the clip's length, s",
    "source_fs_hz": "the file's own sampling rate, Hz (resampled for the network)",
    "target": "the class index the ESC-50 file name states ({fold}-{source}-{take}-{target})",
    "top1_hit": "the reference class is the prediction",
    "top5_hit": "the reference class is among the five most probable",
    "reference_rank": "rank of the reference class among the 50 (1 = most probable)",
    "reference_probability": "the probability given to the reference class",
}
