"""Fixtures of the EDF reader tests (``test_edf.py``, ``test_edf_bad_input.py``,
``test_edf_annotations.py``)."""

from __future__ import annotations

import datetime
from pathlib import Path

import edfio
import numpy as np
import pytest

from tests.io.edf_files import (
    BIRTHDATE,
    PATIENT_CODE,
    PATIENT_NAME,
    make_signals,
    write_edf_file,
)


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator seeded with 0, so every run writes the same files."""
    return np.random.default_rng(0)


@pytest.fixture
def mixed_edf(
    tmp_path: Path, rng: np.random.Generator
) -> tuple[Path, dict[str, tuple[np.ndarray, float, str]], edfio.Edf]:
    """A plain EDF with EEG/EOG at 100 Hz, respiration at 10 Hz and SaO2 at 1 Hz.

    Returns:
        ``(path, signals written, the edfio.Edf written)``; the header carries a patient name,
        code and birth date (``tests.io.edf_files``) and starts on 2003-07-14 22:15:30.
    """
    path = tmp_path / "mixed.edf"
    signals = make_signals(rng)
    edf = write_edf_file(
        path,
        signals,
        patient=edfio.Patient(code=PATIENT_CODE, sex="F", birthdate=BIRTHDATE, name=PATIENT_NAME),
        recording=edfio.Recording(startdate=datetime.date(2003, 7, 14)),
        starttime=datetime.time(22, 15, 30),
    )
    return path, signals, edf
