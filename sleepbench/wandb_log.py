"""W&B dashboards: what a run folder holds, on the run's W&B page (``logger.wandb=true``).

Lightning's :class:`~lightning.pytorch.loggers.WandbLogger` streams the scalar curves while a run
trains. After testing, :func:`log_run` adds what the local run folder holds:

- the run summary: the model's test and validation metrics, its size, timings and the paper's
  numbers (``paper/<metric>``), and each peer row's metrics under the peer's model name
  (``YASA/test/kappa``);
- one confusion-matrix chart per matrix in a ``*.json`` file (W&B's own confusion-matrix panel,
  fed a ``(reference, predicted, count)`` table, since the runs keep counts, not predictions);
- each figure (``*.png``: hypnograms, event timelines) as an image;
- each list-of-rows ``*.json`` (per night, per record, per subject) as a table;
- the folder's JSON and config files as a ``run-files`` artifact (the checkpoints stay local).

Peers write into a subfolder of the run folder (``yasa/``, ``acoustic_baseline/``); their panels
carry that subfolder's name (``figures/yasa/hypnogram_SC4001E0``), the model's carry its name
(``figures/TinyUStaging/hypnogram_SC4001E0``). :func:`log_leaderboard` logs the
leaderboard's tables to a run of its own (``job_type="leaderboard"``).

The key only ever comes from ``WANDB_API_KEY``: without it runs are written offline (under
``<run folder>/wandb/``; ``wandb sync`` uploads them later). ``wandb`` is imported only when
``logger.wandb`` is on. No secret is logged: a config value equal to a secret-looking
environment variable (``*KEY*``, ``*TOKEN*``, ...) is replaced before it reaches W&B.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sleepbench.config import config_hash, to_plain

log = logging.getLogger(__name__)

#: subfolders of a run folder that are not peer outputs (Lightning's and W&B's own files)
_NOT_PEER_FOLDERS = frozenset({"checkpoints", "csv", "wandb"})
#: environment variable names whose values must never reach W&B
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH", re.IGNORECASE)
REDACTED = "<redacted: value of a secret environment variable>"
#: W&B's built-in confusion-matrix panel (what ``wandb.plot.confusion_matrix`` draws)
_CONFUSION_SPEC = "wandb/confusion_matrix/v1"


# ---- the run's logger --------------------------------------------------------------------------
def offline() -> bool:
    """Runs go offline unless ``WANDB_API_KEY`` is set (the key only comes from the environment)."""
    return not os.environ.get("WANDB_API_KEY")


def public_config(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The resolved config, with any string holding a secret environment variable's value redacted.

    A config can pick up environment values (``${oc.env:...}``, a path typed from a variable);
    this keeps an API key or token that found its way in from being uploaded.
    """
    plain = to_plain(cfg) if isinstance(cfg, DictConfig) else dict(cfg)
    secrets = [v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 8]

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, str) and any(s in value for s in secrets):
            return REDACTED
        return value

    return clean(plain)


def make_loggers(cfg: DictConfig, run_dir: Path) -> list[Any]:
    """``[WandbLogger]`` for this run when ``logger.wandb`` is on, else ``[]``.

    The run is grouped by ``task/protocol`` (or ``logger.group``), typed by the model
    (``job_type``), tagged with task, protocol, model and ``synthetic``, and its config has
    ``task``, ``protocol``, ``fold``, ``seed``, ``model`` and ``config_hash`` at the top level
    for W&B's grouping and filters. Offline files go to ``<run_dir>/wandb/``.
    """
    if not cfg.logger.wandb:
        return []
    from lightning.pytorch.loggers import WandbLogger

    from sleepbench.registry import TASK_PACKAGES, get_spec

    model = get_spec(str(cfg.task)).model if cfg.task in TASK_PACKAGES else str(cfg.task)
    config = public_config(cfg) | {"model": model, "config_hash": config_hash(cfg)}
    tags = [str(cfg.task), str(cfg.protocol), model]
    if cfg.data.get("is_synthetic"):
        tags.append("synthetic")
    if cfg.get("ablation_variant"):
        tags.append(f"ablation:{cfg.ablation}:{cfg.ablation_variant}")
    return [
        WandbLogger(
            project=cfg.logger.project,
            entity=cfg.logger.entity,
            group=cfg.logger.group or f"{cfg.task}/{cfg.protocol}",
            job_type=model,
            tags=tags,
            name=f"{cfg.task}-{run_dir.name}",
            save_dir=str(run_dir),
            offline=offline(),
            config=config,
        )
    ]


