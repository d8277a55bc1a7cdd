"""``sleepbench serve`` in process (FastAPI's test client): /health, a synthetic SHHS night through
POST /predict/shhs_spo2, and every bad input answered 4xx with one line, never a 500 or a
traceback; uploads bounded while streaming and kept in a private folder removed after the answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from sleepbench.deploy.model import DeployedModel, load_model  # noqa: E402
from sleepbench.deploy.predict import predict_files  # noqa: E402
from sleepbench.deploy.serve import INTERNAL_ERROR, create_app  # noqa: E402
from sleepbench.deploy.uploads import UploadError, safe_name  # noqa: E402
from sleepbench.errors import UserError  # noqa: E402
from sleepbench.tasks.shhs_spo2.synth import write_synthetic_shhs  # noqa: E402
from tests.deploy.runs import write_run  # noqa: E402

TASK = "shhs_spo2"
URL = f"/predict/{TASK}"
MB = 1_000_000


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One synthetic SHHS1 night of 1 h: its EDF and NSRR XML."""
    root = tmp_path_factory.mktemp("shhs")
    write_synthetic_shhs(root, n_subjects=1, visits=("shhs1",), hours=1.0, seed=5)
    (edf,) = root.rglob("*.edf")
    (xml,) = root.rglob("*-nsrr.xml")
    return edf, xml


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shhs_spo2 run folder (small network, random weights)."""
    folder = tmp_path_factory.mktemp("run") / "shhs"
    write_run(TASK, folder)
    return folder


@pytest.fixture(scope="module")
def model(run_dir: Path) -> DeployedModel:
    return load_model(TASK, run_dir)


@pytest.fixture(scope="module")
def client(model: DeployedModel) -> TestClient:
    return TestClient(create_app({TASK: model}, max_upload_bytes=10 * MB))


def _parts(*files: Path | tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes]]]:
    out = []
    for f in files:
        name, data = (f.name, f.read_bytes()) if isinstance(f, Path) else f
        out.append(("files", (name, data)))
    return out


def _one_line_4xx(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str)
    assert "\n" not in body["detail"] and "Traceback" not in body["detail"]
    assert tempfile.gettempdir() not in body["detail"]  # no server path
    return body["detail"]


def test_health(client: TestClient, model: DeployedModel) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["device"] == "cpu" and body["sleepbench"]
    entry = body["tasks"][TASK]
    assert entry["sha256"] == model.sha256 and len(entry["sha256"]) == 64
    assert entry["config_hash"] == model.config_hash
    assert entry["model"] == "MSC-Mamba-LSTM" and entry["format"] == "checkpoint"
    assert entry["file"] == "best.ckpt"
    assert isinstance(entry["trained_on_synthetic_data"], bool)
    assert "EDF" in entry["accepts"]


def test_a_night_is_predicted(
    client: TestClient, model: DeployedModel, night: tuple[Path, Path]
) -> None:
    edf, xml = night
    r = client.post(URL, files=_parts(xml, edf))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["task"] == TASK and body["recording"]["record_id"] == edf.stem
    assert body["summary"]["severity"] in body["classes"]
    assert body["reference"]["ahi_events_per_h"] >= 0
    assert body["model"]["sha256"] == model.sha256
    # the service answers what `sleepbench predict` writes
    local = predict_files(model, [edf, xml])
    body.pop("created"), local.pop("created")
    assert body == json.loads(json.dumps(local))


def test_bad_inputs_are_4xx_with_one_line(
    client: TestClient, night: tuple[Path, Path], tmp_path: Path
) -> None:
    edf, xml = night
    data = edf.read_bytes()
    detail = _one_line_4xx(client.post(URL, files=_parts((edf.name, data[: len(data) // 3]))), 400)
    assert detail.startswith(edf.name) and "truncated" in detail
    detail = _one_line_4xx(client.post(URL, files=_parts((edf.name, b"not an EDF" * 50))), 400)
    assert edf.name in detail
    detail = _one_line_4xx(client.post(URL, files=_parts(edf, ("notes.txt", b"hi"))), 400)
    assert "notes.txt: not an EDF" in detail
    other = ("shhs1-999999-nsrr.xml", xml.read_bytes())
    detail = _one_line_4xx(client.post(URL, files=_parts(edf, other)), 400)
    assert "is not the annotation of" in detail
    detail = _one_line_4xx(client.post(URL, files=_parts(xml)), 400)
    assert "exactly one EDF" in detail
    detail = _one_line_4xx(client.post(URL, files=_parts(edf, edf)), 400)
    assert "uploaded twice" in detail
    # no `files` field: 422 (as FastAPI's validation); not multipart at all: 415
    r = client.post(URL, files=[("file", (edf.name, b"x"))])
    assert "no file in field 'files'" in _one_line_4xx(r, 422)
    _one_line_4xx(client.post(URL, data={"files": "text"}), 415)
    _one_line_4xx(client.post(URL, content=b"{}", headers={"content-type": "text/plain"}), 415)
    r = client.post(URL, content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data"})
    assert "boundary" in _one_line_4xx(r, 400)
    r = client.post(
        URL,
        content=b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="a.edf"\r\n'
        b"\r\nhalf a file",
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert "closing boundary" in _one_line_4xx(r, 400)


@pytest.mark.parametrize(
    "name",
    ["../shhs1-200001.edf", "..", "", ".hidden.edf", "a;rm -rf.edf", "a\x00b.edf", "é.edf"],
)
def test_file_names_are_refused(client: TestClient, name: str) -> None:
    _one_line_4xx(client.post(URL, files=_parts((name, b"data"))), 400)


def test_safe_names() -> None:
    assert safe_name("C:\\Users\\x\\shhs1-200001.edf") == "shhs1-200001.edf"
    assert safe_name("dir/SC4001E0-PSG.edf") == "SC4001E0-PSG.edf"
    assert safe_name("00000995-100507[001].edf") == "00000995-100507[001].edf"
    for bad in ("a/../b.edf", "x/", "a|b"):
        with pytest.raises(UploadError):
            safe_name(bad)


def test_unknown_task_is_404(client: TestClient, night: tuple[Path, Path]) -> None:
    detail = _one_line_4xx(client.post("/predict/nope", files=_parts(night[0])), 404)
    assert "'nope' is not served here; served: shhs_spo2" in detail and "registered" in detail
    detail = _one_line_4xx(client.post("/predict/sleep_edf", files=_parts(night[0])), 404)
    assert "served: shhs_spo2" in detail
    assert client.get(URL).status_code == 405


def test_uploads_over_the_limit_are_413(model: DeployedModel, night: tuple[Path, Path]) -> None:
    small = TestClient(create_app({TASK: model}, max_upload_bytes=4000))
    detail = _one_line_4xx(small.post(URL, files=_parts(night[0])), 413)
    assert "limit is 0.004 MB" in detail

    def chunked():  # no Content-Length: counted while streaming
        for _ in range(20):
            yield b"x" * 1000

    r = small.post(
        URL, content=chunked(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    _one_line_4xx(r, 413)


def _asgi_post(app: Any, headers: dict[str, str], chunks: list[bytes]) -> tuple[int, int]:
    """POST ``chunks`` to ``app`` at the ASGI level; (status, chunks the app read)."""
    read = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal read
        read += 1
        if read > len(chunks):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": URL,
        "raw_path": URL.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], read


def test_the_limit_is_enforced_before_reading_and_while_streaming(model: DeployedModel) -> None:
    app = create_app({TASK: model}, max_upload_bytes=100_000)
    multipart = {"content-type": "multipart/form-data; boundary=b"}
    head = b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.edf"\r\n\r\n'
    chunks = [head] + [b"\0" * 10_000] * 1000  # 10 MB offered
    # a declared length over the limit: refused before the first byte is read
    assert _asgi_post(app, {**multipart, "content-length": str(10**10)}, chunks) == (413, 0)
    # no declared length: the body is read only until it passes the limit
    status, read = _asgi_post(app, multipart, chunks)
    assert status == 413 and read <= 12


def test_uploads_live_in_a_private_folder_removed_after_the_answer(
    client: TestClient, night: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[tuple[Path, int]] = []
    seen: list[list[str]] = []
    mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(*args: Any, **kwargs: Any) -> str:
        path = mkdtemp(*args, **kwargs)
        made.append((Path(path), stat.S_IMODE(Path(path).stat().st_mode)))
        return path

    def spying_predict(model: DeployedModel, files: list[Path]) -> dict:
        seen.append(sorted(p.name for p in Path(files[0]).parent.iterdir()))
        return predict_files(model, files)

    monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)
    monkeypatch.setattr("sleepbench.deploy.serve.predict_files", spying_predict)
    edf, xml = night
    assert client.post(URL, files=_parts(edf, xml)).status_code == 200
    assert client.post(URL, files=_parts((edf.name, b"short"))).status_code == 400
    assert client.post(URL, files=[("nothing", ("a.edf", b"x"))]).status_code == 422
    assert seen[0] == sorted([edf.name, xml.name])
    assert len(made) == 3
    for folder, mode in made:
        assert mode == 0o700
        assert not folder.exists()


def test_a_bug_is_a_generic_500_logged_server_side(
    model: DeployedModel, night: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(x: Any) -> Any:
        raise RuntimeError("secret internals at /srv/model")

    app = create_app({TASK: dataclasses.replace(model, forward=broken)}, 10 * MB)
    client = TestClient(app, raise_server_exceptions=False)
    with caplog.at_level(logging.INFO, logger="sleepbench.serve"):
        r = client.post(URL, files=_parts(*night))
    assert r.status_code == 500 and r.json() == {"detail": INTERNAL_ERROR}
    assert "Traceback" not in r.text and "secret" not in r.text
    records = [rec for rec in caplog.records if rec.name == "sleepbench.serve"]
    errors = [rec for rec in records if rec.levelno >= logging.ERROR]
    assert errors and errors[0].exc_info and "secret internals" in str(errors[0].exc_info[1])
    # one line per request: task, record id, status, latency; nothing of the recording
    (line,) = [rec.getMessage() for rec in records if rec.levelno == logging.INFO]
    assert line.startswith(f"predict task={TASK} record={night[0].stem} status=500 latency_ms=")


def test_docs_and_openapi(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    r = client.get("/openapi.json")
    assert r.status_code == 200
    op = r.json()["paths"]["/predict/{task}"]["post"]
    schema = op["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["files"]
    assert {"400", "404", "413", "422"} <= set(op["responses"])


def test_create_app_refuses_a_model_under_another_task(model: DeployedModel) -> None:
    with pytest.raises(UserError, match="is a shhs_spo2 model"):
        create_app({"sleep_edf": model}, MB)
    with pytest.raises(UserError, match="at least one model"):
        create_app({}, MB)


def test_the_command_serves_the_checkpoint(
    run_dir: Path, night: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from sleepbench.cli import main

    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    argv = ["serve", "--task", TASK, "--ckpt", str(run_dir), "--port", "8123"]
    assert main([*argv, "--max-upload-mb", "0.001"]) == 0
    assert served["host"] == "127.0.0.1" and served["port"] == 8123
    assert served["access_log"] is False  # the service logs its own lines, no client addresses
    client = TestClient(served["app"])
    assert client.get("/health").json()["tasks"][TASK]["file"] == "best.ckpt"
    assert client.post(URL, files=_parts(night[0])).status_code == 413  # the limit passed on
    assert main([*argv, "--max-upload-mb", "0"]) == 2  # refused with one line
