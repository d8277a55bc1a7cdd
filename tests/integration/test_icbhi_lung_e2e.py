"""icbhi_lung end to end on a tiny synthetic ICBHI set: train.run -> LSRM row + log-mel and HTS-AT
peer rows on the same cycles, ICBHI Se/Sp/score overall and per device, the official split tagged not
patient-disjoint, and the leaderboard with the published official-split scores of other methods."""

from __future__ import annotations

from pathlib import Path

import pytest

from sleepbench.config import isolated_outputs
from sleepbench.data.splits import SplitError
from sleepbench.leaderboard import build_tables
from sleepbench.results import ResultsStore
from sleepbench.train import run

pytestmark = pytest.mark.integration

TINY = [
    "synthetic.n_patients=8",
    "trainer.max_epochs=1",
    "data.batch_size=8",
    "split.val_fraction=0.3",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    tmp = tmp_path_factory.mktemp("icbhi_e2e")
    return tmp, run("icbhi_lung", [*isolated_outputs(tmp), *TINY])


def test_model_and_peer_rows_score_the_same_cycles(trained) -> None:
    _, rows = trained
    assert [r["model"] for r in rows] == [
        "LSRM (MRINet + HTS-AT)",
        "log-mel statistics + gradient boosting",
        "HTS-AT (time branch only)",
    ]
    model, logmel, peer = rows
    for row in rows:
        m = row["metrics"]
        assert row["data"]["synthetic"] is True and row["protocol"] == "icbhi_official"
        for key in ("icbhi_score", "icbhi_se", "icbhi_sp", "acc", "f1_macro"):
            assert 0.0 <= m[f"test/{key}"] <= 1.0
        assert m["test/icbhi_score"] == pytest.approx((m["test/icbhi_se"] + m["test/icbhi_sp"]) / 2)
        # per-device cycle counts add up to the test cycles
        n_dev = sum(v for k, v in m.items() if k.startswith("test/n_"))
        assert n_dev == sum(row["data"]["cycles"]["test"].values())
        # the synthetic official list puts one patient on both sides, as the real one does
        assert row["protocol_tags"]["not_patient_disjoint"].startswith("patients ")
        assert row["protocol_tags"]["leaky"] is True
    assert (
        model["protocol_tags"]["branches"] == "both" and peer["protocol_tags"]["branches"] == "time"
    )
    assert model["n_params"] > peer["n_params"] > 0 and logmel["n_params"] > 0
    # the classical row: fitted on the training cycles, no network tags of the LSRM
    assert logmel["protocol_tags"]["fitted_on"] == "train"
    assert logmel["protocol_tags"]["classifier"] == "gradient boosting"
    assert "branches" not in logmel["protocol_tags"]
    assert logmel["data"]["cycles"]["test"] == model["data"]["cycles"]["test"]


def test_leaderboard_shows_other_methods_on_the_official_split(trained) -> None:
    tmp, _ = trained
    lines = next(
        t for t in build_tables(ResultsStore(tmp / "results.jsonl")) if t[0] == "icbhi_lung"
    )[2]
    names = [line[0] for line in lines]
    assert "LSRM (MRINet + HTS-AT)" in names and "HTS-AT (time branch only)" in names
    other = [line for line in lines if line[0].startswith("other method: Patch-Mix CL")]
    assert other and other[0][5] == "0.624"  # icbhi_score column


def test_patient_folds_are_patient_disjoint(tmp_path: Path) -> None:
    rows = run(
        "icbhi_lung",
        [*isolated_outputs(tmp_path), *TINY, "protocol=icbhi_patient_folds", "peer.enabled=false"],
    )
    (row,) = rows
    assert row["protocol_tags"]["leaky"] is False
    assert "not_patient_disjoint" not in row["protocol_tags"]


def test_official_protocol_refuses_a_copy_without_its_list(tmp_path: Path) -> None:
    from sleepbench.tasks.icbhi_lung.synth import write_synthetic

    root = tmp_path / "icbhi"
    write_synthetic(root, {"n_patients": 6, "seed": 1})
    (root / "metadata" / "official_split.txt").unlink()
    with pytest.raises(SplitError, match="official train/test list"):
        run("icbhi_lung", [*isolated_outputs(tmp_path), f"data.root={root}", *TINY])
