"""Patient data never reaches the cache: EDF patient name and birth date stop at the reader."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from sleepbench.cache.build import SourceRecord, build_cache
from sleepbench.registry import task_folder
from sleepbench.tasks.sleep_edf.data import preprocess_night
from sleepbench.tasks.sleep_edf.synth import write_synthetic_sleep_edf

NAME, BIRTH = "Jane_Roe", "12-MAR-1951"


def _inject_patient(psg: Path) -> None:
    """Write an identifying EDF+ patient field (bytes 8-88 of the header)."""
    raw = bytearray(psg.read_bytes())
    field = f"MCH-0234567 F {BIRTH} {NAME}".ljust(80).encode("ascii")
    raw[8:88] = field
    psg.write_bytes(bytes(raw))


def test_patient_fields_never_reach_the_cache(tmp_path: Path) -> None:
    root = tmp_path / "sleep-edf"
    write_synthetic_sleep_edf(root, n_subjects=1, nights_per_subject=1, minutes=60, seed=1)
    psg = next(root.rglob("*-PSG.edf"))
    hyp = next(root.rglob("*-Hypnogram.edf"))
    _inject_patient(psg)
    assert NAME.encode() in psg.read_bytes()  # the injected field is really there
    cfg = OmegaConf.to_container(
        OmegaConf.load(task_folder("sleep_edf") / "config.yaml").preprocess
    )
    source = SourceRecord("SC4011E0", "SC401", (psg, hyp), {"night": 1})
    rec = preprocess_night(source, cfg)
    assert NAME not in repr(rec.attrs) and BIRTH not in repr(rec.attrs)
    path = build_cache("sleep_edf", [source], preprocess_night, cfg, tmp_path / "cache", "test")
    blob = path.read_bytes()
    for secret in (NAME, BIRTH, "MCH-0234567", "1951"):
        assert secret.encode() not in blob, secret
