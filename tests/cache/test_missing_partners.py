"""Every task reports a recording whose partner file is missing the same way: its ``list_sources``
flags it ``missing`` and the shared build lists it in ``skipped`` as ``MissingFile``."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from sleepbench.cache.build import SourceRecord, build_cache
from sleepbench.cache.store import CacheStore
from sleepbench.tasks.apnea_ecg.data import ApneaECGDataModule
from sleepbench.tasks.shhs_spo2.data import discover_sources
from sleepbench.tasks.sleep_edf.data import SleepEDFDataModule, preprocess_night
from sleepbench.tasks.sleep_edf.synth import write_synthetic_sleep_edf

SLEEP_EDF_PREPROCESS = {
    "eeg_channels": ["EEG Fpz-Cz", "EEG Pz-Oz"],
    "eog_channel": "EOG horizontal",
    "expected_fs_hz": 100.0,
    "fs_hz": 128.0,
    "clip_iqr_k": 20.0,
    "trim_wake_min": None,
    "max_overhang_epochs": 2,
}


def touch(root: Path, *names: str) -> None:
    """Empty files (listing looks at names only)."""
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def by_id(sources: list[SourceRecord]) -> dict[str, SourceRecord]:
    return {s.record_id: s for s in sources}


def test_sleep_edf_psg_without_hypnogram_lands_in_skipped(tmp_path: Path) -> None:
    root = tmp_path / "sleep-edf"
    write_synthetic_sleep_edf(root, n_subjects=2, nights_per_subject=1, minutes=20, seed=1)
    next(root.glob("SC4011E?-Hypnogram.edf")).unlink()
    sources = SleepEDFDataModule.list_sources(root, OmegaConf.create({}))
    orphan = by_id(sources)["SC4011E0"]
    assert orphan.paths == (root / "SC4011E0-PSG.edf",) and orphan.subject_id == "SC401"
    assert "has no hypnogram" in orphan.missing and "SC4011E?-Hypnogram.edf" in orphan.missing

    path = build_cache(
        "sleep_edf", sources, preprocess_night, SLEEP_EDF_PREPROCESS, tmp_path / "cache", "t",
        progress=False,
    )  # fmt: skip
    store = CacheStore(path)
    assert [r.record_id for r in store.records] == ["SC4001E0"]
    (row,) = store.skipped_records
    assert (row.record_id, row.error_type) == ("SC4011E0", "MissingFile")
    assert row.files == (str(root / "SC4011E0-PSG.edf"),)
    assert "has no hypnogram" in row.message


def test_sleep_edf_hypnograms_without_psg_are_one_missing_record(tmp_path: Path) -> None:
    touch(
        tmp_path,
        "SC4001E0-PSG.edf",
        "SC4001EC-Hypnogram.edf",
        "cassette/SC4022EJ-Hypnogram.edf",
        "cassette/SC4022EH-Hypnogram.edf",  # a second scorer of the same night
        "notes.txt",
    )
    sources = by_id(SleepEDFDataModule.list_sources(tmp_path, OmegaConf.create({})))
    assert sorted(sources) == ["SC4001E0", "SC4022E0"]
    assert sources["SC4001E0"].missing is None
    orphan = sources["SC4022E0"]
    assert orphan.subject_id == "SC402" and orphan.meta == {"night": 2}
    assert len(orphan.paths) == 2 and "has no PSG" in orphan.missing
    assert "SC4022E0-PSG.edf does not exist" in orphan.missing


def test_apnea_ecg_records_without_labels_or_signal_are_flagged(tmp_path: Path) -> None:
    touch(tmp_path, "a01.hea", "a01.dat", "a01.apn")
    touch(tmp_path, "a02.hea", "a02.dat")  # released record without .apn
    touch(tmp_path, "b01.hea", "b01.apn")  # signal file missing
    touch(tmp_path, "x01.hea", "x01.dat", "x01.apn")  # withheld: labels from event-2-answers
    cfg = OmegaConf.create({"protocol": "official"})
    sources = by_id(ApneaECGDataModule.list_sources(tmp_path, cfg))
    assert sorted(sources) == ["a01", "a02", "b01", "x01"]
    assert sources["a01"].missing is None
    assert sources["a02"].missing == f"record a02 lacks {tmp_path / 'a02.apn'}"
    assert sources["b01"].missing == f"record b01 lacks {tmp_path / 'b01.dat'}"
    assert sources["x01"].missing == f"record x01 lacks {tmp_path / 'event-2-answers'}"
    touch(tmp_path, "event-2-answers")
    sources = by_id(ApneaECGDataModule.list_sources(tmp_path, cfg))
    assert sources["x01"].missing is None and sources["x01"].meta["answers"]


@pytest.mark.parametrize("use_csv", [True, False])
def test_shhs_nights_without_edf_or_label_are_flagged(tmp_path: Path, use_csv: bool) -> None:
    edfs, xmls = "polysomnography/edfs/shhs1", "polysomnography/annotations-events-nsrr/shhs1"
    touch(
        tmp_path,
        f"{edfs}/shhs1-200001.edf",
        f"{xmls}/shhs1-200001-nsrr.xml",  # complete
        f"{xmls}/shhs1-200002-nsrr.xml",  # XML without its EDF
        f"{edfs}/shhs1-200003.edf",  # EDF without XML, AHI in the CSV
        f"{edfs}/shhs1-200004.edf",  # EDF without XML, no AHI in the CSV
    )
    csv = tmp_path / "datasets" / "shhs1-dataset-0.1.0.csv"
    csv.parent.mkdir()
    csv.write_text("nsrrid,ahi_a0h3a\n200001,3.0\n200003,12.0\n200004,\n")
    sources = by_id(discover_sources(tmp_path, ["shhs1"], "ahi_a0h3a", use_csv=use_csv))
    assert sources["shhs1-200001"].missing is None
    assert "has no EDF" in sources["shhs1-200002"].missing
    assert "shhs1-200002.edf does not exist" in sources["shhs1-200002"].missing
    assert (sources["shhs1-200003"].missing is None) is use_csv
    no_label = sources["shhs1-200004"].missing
    assert "has no label" in no_label and "shhs1-200004-nsrr.xml does not exist" in no_label
    assert ("no ahi_a0h3a value for nsrrid 200004" in no_label) is use_csv
