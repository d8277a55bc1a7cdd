"""config -> data -> Trainer -> fit -> test -> RunResult in the results store.

``run(task, overrides)`` is what ``sleepbench bench`` and ``make bench`` call.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from sleepbench.cache.lock import file_lock
from sleepbench.config import (
    apply_synthetic_overrides,
    config_hash,
    default_cache_dir,
    default_data_root,
    load_config,
    to_plain,
)
from sleepbench.progress import EpochSummary, heartbeat, progress_bar_wanted
from sleepbench.registry import Task, get_task
from sleepbench.results import ResultsStore, RunResult, run_key
from sleepbench.wandb_log import log_run, make_loggers

log = logging.getLogger("sleepbench")

SYNTHETIC_BANNER = (
    "\n" + "!" * 78 + "\n!! SYNTHETIC DATA: no {dataset} recordings under {root}.\n"
    "!! Generated a small synthetic set in the real file format at {synth}.\n"
    "!! Results from this run say nothing about the method on real data; the result row is\n"
    "!! flagged data.synthetic=true. Point data.root (or $SLEEPBENCH_DATA) at the real data.\n"
    + "!"
    * 78
)


def reference_for(task: Task, protocol: str) -> dict[str, Any]:
    """The paper's numbers (``reference.yaml``) matching ``protocol``, else the task's first entry.

    Returns a dict with ``metrics``, ``source``, ``protocol`` and ``note``; empty if none exist.
    """
    ref_file = task.folder / "reference.yaml"
    if not ref_file.exists():
        return {}
    entries = (yaml.safe_load(ref_file.read_text()) or {}).get("results", [])
    for entry in entries:
        if entry.get("protocol") == protocol:
            return entry
    return entries[0] if entries else {}


def synthetic_dir(cfg: DictConfig, dataset: str) -> Path:
    """Folder of the synthetic set for this config (keyed by the synthetic generator settings)."""
    if cfg.data.get("synthetic_root"):
        return Path(cfg.data.synthetic_root)
    cache = Path(cfg.data.cache_dir) if cfg.data.cache_dir else default_cache_dir()
    digest = hashlib.sha256(
        json.dumps(to_plain(cfg.get("synthetic", {})), sort_keys=True).encode()
    ).hexdigest()[:8]
    return cache / "synthetic" / f"{dataset}-{digest}"


def resolve_data(cfg: DictConfig, task: Task, overrides: Sequence[str] = ()) -> DictConfig:
    """Set ``data.root``; with no data there (and ``data.synthetic`` auto/true) write a synthetic set.

    Returns the config to run: synthetic runs get the task's ``synthetic_overrides`` (small,
    CPU-friendly) under the command-line overrides, and ``data.is_synthetic=true``.
    """
    cfg = OmegaConf.create(to_plain(cfg))
    dataset = task.spec.dataset
    root = Path(cfg.data.root) if cfg.data.root else default_data_root(dataset)
    mode = str(cfg.data.synthetic).lower()
    has_data = root.is_dir() and bool(task.datamodule.list_sources(root, cfg))
    if mode == "false" or (mode == "auto" and has_data):
        if not has_data:
            raise FileNotFoundError(
                f"no {dataset} recordings under {root} and data.synthetic=false"
            )
        cfg.data.root = str(root)
        cfg.data.is_synthetic = False
        return cfg
    cfg = apply_synthetic_overrides(cfg, overrides)
    synth = synthetic_dir(cfg, dataset)
    with file_lock(synth.parent / f".{synth.name}.lock"):
        if not (synth / ".complete").exists():
            tmp = synth.with_name(synth.name + ".partial")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            with heartbeat(tmp, f"writing the synthetic {dataset} set"):
                manifest = task.write_synthetic(tmp, cfg)
            (tmp / ".complete").write_text(json.dumps(manifest, indent=1, default=str))
            shutil.rmtree(synth, ignore_errors=True)
            tmp.rename(synth)
    log.warning(SYNTHETIC_BANNER.format(dataset=dataset, root=root, synth=synth))
    cfg.data.root = str(synth)
    cfg.data.is_synthetic = True
    return cfg


def git_sha() -> str:
    """Commit of the code that ran (``unknown`` outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def hardware(trainer: Any) -> dict[str, Any]:
    """Device facts for the result row."""
    import torch

    info: dict[str, Any] = {
        "accelerator": type(trainer.accelerator).__name__.replace("Accelerator", "").lower(),
        "devices": trainer.num_devices,
        "num_nodes": trainer.num_nodes,
        "world_size": trainer.world_size,
        "strategy": type(trainer.strategy).__name__,
        "precision": str(trainer.precision),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def build_trainer(
    cfg: DictConfig, run_dir: Path, monitor: str, mode: str, callbacks: Sequence[Any] = ()
) -> Any:
    """Lightning Trainer from ``cfg.trainer`` with CSV (always) and W&B (optional) loggers.

    Keeps the best checkpoint by ``monitor`` (``mode`` ``min``/``max``); shows a progress bar or,
    without one (``trainer.enable_progress_bar``, ``auto`` = only on a terminal), one log line per
    epoch. ``callbacks`` are added as they are (e.g. timing probes).
    """
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    loggers: list[Any] = [
        CSVLogger(save_dir=str(run_dir), name="csv", version=""),
        *make_loggers(cfg, run_dir),
    ]
    ckpt = ModelCheckpoint(
        dirpath=str(run_dir / "checkpoints"),
        monitor=monitor,
        mode=mode,
        save_top_k=1,
        save_last=False,
        filename="best",
    )
    t = cfg.trainer
    show_bar = progress_bar_wanted(t.enable_progress_bar)
    deterministic: Any = t.deterministic
    if deterministic is True and t.accelerator != "cpu":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return pl.Trainer(
        max_epochs=int(t.max_epochs),
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=int(t.num_nodes),
        strategy=t.strategy,
        precision=t.precision,
        deterministic=deterministic,
        gradient_clip_val=t.gradient_clip_val,
        limit_train_batches=t.limit_train_batches,
        limit_val_batches=t.limit_val_batches,
        log_every_n_steps=int(t.log_every_n_steps),
        enable_progress_bar=show_bar,
        num_sanity_val_steps=0,
        logger=loggers,
        callbacks=[ckpt, *([] if show_bar else [EpochSummary()]), *callbacks],
        default_root_dir=str(run_dir),
    )


def protocol_tags(cfg: DictConfig, module: Any, dm: Any) -> dict[str, Any]:
    """Facts that change published numbers: the task's own tags, leakage, ablation variant."""
    tags = dict(module.protocol_tags()) if hasattr(module, "protocol_tags") else {}
    tags["leaky"] = bool(dm.split.leaky)
    if cfg.get("ablation_variant"):
        tags["ablation"] = f"{cfg.ablation}:{cfg.ablation_variant}"
    return tags


def _scalar_metrics(logged: dict[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in logged.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def run(
    task_name: str, overrides: Sequence[str] = (), callbacks: Sequence[Any] = ()
) -> list[dict[str, Any]]:
    """Train and test one task per its config and store the result.

    Checkpoints (``ckpt_path``, the best checkpoint of this fit) are loaded with
    ``weights_only=True`` passed explicitly: a checkpoint's pickle can only rebuild tensors and
    plain containers, never run code, even with ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` set
    (which only changes ``torch.load`` calls that leave ``weights_only`` unset).

    Args:
        task_name: registered task.
        overrides: omegaconf dotlist applied over the task defaults.
        callbacks: extra Lightning callbacks for the trainer (e.g. timing probes).

    Returns:
        The result rows written (the model's, plus any peer-baseline rows the task adds).
        A run whose key is already stored returns the stored row unless ``force=true``.
    """
    import lightning.pytorch as pl

    task = get_task(task_name)
    cfg = load_config(task_name, overrides, task.folder)  # refuses an unknown protocol
    cfg = resolve_data(cfg, task, overrides)
    chash = config_hash(cfg)
    store = ResultsStore(Path(cfg.output.results))
    key = run_key(task_name, task.spec.model, cfg.protocol, int(cfg.fold), int(cfg.seed), chash)
    if not cfg.force and (done := store.get(key)) is not None:
        log.info("%s already in %s (force=true re-runs it)", key, store.path)
        return [done]

    pl.seed_everything(int(cfg.seed), workers=True)
    run_dir = (
        Path(cfg.output.runs_dir)
        / task_name
        / str(cfg.protocol)
        / f"fold{cfg.fold}-seed{cfg.seed}-{chash}"
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)

    dm = task.datamodule(cfg)
    dm.prepare_data()
    dm.setup("fit")
    module = task.build_module(cfg, dm)
    trainer = build_trainer(cfg, run_dir, module.monitor, module.monitor_mode, callbacks)

    t0 = time.perf_counter()
    fitted = int(cfg.trainer.max_epochs) > 0
    if fitted:
        trainer.fit(module, datamodule=dm, ckpt_path=cfg.ckpt_path, weights_only=True)
    train_s = time.perf_counter() - t0
    # validation scores of the last epoch, before testing replaces the callback metrics
    scalars = _scalar_metrics(trainer.callback_metrics)
    val_metrics = {k: v for k, v in scalars.items() if k.startswith("val/")}
    ckpt: str | None = None
    if fitted and trainer.checkpoint_callback and trainer.checkpoint_callback.best_model_path:
        ckpt = trainer.checkpoint_callback.best_model_path
    elif not fitted and cfg.ckpt_path:
        ckpt = str(cfg.ckpt_path)
    t1 = time.perf_counter()
    logged = trainer.test(module, datamodule=dm, ckpt_path=ckpt, verbose=False, weights_only=True)
    test_s = time.perf_counter() - t1
    if not trainer.is_global_zero:
        return []

    metrics = _scalar_metrics(logged[0] if logged else {})
    metrics.update(val_metrics)
    n_params, n_trainable = module.n_params()
    result = RunResult(
        task=task_name,
        model=task.spec.model,
        protocol=str(cfg.protocol),
        fold=int(cfg.fold),
        seed=int(cfg.seed),
        config_hash=chash,
        metrics=metrics,
        reference=reference_for(task, str(cfg.protocol)),
        protocol_tags=protocol_tags(cfg, module, dm),
        data=dm.provenance,
        n_params=n_params,
        n_trainable_params=n_trainable,
        timings={
            "train_s": round(train_s, 3),
            "test_s": round(test_s, 3),
            "inference_ms_per_hour": module.inference_ms_per_hour(),
        },
        hardware=hardware(trainer),
        git_sha=git_sha(),
        config=to_plain(cfg),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
    _save_artifacts(run_dir, module.test_artifacts)
    rows = [result.to_dict()]
    if task.extra_runs is not None:
        try:
            rows.extend(task.extra_runs(cfg, dm, result, run_dir))
        except Exception:  # a failing peer must not lose the model's row (training took hours)
            log.exception("%s: the peer rows failed; the model's row is kept", task_name)
    for row in rows:
        store.append(row)
    (run_dir / "result.json").write_text(json.dumps(rows, indent=1, default=str))
    log_run(trainer, rows, run_dir)  # W&B summary, figures, tables; nothing without logger.wandb
    log.info("result row(s) appended to %s; run folder %s", store.path, run_dir)
    return rows


def _save_artifacts(run_dir: Path, artifacts: dict[str, Any]) -> None:
    """Write non-scalar test outputs: figures as PNG, everything else as JSON."""
    for name, value in artifacts.items():
        if hasattr(value, "savefig"):
            value.savefig(run_dir / f"{name}.png", dpi=100, bbox_inches="tight")
        else:
            (run_dir / f"{name}.json").write_text(json.dumps(value, indent=1, default=_tolist))


def _tolist(obj: Any) -> Any:
    return obj.tolist() if hasattr(obj, "tolist") else str(obj)
