"""The command line: list, synth, download (offline), leaderboard."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sleepbench.cli import main
from sleepbench.registry import get_task, task_names


def test_list_shows_every_task(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in task_names():
        spec = get_task(name).spec
        for field in (spec.name, spec.dataset, spec.modality, spec.paper, *spec.protocols):
            assert field in out


def test_synth_writes_real_format(tmp_path: Path) -> None:
    assert (
        main(
            [
                "synth",
                "--task",
                "apnea_ecg",
                "--out",
                str(tmp_path),
                "synthetic.minutes=5",
                "synthetic.n_released=2",
                "synthetic.n_withheld=1",
            ]
        )
        == 0
    )
    assert (tmp_path / "a01.hea").exists() and (tmp_path / "a01.apn").exists()
    assert (tmp_path / "event-2-answers").exists()


def test_download_offline_verifies_checksums(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "mirror"
    src.mkdir()
    files = {"a01.hea": b"a01 1 100 6000\n", "a01.apn": b"\x00\x01"}
    for name, data in files.items():
        (src / name).write_bytes(data)
    sums = "".join(f"{hashlib.sha256(d).hexdigest()} {n}\n" for n, d in files.items())
    (src / "SHA256SUMS.txt").write_text(sums)
    dest = tmp_path / "dest"
    assert main(["download", "apnea_ecg", "--dest", str(dest), "--offline-from", str(src)]) == 0
    assert (dest / "a01.apn").read_bytes() == files["a01.apn"]
    (src / "a01.hea").write_bytes(b"tampered")  # a corrupt mirror copy is refused
    (dest / "a01.hea").unlink()
    with pytest.raises(RuntimeError, match="a01.hea"):
        main(["download", "apnea_ecg", "--dest", str(dest), "--offline-from", str(src)])


def test_unknown_task_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--task", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'nope'; registered: " in err and "Traceback" not in err


def test_a_config_typo_is_one_line_and_a_nonzero_exit(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["bench", "--task", "shhs_spo2", "trainer.max_epoch=1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "did you mean trainer.max_epochs?" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) == 2  # message + --debug hint
    assert not (tmp_path / "results").exists()


def test_prepare_refuses_an_unknown_protocol_before_writing_anything(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    splits = tmp_path / "splits"
    code = main(["prepare", "--task", "sleep_edf", "protocol=bogus", f"output.splits_dir={splits}"])
    assert code == 2 and "no protocol 'bogus'" in capsys.readouterr().err
    assert not splits.exists()


def test_debug_shows_the_traceback() -> None:
    from sleepbench.errors import ConfigError

    with pytest.raises(ConfigError):
        main(["--debug", "bench", "--task", "shhs_spo2", "trainer.max_epochs=abc"])
