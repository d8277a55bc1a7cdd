"""shhs_spo2 data: NSRR layout discovery, AHI labels (CSV vs XML events), bad input, split, SMOTE
(the NSRR download is in ``test_shhs_download.py``)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from sleepbench.cache.build import SourceRecord
from sleepbench.config import load_config
from sleepbench.data.oversample import ArrayWindowDataset
from sleepbench.data.samplers import ClassBalancedSampler
from sleepbench.errors import RecordingError
from sleepbench.io.edf_write import write_edf
from sleepbench.metrics.severity import ahi_to_severity
from sleepbench.recording import Signal
from sleepbench.signal.spo2 import preprocess_spo2
from sleepbench.tasks.shhs_spo2.data import (
    SeverityTarget,
    ShhsSpO2DataModule,
    discover_sources,
    find_dataset_csv,
    preprocess_record,
    read_ahi_table,
)
from sleepbench.tasks.shhs_spo2.synth import DATASET_VERSION, write_synthetic_shhs

N_SAMPLES = 1800  # 30 min at 1 Hz: the synthetic nights below last 22-34 min


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    root = tmp_path_factory.mktemp("shhs")
    return root, write_synthetic_shhs(root, n_subjects=24, hours=0.5, seed=3)


def _cfg(root: Path, tmp: Path, *extra: str):
    return load_config(
        "shhs_spo2",
        [
            f"data.root={root}",
            f"data.cache_dir={tmp / 'cache'}",
            f"output.splits_dir={tmp / 'splits'}",
            f"preprocess.n_samples={N_SAMPLES}",
            "data.build_workers=1",
            "trainer.enable_progress_bar=false",
            *extra,
        ],
    )


def _pre_cfg(dm_cfg) -> dict:
    return ShhsSpO2DataModule(dm_cfg).preprocess_config()


# ---- layout and labels -----------------------------------------------------------------------


def test_discovers_nights_of_both_visits(synth, tmp_path) -> None:
    root, records = synth
    sources = discover_sources(root, ["shhs1", "shhs2"], "ahi_a0h3a")
    assert sorted(s.record_id for s in sources) == sorted(r.record_id for r in records)
    by_id = {s.record_id: s for s in sources}
    for r in records:
        s = by_id[r.record_id]
        assert s.subject_id == str(r.nsrrid) and s.meta["visit"] == r.visit
        assert Path(s.meta["edf"]) == r.edf_path and Path(s.meta["xml"]) == r.xml_path
        # the dataset CSV is a source file: editing it changes the cache fingerprint
        assert any(p.suffix == ".csv" for p in s.paths)
        assert s.meta["ahi_csv"] == pytest.approx(r.ahi_a0h3a)
    assert ShhsSpO2DataModule.list_sources(tmp_path / "nothing", _cfg(root, tmp_path)) == []


def test_newest_dataset_csv_wins(tmp_path) -> None:
    for version in ("0.9.0", "0.21.0", "0.13.2"):
        (tmp_path / "datasets").mkdir(exist_ok=True)
        (tmp_path / "datasets" / f"shhs1-dataset-{version}.csv").write_text("nsrrid\n")
    assert find_dataset_csv(tmp_path, "shhs1").name == "shhs1-dataset-0.21.0.csv"
    assert find_dataset_csv(tmp_path, "shhs2") is None


def test_ahi_table_reads_values_and_names_missing_columns(tmp_path) -> None:
    path = tmp_path / "shhs1-dataset-0.1.0.csv"
    path.write_text("nsrrid,ahi_a0h3a,ahi_a0h4\n200001,12.5,8\n200002,,3\n200003,n/a,1\n")
    assert read_ahi_table(path, "ahi_a0h3a") == {"200001": 12.5}
    assert read_ahi_table(path, "AHI_A0H4") == {"200001": 8.0, "200002": 3.0, "200003": 1.0}
    with pytest.raises(RecordingError, match="ahi_a0h3a.*ahi_a0h4"):
        read_ahi_table(path, "ahi_c0h4")


@pytest.mark.parametrize("variable", ["ahi_a0h3a", "ahi_a0h4"])
def test_ahi_from_xml_events_equals_csv(synth, tmp_path, variable) -> None:
    """Both label sources agree on every synthetic night, for both NSRR rules."""
    root, records = synth
    cfg = _pre_cfg(_cfg(root, tmp_path, f"labels.ahi_variable={variable}"))
    sources = discover_sources(root, ["shhs1", "shhs2"], variable)
    truth = {r.record_id: getattr(r, variable) for r in records}
    for source in sources:
        out = preprocess_record(source, cfg)
        assert out.attrs["ahi_source"] == "csv"
        assert out.attrs["ahi_xml"] == pytest.approx(out.attrs["ahi_csv"], abs=1e-9)
        assert out.attrs["ahi"] == pytest.approx(truth[source.record_id])
        assert int(out.arrays["y"][0]) == ahi_to_severity(truth[source.record_id])


def test_missing_csv_value_falls_back_to_xml_events(synth, tmp_path) -> None:
    root, records = synth
    src = discover_sources(root, ["shhs1"], "ahi_a0h3a")[0]
    no_csv = SourceRecord(src.record_id, src.subject_id, src.paths, {**src.meta, "ahi_csv": None})
    out = preprocess_record(no_csv, _pre_cfg(_cfg(root, tmp_path)))
    truth = next(r for r in records if r.record_id == src.record_id)
    assert out.attrs["ahi_source"] == "xml" and np.isnan(out.attrs["ahi_csv"])
    assert out.attrs["ahi"] == pytest.approx(truth.ahi_a0h3a)
    with pytest.raises(RecordingError, match="no ahi_a0h3a value"):
        preprocess_record(no_csv, _pre_cfg(_cfg(root, tmp_path, "labels.source=csv")))
    # a disagreement beyond the tolerance is bad input
    off = SourceRecord(src.record_id, src.subject_id, src.paths, {**src.meta, "ahi_csv": 99.0})
    with pytest.raises(RecordingError, match="disagrees"):
        preprocess_record(off, _pre_cfg(_cfg(root, tmp_path, "labels.max_disagreement=1.0")))


def test_xml_only_labels_ignore_the_csv(synth, tmp_path) -> None:
    root, records = synth
    cfg = _cfg(root, tmp_path, "labels.source=xml", "labels.ahi_variable=ahi_a0h4")
    sources = ShhsSpO2DataModule.list_sources(root, cfg)
    assert sources and all(s.meta["ahi_csv"] is None and s.meta["csv"] is None for s in sources)
    truth = {r.record_id: r.ahi_a0h4 for r in records}
    out = preprocess_record(sources[0], _pre_cfg(cfg))
    assert out.attrs["ahi_source"] == "xml"
    assert out.attrs["ahi"] == pytest.approx(truth[sources[0].record_id])


def test_spo2_by_alias_at_its_own_rate_is_resampled(synth, tmp_path) -> None:
    """An SpO2 channel stored at 4 Hz under another alias gives the 1-Hz pipeline's output."""
    root, _ = synth
    src = discover_sources(root, ["shhs1"], "ahi_a0h3a")[0]
    t = np.arange(1200 * 4) / 4.0
    spo2 = 95.0 - 4.0 * np.exp(-(((t - 600.0) / 40.0) ** 2))
    edf = write_edf(
        tmp_path / "fast.edf",
        [Signal("SpO2", spo2, 4.0, "%"), Signal("EEG", np.sin(t), 4.0, "uV")],
        physical_ranges={"SpO2": (0.0, 100.0)},
    )
    fast = SourceRecord("shhs1-1", "1", (edf,), {**src.meta, "edf": str(edf)})
    out = preprocess_record(fast, _pre_cfg(_cfg(root, tmp_path)))
    assert out.attrs["channel"] == "SpO2" and out.attrs["fs_hz"] == 4.0
    assert out.arrays["x"].shape == (1, N_SAMPLES) and out.arrays["x"].dtype == np.float32
    ref = preprocess_spo2(spo2[::4], 1.0, n_samples=N_SAMPLES)
    np.testing.assert_allclose(out.arrays["x"][0, :1100], ref[:1100], atol=0.03)
    assert np.all(out.arrays["x"][0, 1200:] == 0.0)  # zero padding after 20 min


