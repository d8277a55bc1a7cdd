"""Small EDF files for the EDF reader tests (``test_edf*.py``): what they hold, how to write them.

Helpers only (no tests); the fixtures built on them are in ``tests/io/conftest.py``.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import edfio
import numpy as np

#: Length of every test file (s).
DURATION_S = 60
#: Patient fields written into the header; no reader output may carry them.
PATIENT_NAME = "Haagse_Harry"
PATIENT_CODE = "MCH-0234567"
BIRTHDATE = datetime.date(1951, 5, 2)


def make_signals(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, float, str]]:
    """Four channels of :data:`DURATION_S` seconds at mixed rates.

    Args:
        rng: source of the noise.

    Returns:
        ``label -> (physical values, rate (Hz), unit)``: EEG and EOG at 100 Hz in uV, SaO2 at
        1 Hz in %, respiration at 10 Hz in mV.
    """
    t = np.arange(DURATION_S * 100) / 100
    return {
        "EEG Fpz-Cz": (40 * np.sin(2 * np.pi * 1.7 * t) + rng.normal(0, 5, t.size), 100, "uV"),
        "EOG horizontal": (rng.normal(0, 30, t.size), 100, "uV"),
        "SaO2": (np.linspace(88, 98, DURATION_S) + rng.normal(0, 0.3, DURATION_S), 1, "%"),
        "Resp oro-nasal": (rng.normal(0, 1, DURATION_S * 10), 10, "mV"),
    }


def write_edf_file(
    path: Path,
    signals: Mapping[str, tuple[np.ndarray, float, str]],
    *,
    annotations: Sequence[edfio.EdfAnnotation] = (),
    record_s: float = 1.0,
    **kwargs: Any,
) -> edfio.Edf:
    """Write ``signals`` (as :func:`make_signals` returns them) to ``path`` with edfio.

    Args:
        path: the file to write.
        signals: ``label -> (physical values, rate (Hz), unit)``.
        annotations: EDF+ annotations; with any the file is EDF+C, else plain EDF.
        record_s: data record duration (s).
        kwargs: further :class:`edfio.Edf` arguments (patient, recording, start time).

    Returns:
        The :class:`edfio.Edf` written.
    """
    edf = edfio.Edf(
        [
            edfio.EdfSignal(data, fs, label=label, physical_dimension=unit)
            for label, (data, fs, unit) in signals.items()
        ],
        data_record_duration=record_s,
        # edfio writes EDF+C whenever it is given annotations, even none: pass them only if any.
        **({"annotations": annotations} if annotations else {}),
        **kwargs,
    )
    edf.write(path)
    return edf
