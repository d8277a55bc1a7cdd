"""The peers of ``icbhi_lung`` and ``esc50`` (:func:`run_peers`); here the HTS-AT peer: LSRM's
time branch alone, trained and tested on exactly the model's data.

HTS-AT is method 003's strongest competitor in its own table (89.43 % / 97.0 %, SPECS §4.6) and
LSRM's time branch *is* HTS-AT (Swin Transformer with the token-semantic head). Training it with
``model.branches=time`` on the same split, front end, recipe and epochs gives the like-for-like
row the leaderboard shows beside the full model (``Task.extra_runs``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sleepbench.results import RunResult

__all__ = ["PEER_MODEL", "run_htsat_peer", "run_peers"]

log = logging.getLogger(__name__)

PEER_MODEL = "HTS-AT (time branch only)"


def run_peers(
    cfg: DictConfig, datamodule: Any, result: RunResult, run_dir: Path
) -> list[dict[str, Any]]:
    """``Task.extra_runs`` hook of ``icbhi_lung`` and ``esc50``: the peer rows on the model's data.

    ``peer.logmel`` (default true): log-mel statistics + ``peer.classifier`` (logistic
    regression or gradient boosting), fitted in seconds
    (:mod:`~sleepbench.methods.lsrm.logmel_peer`); ``peer.htsat`` (default true): the time
    branch alone, trained with the model's recipe (:func:`run_htsat_peer`).

    Returns:
        Their result rows; none when ``peer.enabled`` is false or the run is itself an ablation
        variant.
    """
    from sleepbench.methods.lsrm.logmel_peer import run_logmel_peer

    peer = cfg.get("peer") or {}
    if not bool(peer.get("enabled", True)) or cfg.get("ablation_variant"):
        return []
    rows = []
    if bool(peer.get("logmel", True)):
        rows += run_logmel_peer(cfg, datamodule, result, run_dir)
    if bool(peer.get("htsat", True)):
        rows += run_htsat_peer(cfg, datamodule, result, run_dir)
    return rows


def run_htsat_peer(
    cfg: DictConfig, datamodule: Any, result: RunResult, run_dir: Path
) -> list[dict[str, Any]]:
    """``Task.extra_runs`` hook: train and test the time-branch-only network.

    Args:
        cfg: the model's run config (``peer.enabled``; the peer runs with ``model.branches=time``
            and everything else unchanged).
        datamodule: the model's set-up data module (same split, same windows).
        result: the model's row (its key parts are reused, see
            :func:`~sleepbench.results.peer_result`).
        run_dir: the model's run folder; the peer's outputs go to ``htsat_peer/``.

    Returns:
        One result row, or none when ``peer.enabled`` is false, when the run is itself an
        ablation variant, or when the model already is the time branch alone.
    """
    from sleepbench.registry import get_task
    from sleepbench.results import peer_result
    from sleepbench.train import _scalar_metrics, build_trainer, hardware, protocol_tags

    if not bool((cfg.get("peer") or {}).get("enabled", True)):
        return []
    if cfg.get("ablation_variant") or str(cfg.model.get("branches", "both")) != "both":
        return []
    # no W&B logger of its own: it would reuse the model's W&B run and mix the two models'
    # curves; the peer's row reaches that run's summary under its name (sleepbench.wandb_log)
    peer_cfg = OmegaConf.merge(cfg, {"model": {"branches": "time"}, "logger": {"wandb": False}})
    task = get_task(str(result.task))
    module = task.build_module(peer_cfg, datamodule)
    out_dir = Path(run_dir) / "htsat_peer"
    trainer = build_trainer(peer_cfg, out_dir, module.monitor, module.monitor_mode)
    log.info("training the %s peer on the same split", PEER_MODEL)
    t0 = time.perf_counter()
    if int(cfg.trainer.max_epochs) > 0:
        trainer.fit(module, datamodule=datamodule, weights_only=True)
    train_s = time.perf_counter() - t0
    ckpt = None
    if trainer.checkpoint_callback and trainer.checkpoint_callback.best_model_path:
        ckpt = trainer.checkpoint_callback.best_model_path
    t1 = time.perf_counter()
    logged = trainer.test(
        module, datamodule=datamodule, ckpt_path=ckpt, verbose=False, weights_only=True
    )
    test_s = time.perf_counter() - t1
    if not trainer.is_global_zero:
        return []
    metrics = _scalar_metrics(logged[0] if logged else {})
    n_params, _ = module.n_params()
    hours = module._infer_windows * module.window_s / 3600.0
    row = peer_result(
        result,
        model=PEER_MODEL,
        metrics=metrics,
        protocol_tags={**protocol_tags(peer_cfg, module, datamodule), "peer_of": result.model},
        data=datamodule.provenance,
        reference_note="HTS-AT as LSRM's time branch, trained here on the same split and recipe",
        train_s=train_s,
        test_s=test_s,
        hours=hours,
        n_params=n_params,
        hardware=hardware(trainer),
    )
    row.timings["inference_ms_per_hour"] = module.inference_ms_per_hour()
    return [row.to_dict()]