# ---- bad input -------------------------------------------------------------------------------


def test_bad_nights_are_skipped_with_reason_and_the_run_goes_on(synth, tmp_path) -> None:
    root = tmp_path / "shhs"
    shutil.copytree(synth[0], root)
    edfs = root / "polysomnography" / "edfs" / "shhs1"
    hr = np.full(1800, 60.0) + np.arange(1800) % 7
    write_edf(edfs / "shhs1-200001.edf", [Signal("H.R.", hr, 1.0, "bpm")])  # no SpO2 channel
    junk = np.random.default_rng(0).uniform(5.0, 45.0, 1800).round()  # every value impossible
    write_edf(
        edfs / "shhs1-200002.edf",
        [Signal("SaO2", junk, 1.0, "%")],
        physical_ranges={"SaO2": (0.0, 100.0)},
    )
    (edfs / "shhs1-200003.edf").unlink()  # its XML now refers to a missing EDF
    dm = ShhsSpO2DataModule(_cfg(root, tmp_path))
    dm.setup("fit")
    skipped = dict(dm.store.skipped)
    assert set(skipped) == {"shhs1-200001", "shhs1-200002", "shhs1-200003"}
    assert "not found; channels present: ['H.R.']" in skipped["shhs1-200001"]
    assert "no valid SpO2 sample" in skipped["shhs1-200002"]
    assert "has no EDF" in skipped["shhs1-200003"] and "shhs1-200003.edf" in skipped["shhs1-200003"]
    assert {r["record"] for r in dm.provenance["skipped"]} == set(skipped)
    used = set(dm.split.train + dm.split.val + dm.split.test)
    assert not used & set(skipped) and len(dm.train_set) > 0


