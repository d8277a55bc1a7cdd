"""``sleepbench serve`` on a real uvicorn server (127.0.0.1, a background thread) under a bounded
concurrent load: 8 clients x 5 requests of one synthetic night, every answer 200 and identical to
the in-process answer, none lost, memory flat. The full 8 x 50 run is
``benchmarks/bench_serve.py``, whose load driver this test uses."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from types import ModuleType

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from sleepbench.deploy.model import load_model  # noqa: E402
from sleepbench.deploy.serve import create_app  # noqa: E402
from sleepbench.tasks.shhs_spo2.synth import write_synthetic_shhs  # noqa: E402
from tests.deploy.runs import write_run  # noqa: E402

TASK = "shhs_spo2"
CLIENTS, REQUESTS = 8, 5
#: resident memory the load may add after the warm-up (allocator noise, not a leak per request)
RSS_BOUND_MB = 40.0


@pytest.fixture(scope="module")
def bench(load_benchmark) -> ModuleType:
    """``benchmarks/bench_serve.py``, whose load generator the tests share."""
    return load_benchmark("bench_serve")


@pytest.fixture(scope="module")
def app_and_files(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("shhs")
    write_synthetic_shhs(root, n_subjects=1, visits=("shhs1",), hours=1.0, seed=11)
    (edf,) = root.rglob("*.edf")
    (xml,) = root.rglob("*-nsrr.xml")
    run_dir = tmp_path_factory.mktemp("run") / "shhs"
    write_run(TASK, run_dir)
    app = create_app({TASK: load_model(TASK, run_dir)}, max_upload_bytes=10_000_000)
    files = [(edf.name, edf.read_bytes()), (xml.name, xml.read_bytes())]
    return app, files


@pytest.fixture(scope="module")
def server_url(app_and_files) -> Iterator[str]:
    """The app on a real uvicorn server in a background thread; its base URL."""
    app, _ = app_and_files
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def test_concurrent_clients_get_every_answer_and_memory_stays_flat(
    bench, app_and_files, server_url: str
) -> None:
    app, files = app_and_files
    url = f"{server_url}/predict/{TASK}"
    local = TestClient(app).post(url, files=[("files", f) for f in files])
    assert local.status_code == 200
    expected = bench.answer_hash(local.content)

    warm = bench.hammer(url, files, CLIENTS, 2, expected)
    assert warm["statuses"] == {200: 2 * CLIENTS} and not warm["failures"]
    rss_start = bench.rss_mb()
    run = bench.hammer(url, files, CLIENTS, REQUESTS, expected)
    rss_end = bench.rss_mb()

    assert not run["failures"], run["failures"][:3]
    assert run["statuses"] == {200: CLIENTS * REQUESTS}  # none lost, none failed
    assert run["answers"] == {expected: CLIENTS * REQUESTS} and run["mismatches"] == 0
    assert rss_end <= rss_start + RSS_BOUND_MB, f"RSS {rss_start:.0f} -> {rss_end:.0f} MB"
    figures = bench.summarise(run, CLIENTS, REQUESTS)
    assert figures["errors"] == 0 and figures["requests_per_s"] > 0
    assert figures["latency_p50_ms"] <= figures["latency_p95_ms"] <= figures["latency_max_ms"]


def test_health_answers_while_predictions_run(bench, app_and_files, server_url: str) -> None:
    _, files = app_and_files
    url = f"{server_url}/predict/{TASK}"
    load = threading.Thread(target=bench.hammer, args=(url, files, 4, 3, None), daemon=True)
    load.start()
    slowest = 0.0
    with httpx.Client(timeout=30) as http:
        while load.is_alive():
            t0 = time.perf_counter()
            r = http.get(f"{server_url}/health")
            slowest = max(slowest, time.perf_counter() - t0)
            assert r.status_code == 200 and r.json()["status"] == "ok"
            time.sleep(0.05)
    load.join()
    assert slowest < 5.0  # the network runs off the event loop


def test_bad_requests_on_the_real_server(server_url: str) -> None:
    with httpx.Client(timeout=30) as http:
        r = http.post(f"{server_url}/predict/nope", files=[("files", ("a.edf", b"x"))])
        assert r.status_code == 404 and "not served here" in r.json()["detail"]
        r = http.post(f"{server_url}/predict/{TASK}", files=[("files", ("a.edf", b"x" * 100))])
        assert r.status_code == 400 and r.json()["detail"].startswith("a.edf")
        assert http.get(f"{server_url}/health").status_code == 200  # still serving