def log_run(trainer: Any, rows: Sequence[dict[str, Any]], run_dir: Path) -> None:
    """Log the finished run's results and folder to its W&B run, then finish that run.

    Nothing happens when the trainer has no W&B logger (``logger.wandb=false``). Finishing here
    (not at process exit) gives the next task of a ``bench`` its own W&B run.

    Args:
        trainer: the Lightning trainer that tested the model.
        rows: the result rows written (the model's first, then its peers').
        run_dir: the run folder (figures and JSON written by the run and its peers).
    """
    from lightning.pytorch.loggers import WandbLogger

    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            run = logger.experiment
            log_results(run, rows, run_dir)
            run.finish()
            return


# ---- what goes into a run ----------------------------------------------------------------------
def log_results(run: Any, rows: Sequence[dict[str, Any]], run_dir: Path) -> None:
    """Summary, confusion matrices, figures, tables and a files artifact into ``run``.

    Args:
        run: an active ``wandb`` run.
        rows: the result rows (the model's first, then its peers').
        run_dir: the run folder.
    """
    import wandb

    if rows:
        run.summary.update(summary(rows))
    owner = str(rows[0].get("model")) if rows else "model"
    panels: dict[str, Any] = {}
    for peer, path in run_files(run_dir):
        name = f"{peer or owner}/{path.stem}"
        if path.suffix == ".png":
            panels[f"figures/{name}"] = wandb.Image(str(path), caption=name)
            continue
        try:
            content = json.loads(path.read_text())
        except (OSError, ValueError) as err:  # a half-written file must not lose the rest
            log.warning("W&B: %s not logged: %s", path, err)
            continue
        if _is_row_list(content):
            panels[f"tables/{name}"] = rows_table(content)
        # a confusion_matrix.json holds only matrices: its stem would only repeat the section
        base = (peer or owner) if path.stem == "confusion_matrix" else name
        for sub, labels, counts in confusion_matrices(content):
            key = "/".join(filter(None, (base, sub)))
            panels[f"confusion_matrix/{key}"] = confusion_chart(labels, counts, key)
    if panels:
        run.log(panels)
    files = [p for _, p in run_files(run_dir) if p.suffix == ".json"]
    files += [p for p in (run_dir / "config.yaml", run_dir / "result.json") if p.exists()]
    if files:
        artifact = wandb.Artifact(_artifact_name(run_dir), type="run-files")
        for path in files:
            artifact.add_file(str(path), name=str(path.relative_to(run_dir)))
        run.log_artifact(artifact)


def summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Run-summary entries: the model row's metrics and facts, the peers' under their model name.

    The model's metrics are set explicitly (not left to the last logged step) so that what the
    summary shows is exactly the stored result row.
    """
    model, *peers = rows
    out: dict[str, Any] = dict(model.get("metrics") or {})
    out["model"] = model.get("model")
    out["key"] = model.get("key")
    out["n_params"] = model.get("n_params")
    out["n_trainable_params"] = model.get("n_trainable_params")
    out["synthetic"] = bool((model.get("data") or {}).get("synthetic"))
    out.update({f"timings/{k}": v for k, v in (model.get("timings") or {}).items()})
    ref = model.get("reference") or {}
    out.update({f"paper/{k}": v for k, v in (ref.get("metrics") or {}).items()})
    for peer in peers:
        name = str(peer.get("model"))
        out.update({f"{name}/{k}": v for k, v in (peer.get("metrics") or {}).items()})
        out.update({f"{name}/timings/{k}": v for k, v in (peer.get("timings") or {}).items()})
    return out


def run_files(run_dir: Path) -> Iterator[tuple[str, Path]]:
    """``(peer subfolder or "", path)`` of each figure and JSON of the run and its peers.

    ``result.json`` is left out: its rows are the summary.
    """
    folders = [("", run_dir)] + [
        (p.name, p)
        for p in sorted(run_dir.iterdir())
        if p.is_dir() and p.name not in _NOT_PEER_FOLDERS
    ]
    for peer, folder in folders:
        for path in sorted(folder.iterdir()):
            if path.suffix in (".png", ".json") and path.name != "result.json" and path.is_file():
                yield peer, path


def _is_row_list(content: Any) -> bool:
    return isinstance(content, list) and bool(content) and all(isinstance(r, dict) for r in content)


def rows_table(rows: Sequence[Mapping[str, Any]]) -> Any:
    """A ``wandb.Table`` of dict rows; nested values (probability lists) become JSON text."""
    import wandb

    columns = list(dict.fromkeys(k for row in rows for k in row))
    data = [[_cell(row.get(c)) for c in columns] for row in rows]
    return wandb.Table(columns=columns, data=data, allow_mixed_types=True)


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, default=str)


def confusion_matrices(
    content: Any, prefix: str = ""
) -> Iterator[tuple[str, list[str], list[list[float]]]]:
    """``(entry, class labels, counts with rows = reference)`` per confusion matrix in ``content``.

    The tasks write a matrix as a square list of lists under a key that names its orientation
    (``"rows=target,cols=pred"``, ``"rows=reference,cols=predicted"``, or ``"counts"`` beside
    ``"rows_are"``), with its labels under ``"labels"`` or ``"classes"``. A matrix at the top
    has entry ``""``; a mapping of matrices (one per test set and cut-off) yields one per key,
    its entry the key path (``"shhs1_test/severity"``).
    """
    if not isinstance(content, dict):
        return
    for key, value in content.items():
        if (str(key).startswith("rows=") or key == "counts") and _is_square(value):
            counts = [[float(c) for c in row] for row in value]
            rows_are = str(key).split(",")[0] if key != "counts" else str(content.get("rows_are"))
            if "pred" in rows_are:  # every task writes reference rows today; stay right if not
                counts = [list(col) for col in zip(*counts)]
            labels = content.get("labels") or content.get("classes") or range(len(counts))
            yield prefix, [str(label) for label in labels], counts
            return
    for key, value in content.items():
        if isinstance(value, dict):
            yield from confusion_matrices(value, "/".join(filter(None, (prefix, str(key)))))


def _is_square(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(row, list) and len(row) == len(value) for row in value)
        and all(isinstance(c, (int, float)) for row in value for c in row)
    )


def confusion_chart(labels: Sequence[str], counts: Sequence[Sequence[float]], title: str) -> Any:
    """W&B's confusion-matrix panel from counts (rows = reference, columns = predicted).

    ``wandb.plot.confusion_matrix`` needs the predictions themselves; it reduces them to this
    same ``(Actual, Predicted, nPredictions)`` table, which is what the panel reads.
    """
    import wandb

    table = wandb.Table(
        columns=["reference", "predicted", "count"],
        data=[
            [labels[i], labels[j], counts[i][j]]
            for i in range(len(counts))
            for j in range(len(counts))
        ],
    )
    fields = {"Actual": "reference", "Predicted": "predicted", "nPredictions": "count"}
    return wandb.plot_table(_CONFUSION_SPEC, table, fields, {"title": title})


def _artifact_name(run_dir: Path) -> str:
    """``<task>-<protocol>-<run folder>`` in the characters W&B allows in an artifact name."""
    parts = run_dir.parts[-3:]  # runs/<task>/<protocol>/<fold-seed-hash>
    return re.sub(r"[^A-Za-z0-9._-]", "_", "-".join(parts))


# ---- the leaderboard ---------------------------------------------------------------------------
def log_leaderboard(cfg: DictConfig) -> None:
    """Log the leaderboard's tables (from ``output.results``) to a W&B run of its own.

    The run has ``job_type="leaderboard"`` and one table per leaderboard table
    (``leaderboard/all_tasks``, ``leaderboard/<task>``), with the displayed cells plus the line's
    kind (``ours``, ``paper``, ``other``) and whether it ran on synthetic data, to filter on.
    Offline files go beside the leaderboard (``<leaderboard folder>/wandb/``). Nothing happens
    when ``logger.wandb`` is off.
    """
    if not cfg.logger.wandb:
        return
    import wandb

    from sleepbench.leaderboard import build_board
    from sleepbench.results import ResultsStore

    rows = list(ResultsStore(Path(cfg.output.results)))
    board = build_board(rows)
    folder = Path(cfg.output.leaderboard).parent
    folder.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=cfg.logger.project,
        entity=cfg.logger.entity,
        group="leaderboard",
        job_type="leaderboard",
        name="leaderboard",
        tags=["leaderboard"],
        dir=str(folder),
        mode="offline" if offline() else None,
        config={"tasks": sorted({str(r.get("task")) for r in rows}), "result_rows": len(rows)},
    )
    tables = {}
    for table in board:
        data = [[*line.cells, line.kind, line.synthetic] for line in table.lines]
        tables[f"leaderboard/{_slug(table.title)}"] = wandb.Table(
            columns=[*table.header, "line", "synthetic"], data=data, allow_mixed_types=True
        )
    run.log(tables)
    run.finish()


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", title.lower()).strip("_")