def test_mostly_artefact_night_exceeds_the_configured_fraction(synth, tmp_path) -> None:
    root, _ = synth
    src = discover_sources(root, ["shhs1"], "ahi_a0h3a")[0]
    spo2 = np.full(1800, 96.0)
    spo2[:1000] = 0.0  # probe off for 55 % of the night
    edf = write_edf(
        tmp_path / "off.edf",
        [Signal("SaO2", spo2, 1.0, "%")],
        physical_ranges={"SaO2": (0.0, 100.0)},
    )
    night = SourceRecord(src.record_id, src.subject_id, (edf,), {**src.meta, "edf": str(edf)})
    out = preprocess_record(night, _pre_cfg(_cfg(root, tmp_path)))
    assert out.attrs["artefact_fraction"] == pytest.approx(1000 / 1800)
    with pytest.raises(RecordingError, match="55.6 % of SpO2 samples"):
        preprocess_record(
            night, _pre_cfg(_cfg(root, tmp_path, "preprocess.max_artefact_fraction=0.5"))
        )


# ---- protocol --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def module_dm(synth, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dm")
    dm = ShhsSpO2DataModule(_cfg(synth[0], tmp))
    dm.setup("fit")
    return dm


def test_split_is_subject_level_stratified_and_states_the_shhs2_overlap(module_dm) -> None:
    dm = module_dm
    split = dm.split
    records = {r.record_id: r for r in dm.store.records}
    subject = {rid: r.subject_id for rid, r in records.items()}
    parts = {"train": split.train, "val": split.val, "test": split.test}
    for ids in parts.values():
        assert all(records[r].attrs["visit"] == "shhs1" for r in ids)
    sets = {k: {subject[r] for r in v} for k, v in parts.items()}
    assert not (
        sets["train"] & sets["val"] or sets["train"] & sets["test"] or sets["val"] & sets["test"]
    )
    # 24 participants, 6 per class: 10 % test = 2 (quota by class), 10 % of the 22 left = 2
    assert len(split.test) == 2 and len(split.val) == 2 and len(split.train) == 20
    sev = lambda ids: sorted(int(records[r].attrs["severity"]) for r in ids)  # noqa: E731
    assert len(set(sev(split.test))) == 2 and len(set(sev(split.val))) == 2
    shhs2 = [rid for rid, r in records.items() if r.attrs["visit"] == "shhs2"]
    assert sorted(dm.shhs2_records()) == sorted(shhs2)
    s2 = {subject[r] for r in shhs2}
    notes = split.notes
    assert notes["shhs2_participants"] == str(len(s2))
    assert notes["shhs2_overlap_train"] == str(len(s2 & sets["train"]))
    assert notes["shhs2_overlap_val"] == str(len(s2 & sets["val"]))
    assert notes["shhs2_overlap_test"] == str(len(s2 & sets["test"]))
    assert "not an external set" in notes["shhs2_overlap"]
    assert dm.provenance["split_notes"] == notes
    # the test loader serves SHHS1 test nights first, then every SHHS2 night
    test_ids = [dm.store.records[i].record_id for i in dm.test_set.index.record]
    assert test_ids == split.test + sorted(shhs2)
    assert dm.record_visit().tolist() == [int(r.attrs["visit"][-1]) for r in dm.store.records]


