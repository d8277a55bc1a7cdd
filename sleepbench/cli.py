"""Command line: ``sleepbench list | prepare | bench | leaderboard | synth | download | export |
predict | serve``.

Everything after the named options is an omegaconf dotlist applied to the task config, e.g.
``sleepbench bench --task apnea_ecg data.root=/data/apnea-ecg trainer.max_epochs=25``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import sys
from pathlib import Path
from typing import Any

from sleepbench.errors import RecordingError, UserError
from sleepbench.registry import get_task, task_names

log = logging.getLogger("sleepbench")

# Mistakes a user can fix from the message alone: printed as one line, traceback with --debug.
# (KeyError: an unknown task or ablation name; FileNotFoundError: no data where pointed.)
USER_ERRORS = (UserError, RecordingError, KeyError, FileNotFoundError)


def _tasks(args: argparse.Namespace) -> list[str]:
    names = args.task or task_names()
    for n in names:
        get_task(n)  # fail early on a typo, listing the registered names
    return names


def _check_configs(args: argparse.Namespace) -> dict[str, Any]:
    """Compose every selected task's config first: a typo fails before any task runs.

    Returns:
        The composed configs by task name, in the order the tasks were given.
    """
    from sleepbench.config import load_config

    return {name: load_config(name, args.overrides) for name in _tasks(args)}


def _global_rank() -> int:
    """This process's global rank (0 outside distributed runs)."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return int(getattr(rank_zero_only, "rank", 0) or 0)


