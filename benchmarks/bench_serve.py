"""``sleepbench serve`` under concurrent load: requests per second, latency, errors, memory.

Usage::

    python benchmarks/bench_serve.py                                # 8 clients x 50 requests
    python benchmarks/bench_serve.py --clients 4 --requests 10 --hours 2   # a smoke run
    python benchmarks/bench_serve.py --ckpt runs/shhs_spo2/...      # a trained shhs_spo2 run

The real command is started as a separate process (``sleepbench serve --task shhs_spo2 --ckpt RUN
--port P`` on 127.0.0.1; uvicorn, one worker) with, unless ``--ckpt`` is given, a run folder of the
synthetic-size network with random weights. One synthetic SHHS night of ``--hours`` (EDF + NSRR
XML, NSRR layout) is the upload. After one reference request and a warm-up round (every client,
2 requests), ``--clients`` threads each POST it ``--requests`` times over keep-alive connections
(httpx). Every answer must be 200 and equal to the reference (all but its ``created`` time);
``errors`` counts the others (and failed connections). The server's resident memory
(``VmRSS`` of its process) is read after the warm-up and at the end. Figures: requests per
second, p50 / p95 / max latency (ms), errors, RSS start / end (MB), model, night length, and the
machine's load average (other processes share its cores).
Writes ``benchmarks/out/serve.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_json  # noqa: E402

TASK = "shhs_spo2"


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of process ``pid`` in MB (``VmRSS`` of ``/proc/<pid>/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for process {pid}")


def answer_hash(body: bytes) -> str:
    """SHA-256 of a prediction JSON without its ``created`` time (equal answers, equal hashes)."""
    result = json.loads(body)
    result.pop("created", None)
    return hashlib.sha256(json.dumps(result, sort_keys=True).encode()).hexdigest()


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100.0 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def hammer(
    url: str,
    files: list[tuple[str, bytes]],
    clients: int,
    requests: int,
    expected: str | None,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """``clients`` threads each POST ``files`` to ``url`` ``requests`` times (keep-alive).

    Returns:
        ``latencies_ms`` (one per answered request), ``statuses`` (status -> count), ``answers``
        (answer hash -> count, 200s only), ``mismatches`` (200s unlike ``expected``),
        ``failures`` (exceptions, as ``type: message``), ``wall_s``.
    """
    import httpx

    lock = threading.Lock()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    answers: Counter[str] = Counter()
    failures: list[str] = []
    start = threading.Barrier(clients)

    def client() -> None:
        parts = [("files", (name, data)) for name, data in files]
        with httpx.Client(timeout=timeout_s) as http:
            start.wait()
            for _ in range(requests):
                t0 = time.perf_counter()
                try:
                    r = http.post(url, files=parts)
                    body = r.content
                except Exception as err:  # a lost answer: counted, the client goes on
                    with lock:
                        failures.append(f"{type(err).__name__}: {err}")
                    continue
                ms = 1000.0 * (time.perf_counter() - t0)
                digest = answer_hash(body) if r.status_code == 200 else None
                with lock:
                    latencies.append(ms)
                    statuses[r.status_code] += 1
                    if digest is not None:
                        answers[digest] += 1

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall_s = time.perf_counter() - t0
    mismatches = sum(n for h, n in answers.items() if expected is not None and h != expected)
    return {
        "latencies_ms": latencies,
        "statuses": dict(statuses),
        "answers": dict(answers),
        "mismatches": mismatches,
        "failures": failures,
        "wall_s": wall_s,
    }


def summarise(run: dict[str, Any], clients: int, requests: int) -> dict[str, Any]:
    """Requests per second, latency percentiles and the error count of a :func:`hammer` run."""
    lat = run["latencies_ms"]
    total = clients * requests
    ok = run["statuses"].get(200, 0) - run["mismatches"]
    return {
        "clients": clients,
        "requests_per_client": requests,
        "requests": total,
        "answered_200": run["statuses"].get(200, 0),
        "errors": total - ok,
        "statuses": {str(k): v for k, v in run["statuses"].items()},
        "failures": run["failures"][:5],
        "wall_s": round(run["wall_s"], 2),
        "requests_per_s": round(len(lat) / run["wall_s"], 2),
        "latency_p50_ms": round(percentile(lat, 50), 1) if lat else None,
        "latency_p95_ms": round(percentile(lat, 95), 1) if lat else None,
        "latency_max_ms": round(max(lat), 1) if lat else None,
    }


def write_random_run(run_dir: Path) -> Path:
    """A shhs_spo2 run folder as training leaves it: the synthetic-size network, random weights."""
    import torch
    from omegaconf import OmegaConf

    from sleepbench.config import apply_synthetic_overrides, load_config
    from sleepbench.registry import get_task

    torch.manual_seed(0)
    cfg = apply_synthetic_overrides(load_config(TASK))
    net = get_task(TASK).export_spec(cfg).net
    (run_dir / "checkpoints").mkdir(parents=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 0}, run_dir / "checkpoints" / "best.ckpt")
    return run_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(ckpt: Path, port: int, log_path: Path) -> subprocess.Popen:
    """``sleepbench serve`` in a child process; returns once ``/health`` answers."""
    import httpx

    cmd = [sys.executable, "-m", "sleepbench.cli", "serve", "--task", TASK, "--ckpt", str(ckpt)]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    log = log_path.open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}):\n{log_path.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"the server did not answer /health in 300 s:\n{log_path.read_text()}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    p.add_argument("--requests", type=int, default=50, help="requests per client")
    p.add_argument("--hours", type=float, default=8.0, help="length of the synthetic night (h)")
    p.add_argument("--ckpt", help="shhs_spo2 checkpoint / run folder (default: random weights)")
    args = p.parse_args()
    load_before = os.getloadavg()[0]

    import httpx

    from sleepbench.tasks.shhs_spo2.synth import write_synthetic_shhs

    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        write_synthetic_shhs(tmp_dir / "shhs", n_subjects=1, visits=("shhs1",), hours=args.hours)
        (edf,) = (tmp_dir / "shhs").rglob("*.edf")
        (xml,) = (tmp_dir / "shhs").rglob("*-nsrr.xml")
        files = [(edf.name, edf.read_bytes()), (xml.name, xml.read_bytes())]
        ckpt = Path(args.ckpt) if args.ckpt else write_random_run(tmp_dir / "run")
        port = free_port()
        url = f"http://127.0.0.1:{port}/predict/{TASK}"
        t0 = time.perf_counter()
        server = start_server(ckpt, port, tmp_dir / "server.log")
        try:
            startup_s = time.perf_counter() - t0
            health = httpx.get(f"http://127.0.0.1:{port}/health").json()["tasks"][TASK]
            first = httpx.post(url, files=[("files", f) for f in files], timeout=300)
            if first.status_code != 200:
                raise RuntimeError(f"reference request: {first.status_code} {first.text}")
            expected = answer_hash(first.content)
            hammer(url, files, args.clients, 2, expected)  # warm-up: every thread's buffers
            rss_start = rss_mb(server.pid)
            run = hammer(url, files, args.clients, args.requests, expected)
            rss_end = rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    figures = summarise(run, args.clients, args.requests)
    figures.update(
        {
            "rss_start_mb": round(rss_start, 1),
            "rss_end_mb": round(rss_end, 1),
            "rss_growth_mb": round(rss_end - rss_start, 1),
            "startup_s": round(startup_s, 1),
            "task": TASK,
            "model": {k: health[k] for k in ("model", "file", "format", "config_hash")},
            "random_weights": not args.ckpt,
            "night_h": args.hours,
            "upload_kb": round(sum(len(d) for _, d in files) / 1024, 1),
            # other processes' load when the run began (1-min average): on a shared machine
            # the figures are lower bounds
            "load_average_before": round(load_before, 2),
        }
    )
    print(
        f"{figures['requests']} requests ({args.clients} clients): "
        f"{figures['requests_per_s']} req/s, p50 {figures['latency_p50_ms']} ms, "
        f"p95 {figures['latency_p95_ms']} ms, max {figures['latency_max_ms']} ms, "
        f"errors {figures['errors']}, RSS {figures['rss_start_mb']} -> {figures['rss_end_mb']} MB"
    )
    write_json("serve", figures)


if __name__ == "__main__":
    main()