def test_shhs2_unseen_keeps_only_participants_outside_training(module_dm) -> None:
    dm = module_dm
    seen = {
        dm.store.records[dm.store.index_of(r)].subject_id for r in dm.split.train + dm.split.val
    }
    every = dm.shhs2_records()
    expected = [r for r in every if dm.store.records[dm.store.index_of(r)].subject_id not in seen]
    dm.cfg.split.shhs2 = "unseen"
    try:
        unseen = dm.shhs2_records()
        # which follow-ups are unseen depends on the draw (a handful of test participants);
        # the rule does not: exactly those whose participant is outside train and validation
        assert sorted(unseen) == sorted(expected) and len(unseen) < len(every)
        dm.cfg.split.shhs2 = "none"
        assert dm.shhs2_records() == []
    finally:
        dm.cfg.split.shhs2 = "all"


def test_smote_balances_the_in_memory_training_set(module_dm) -> None:
    dm = module_dm
    assert isinstance(dm.train_set, ArrayWindowDataset)
    counts = np.bincount(dm.train_set.labels(), minlength=4)
    assert len(set(counts.tolist())) == 1
    assert dm.provenance["balance"]["train_counts_after"] == counts.tolist()
    assert sum(dm.provenance["balance"]["train_counts"]) == len(dm.split.train)
    assert dm.train_set[0]["x"].shape == (1, N_SAMPLES)
    assert dm.provenance["labels"]["n_both"] == len(dm.store.records)
    assert dm.provenance["labels"]["mae"] == pytest.approx(0.0, abs=1e-9)


def test_sampler_and_binary_labels(synth, tmp_path) -> None:
    dm = ShhsSpO2DataModule(
        _cfg(synth[0], tmp_path, "balance.method=sampler", "task_variant=binary15")
    )
    dm.setup("fit")
    assert not isinstance(dm.train_set, ArrayWindowDataset)
    sampler = dm.train_sampler(dm.train_set)
    assert isinstance(sampler, ClassBalancedSampler) and sampler.classes == [0, 1]
    severity = dm.train_set.labels()
    ys = [int(dm.train_set[i]["y"]) for i in range(len(dm.train_set))]
    assert ys == (severity >= 2).astype(int).tolist()
    assert SeverityTarget(1).label(np.array([0, 1, 2, 3])).tolist() == [0, 1, 1, 1]
    assert SeverityTarget(None).label(np.array([0, 3])).tolist() == [0, 3]


def test_synthetic_csv_layout_matches_reader(synth) -> None:
    root, records = synth
    path = root / "datasets" / f"shhs1-dataset-{DATASET_VERSION}.csv"
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert read_ahi_table(path, "ahi_a0h3a") == {
        r["nsrrid"]: pytest.approx(float(r["ahi_a0h3a"])) for r in rows
    }