def cmd_list(args: argparse.Namespace) -> int:
    """Print every registered task with its dataset, modality, paper and protocols."""
    for name in task_names():
        s = get_task(name).spec
        print(
            f"{s.name}\n  dataset:   {s.dataset}\n  modality:  {s.modality}\n  model:     {s.model}\n"
            f"  paper:     {s.paper}\n  protocols: {', '.join(s.protocols)} (default {s.protocols[0]})\n"
            f"  primary:   {s.primary_metric}"
        )
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    """Resolve the data (synthetic if absent) and build the caches."""
    _check_configs(args)
    from sleepbench.config import load_config
    from sleepbench.train import resolve_data

    for name in _tasks(args):
        task = get_task(name)
        cfg = load_config(name, args.overrides, task.folder)
        cfg = resolve_data(cfg, task, args.overrides)
        dm = task.datamodule(cfg)
        dm.setup("fit")
        print(
            f"{name}: cache {dm.cache_file} ({len(dm.store.records)} records, "
            f"{len(dm.store.skipped)} skipped)"
        )
        for rid, why in dm.store.skipped:
            print(f"  skipped {rid}: {why}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Train + test each task, append result rows, write the leaderboard.

    Several tasks on a CPU machine run as concurrent processes (``--jobs``, see
    :mod:`sleepbench.lanes`); one task, an ablation or a GPU machine runs them one after another.
    Returns 1 when a task failed (the others still ran and were reported), else 0.
    """
    cfgs = _check_configs(args)  # before the heavy imports: a typo is refused within seconds
    from sleepbench.lanes import resolve_jobs

    names = list(cfgs)
    ablating = any(cfg.ablation for cfg in cfgs.values())
    try:
        jobs = 1 if ablating or args.rows_out else resolve_jobs(args.jobs, len(names))
    except ValueError as err:
        raise UserError(str(err)) from err
    failed: list[str] = []
    tables: list[Path] = []
    if jobs > 1:
        from sleepbench.lanes import run_lanes

        log_dir = Path(cfgs[names[0]].output.runs_dir) / "logs"
        # the costliest first (cost_hint), so that no long task starts last and runs alone
        order = sorted(names, key=lambda n: -float(cfgs[n].get("cost_hint") or 0.0))
        by_task = {lane.task: lane for lane in run_lanes(order, args.overrides, jobs, log_dir)}
        lanes = [by_task[n] for n in names]
        rows = [row for lane in lanes for row in lane.rows]
        failed = [f"{lane.task} (log: {lane.log})" for lane in lanes if not lane.ok]
    else:
        rows, tables = _bench_in_turn(names, cfgs, args.overrides)
    if args.rows_out:  # a lane of a parent `bench`: the parent writes the leaderboard
        Path(args.rows_out).write_text(json.dumps(rows, default=str))
        return 0
    if _global_rank() != 0:  # DDP worker processes leave reporting to rank 0
        return 0
    _report(cfgs[names[0]], rows, tables)
    if failed:
        print(f"sleepbench bench: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _bench_in_turn(
    names: list[str], cfgs: dict[str, Any], overrides: list[str]
) -> tuple[list[dict[str, Any]], list[Path]]:
    """Run the tasks one after another in this process: their rows and ablation tables."""
    from sleepbench.ablation import run_ablation, write_ablation_table
    from sleepbench.train import run

    rows: list[dict[str, Any]] = []
    tables: list[Path] = []
    for name in names:
        cfg = cfgs[name]
        if cfg.ablation:
            variant_rows = run_ablation(name, str(cfg.ablation), overrides)
            out = Path(cfg.output.leaderboard).parent
            tables.append(write_ablation_table(name, str(cfg.ablation), variant_rows, out))
            rows += variant_rows
        else:
            rows += run(name, overrides)
    return rows, tables


def _report(cfg: Any, rows: list[dict[str, Any]], tables: list[Path]) -> None:
    """Write the leaderboard (+ W&B table) and print each new row's test metrics."""
    from sleepbench.leaderboard import write_leaderboard
    from sleepbench.wandb_log import log_leaderboard

    results = Path(cfg.output.results)
    board = write_leaderboard(results, Path(cfg.output.leaderboard))
    log_leaderboard(cfg)  # a W&B table of its own when logger.wandb=true; nothing otherwise
    for row in rows:
        synthetic = " [SYNTHETIC DATA]" if row.get("data", {}).get("synthetic") else ""
        m = row["metrics"]
        shown = ", ".join(f"{k}={v:.3f}" for k, v in sorted(m.items()) if k.startswith("test/"))[
            :400
        ]
        print(f"{row['key']}{synthetic}: {shown}")
    print(f"result rows: {results.resolve()}")
    print(f"leaderboard: {board.resolve()} (+ {board.with_suffix('.html').name})")
    for table in tables:
        print(f"ablation table: {table.resolve()}")


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Rewrite the leaderboard from the results store."""
    from sleepbench.leaderboard import write_leaderboard

    out = write_leaderboard(Path(args.results), Path(args.out))
    print(out.read_text())
    print(f"leaderboard: {out.resolve()}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    """Write a synthetic dataset in the real file format."""
    from sleepbench.config import apply_synthetic_overrides, load_config

    for name in _tasks(args):
        task = get_task(name)
        cfg = apply_synthetic_overrides(
            load_config(name, args.overrides, task.folder), args.overrides
        )
        out = Path(args.out) / task.spec.dataset if len(_tasks(args)) > 1 else Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        manifest = task.write_synthetic(out, cfg)
        print(f"{name}: wrote {len(manifest.get('records', manifest))} synthetic records to {out}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    """Download a task's dataset (or copy it from a local folder), verified by checksums."""
    name = args.task_name
    # `download shhs` works as `download shhs_spo2`, `download psg_audio` as `psg-audio`
    by_dataset = {get_task(n).spec.dataset.replace("-", "_"): n for n in task_names()}
    task = get_task(by_dataset.get(name.replace("-", "_"), name))
    if task.download is None:
        print(f"{args.task_name}: no download available; see {task.spec.data_card}")
        return 1
    dest = Path(args.dest) if args.dest else None
    options = {}
    if args.fetch:
        if "fetch" not in inspect.signature(task.download).parameters:
            print(f"{args.task_name}: no HTTP download; see {task.spec.data_card}")
            return 2
        options["fetch"] = True
    task.download(dest, Path(args.offline_from) if args.offline_from else None, **options)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export a trained run's network (ONNX, dynamic batch axis), checked against torch."""
    from sleepbench.deploy.export import export_onnx

    get_task(args.task)  # an unknown task is refused before the heavy imports
    info = export_onnx(args.task, args.ckpt, args.out)
    print(
        f"{args.task}: wrote {info['path']} (ONNX opset {info['opset']}, "
        f"{info['size_bytes'] / 1e6:.1f} MB)"
    )
    for kind in ("inputs", "outputs"):
        for v in info[kind]:
            shape = ", ".join(str(d) for d in v["shape"])
            print(f"  {kind[:-1]:<6} {v['name']} [{shape}] {v['dtype']}: {v['doc']}")
    verdict = "agrees" if info["max_abs_diff"] <= info["tolerance"] else "DIFFERS"
    print(
        f"  onnxruntime {verdict} with torch: max abs difference {info['max_abs_diff']:.2g} "
        f"(tolerance {info['tolerance']:g})"
    )
    synthetic = " [trained on SYNTHETIC DATA]" if info["synthetic"] else ""
    print(
        f"  checkpoint {info['checkpoint']} sha256 {info['checkpoint_sha256'][:16]}..., "
        f"config hash {info['config_hash']}{synthetic}"
    )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict one recording: write ``<record>.json`` and the night report ``<record>.html``."""
    from sleepbench.deploy.model import load_model
    from sleepbench.deploy.predict import predict_files, write_prediction

    get_task(args.task)
    model = load_model(args.task, args.ckpt)
    result = predict_files(model, args.files)
    paths = write_prediction(result, args.out)
    shown = {k: v for k, v in result["summary"].items() if not isinstance(v, (dict, list))}
    numbers = ", ".join(
        f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()
    )
    print(f"{args.task} {result['recording']['record_id']}: {numbers}")
    if result.get("agreement"):
        agreement = ", ".join(
            f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in result["agreement"].items()
            if not isinstance(v, (dict, list))
        )
        print(f"  agreement with the reference: {agreement}")
    if result["model"]["trained_on_synthetic_data"]:
        print("  [model trained on SYNTHETIC DATA]")
    print(f"  wrote {paths['json']} and {paths['html']}")
    if args.pdf:
        from sleepbench.deploy.report import write_pdf

        print(f"  wrote {write_pdf(paths['html'])}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the given models over HTTP (FastAPI + uvicorn) until interrupted."""
    from sleepbench.deploy.serve import serve

    if len(args.task) != len(args.ckpt):
        raise UserError(
            f"give one --ckpt per --task (got {len(args.task)} tasks, {len(args.ckpt)} ckpts)"
        )
    for name in args.task:
        get_task(name)
    serve(
        dict(zip(args.task, args.ckpt, strict=True)),
        host=args.host,
        port=args.port,
        max_upload_mb=args.max_upload_mb,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    p = argparse.ArgumentParser(prog="sleepbench", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (one line otherwise)"
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="registered tasks").set_defaults(fn=cmd_list)
    for name, fn, help_ in (
        ("prepare", cmd_prepare, "build caches (synthetic data if none)"),
        ("bench", cmd_bench, "train + test, store results, write leaderboard"),
        ("synth", cmd_synth, "write a synthetic dataset in the real format"),
    ):
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("--task", action="append", help="task name (repeatable; default: all)")
        if name == "synth":
            sp.add_argument("--out", required=True, help="output folder")
        if name == "bench":
            sp.add_argument(
                "--jobs",
                default="auto",
                help="tasks run at once (auto: one per CPU core on a machine without a GPU, "
                "the cores shared out; 1: one after another)",
            )
            sp.add_argument("--rows-out", help=argparse.SUPPRESS)  # a lane's rows, for its parent
        sp.add_argument("overrides", nargs="*", help="omegaconf dotlist, e.g. trainer.max_epochs=5")
        sp.set_defaults(fn=fn)
    lb = sub.add_parser("leaderboard", help="rewrite the leaderboard from the results store")
    lb.add_argument("--results", default="results/results.jsonl")
    lb.add_argument("--out", default="results/leaderboard.md")
    lb.set_defaults(fn=cmd_leaderboard)
    dl = sub.add_parser("download", help="download a dataset, verified by checksums")
    dl.add_argument("task_name", help="task name or its dataset name")
    dl.add_argument("--dest", help="target folder (default $SLEEPBENCH_DATA/<dataset>)")
    dl.add_argument("--offline-from", help="copy from this local folder instead of the internet")
    dl.add_argument(
        "--fetch",
        action="store_true",
        help="download over HTTP where the dataset allows it (ESC-50)",
    )
    dl.set_defaults(fn=cmd_download)
    ex = sub.add_parser("export", help="export a trained network (ONNX, dynamic batch axis)")
    ex.add_argument("--task", required=True, help="task name")
    ex.add_argument(
        "--ckpt",
        required=True,
        help="checkpoint file, or a folder under which the newest best.ckpt is taken",
    )
    ex.add_argument("--format", choices=["onnx"], default="onnx", help="export format")
    ex.add_argument("--out", required=True, help="file to write (model.onnx)")
    ex.set_defaults(fn=cmd_export)
    model_help = (
        "checkpoint file, a run folder (the newest best.ckpt under it), or an .onnx file "
        "from `sleepbench export`"
    )
    pr = sub.add_parser("predict", help="one recording -> JSON result + HTML night report")
    pr.add_argument("--task", required=True, help="task name")
    pr.add_argument("--ckpt", required=True, help=model_help)
    pr.add_argument("--out", default="predictions", help="output folder (default predictions/)")
    pr.add_argument("--pdf", action="store_true", help="also print the report to PDF (Chromium)")
    pr.add_argument("files", nargs="+", help="the recording's files (with reference, if any)")
    pr.set_defaults(fn=cmd_predict)
    sv = sub.add_parser("serve", help="REST service: GET /health, POST /predict/{task}")
    sv.add_argument("--task", action="append", required=True, help="task name (repeatable)")
    sv.add_argument("--ckpt", action="append", required=True, help=model_help + "; one per --task")
    sv.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    sv.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    sv.add_argument(
        "--max-upload-mb",
        type=float,
        default=512.0,
        help="largest upload accepted per request, MB (larger: 413; default 512)",
    )
    sv.set_defaults(fn=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sleepbench`` command."""
    args = build_parser().parse_args(argv)
    # only our own logger: Lightning already prints its messages through its own handler
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if args.verbose or args.debug else logging.INFO)
    try:
        return int(args.fn(args) or 0)
    except USER_ERRORS as err:
        if args.debug:
            raise
        print(f"sleepbench {args.command}: error: {_one_line(err)}", file=sys.stderr)
        print("(run with --debug for the traceback)", file=sys.stderr)
        return 2


def _one_line(err: BaseException) -> str:
    """The error's message on one line (a KeyError's message without its quotes)."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    return " ".join(text.split()) or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
