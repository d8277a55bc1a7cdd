"""``sleepbench serve``: the trained models behind a small REST service (FastAPI + uvicorn).

Endpoints::

    GET  /health          {"status": "ok", "tasks": {task: {model, file, format, sha256,
                           config_hash, trained_on_synthetic_data, accepts}}, "device",
                           "sleepbench": version}
    POST /predict/{task}  multipart/form-data, field ``files``: the recording's files (each part
                          one file, e.g. an SHHS EDF and its NSRR XML) -> the JSON of
                          :func:`~sleepbench.deploy.predict.predict_files`
    GET  /docs            OpenAPI documentation (``/openapi.json``)

Errors are ``{"detail": "<one line>"}``: 404 a task not served here; 400 files that are not one
recording of the task, a file its reader refuses, a malformed body or a refused file name; 413 a
body over the upload limit (refused from its declared length before reading, or as soon as it
grows past it); 415 a body that is not multipart; 422 no file in ``files``. Anything else is a
bug: 500 with a generic line, the traceback in the server's log only.

Each request's files live in a private temporary folder (mode 0700) removed once the answer is
ready; nothing is stored. The network runs in a worker thread (the event loop keeps answering
``/health``); calls to one model are serialised by the model. The log has one line per
prediction: task, record id (file stem), status and latency, never a file's content.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from sleepbench.deploy.model import DeployedModel, load_model
from sleepbench.deploy.predict import get_predictor, predict_files, reading_errors
from sleepbench.deploy.uploads import (
    FIELD,
    UploadError,
    check_declared_length,
    private_folder,
    receive_files,
)
from sleepbench.errors import UserError
from sleepbench.registry import task_names

__all__ = ["create_app", "serve"]

log = logging.getLogger("sleepbench.serve")

#: answer of a bug (the traceback goes to the server's log, never to the client)
INTERNAL_ERROR = "internal error while predicting; the server log has the details"
#: longest error line sent back
MAX_DETAIL = 500

_ERROR = {"content": {"application/json": {"example": {"detail": "one line saying why"}}}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "not one recording of the task, a file refused by its reader", **_ERROR},
    404: {"description": "task not served here", **_ERROR},
    413: {"description": "upload larger than the server's limit", **_ERROR},
    415: {"description": "body is not multipart/form-data", **_ERROR},
    422: {"description": f"no file in the '{FIELD}' field", **_ERROR},
    500: {"description": "a bug; details in the server log only", **_ERROR},
}
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FIELD],
                    "properties": {
                        FIELD: {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "the recording's files (see /health: accepts)",
                        }
                    },
                }
            }
        },
    }
}


def _one_line(message: str, folder: Path | None = None) -> str:
    """``message`` on one line, without the server's temporary folder, at most MAX_DETAIL long."""
    if folder is not None:
        message = message.replace(f"{folder}/", "").replace(str(folder), "upload")
    line = " ".join(message.split())
    return line if len(line) <= MAX_DETAIL else line[: MAX_DETAIL - 3] + "..."


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _unknown_task(task: str, served: list[str]) -> str:
    shown = task if len(task) <= 40 else task[:37] + "..."
    if not shown.isprintable():
        shown = shown.encode("unicode_escape").decode("ascii")
    hint = "" if task in task_names() else f" (registered tasks: {', '.join(task_names())})"
    return f"task '{shown}' is not served here; served: {', '.join(served)}{hint}"


def create_app(models: Mapping[str, DeployedModel], max_upload_bytes: int) -> FastAPI:
    """The service's ASGI app for ``models`` (task -> loaded model).

    Args:
        models: the models to serve, by task name.
        max_upload_bytes: largest request body accepted (larger: 413).

    Raises:
        UserError: no model, a model filed under another task, a task without a predictor.
    """
    from sleepbench import __version__

    models = dict(models)
    if not models:
        raise UserError("serve needs at least one model (--task T --ckpt CKPT)")
    for task, model in models.items():
        if model.task != task:
            raise UserError(f"the model given for {task} is a {model.task} model")
    accepts = {task: get_predictor(model).accepts for task, model in models.items()}
    bad_input = (*reading_errors(), UserError)

    app = FastAPI(
        title="sleepbench",
        version=__version__,
        description=(
            "Research models of the sleepbench benchmark: not a medical device. "
            f"POST a recording's files (multipart field '{FIELD}') to /predict/{{task}}; "
            "GET /health lists the tasks served and the files each accepts."
        ),
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()
        ]
        return _error(422, _one_line("; ".join(parts) or "invalid request"))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s", request.url.path, exc_info=exc)
        return _error(500, INTERNAL_ERROR)

    @app.get("/health", summary="tasks served, their weights and the device")
    async def health() -> dict[str, Any]:
        tasks = {}
        for task, model in models.items():
            d = model.describe()
            tasks[task] = {
                "model": d["name"],
                **{k: d[k] for k in ("file", "format", "sha256", "config_hash")},
                "trained_on_synthetic_data": d["trained_on_synthetic_data"],
                "accepts": accepts[task],
            }
        return {"status": "ok", "tasks": tasks, "device": "cpu", "sleepbench": __version__}

    @app.post(
        "/predict/{task}",
        summary="predict one recording",
        description=(
            f"Upload one recording's files in the multipart field '{FIELD}' (one part per file; "
            f"at most {max_upload_bytes / 1e6:g} MB in all). The answer is the prediction JSON "
            "of `sleepbench predict`."
        ),
        responses=_RESPONSES,
        openapi_extra=_UPLOAD_BODY,
    )
    async def predict(task: str, request: Request) -> Response:
        t0 = time.perf_counter()
        status, record, folder = 500, "-", None
        try:
            model = models.get(task)
            if model is None:
                status = 404
                return _error(404, _unknown_task(task, list(models)))
            # a declared length over the limit: refused before a byte is read or a folder made
            check_declared_length(request.headers.get("content-length"), max_upload_bytes)
            with private_folder() as folder:
                files = await receive_files(
                    request.stream(), request.headers.get("content-type"), folder, max_upload_bytes
                )
                record = files[0].stem
                response, record = await run_in_threadpool(_answer, model, files)
                status = 200
                return response
        except UploadError as err:
            status = err.status
            return _error(status, _one_line(err.reason, folder))
        except bad_input as err:
            status = 400
            return _error(400, _one_line(str(err), folder))
        except ClientDisconnect:
            status = 499  # nobody reads this answer
            return Response(status_code=400)
        except Exception:
            log.exception("prediction failed: task=%s record=%s", task, record)
            return _error(500, INTERNAL_ERROR)
        finally:
            log.info(
                "predict task=%s record=%s status=%d latency_ms=%.0f",
                task if task in models else "?",
                record,
                status,
                1000.0 * (time.perf_counter() - t0),
            )

    return app


def _answer(model: DeployedModel, files: list[Path]) -> tuple[JSONResponse, str]:
    """Predict and render the JSON (both in a worker thread): the response and the record id."""
    result = predict_files(model, files)
    return JSONResponse(result), str(result["recording"]["record_id"])


def serve(
    ckpts: Mapping[str, str | Path],
    host: str = "127.0.0.1",
    port: int = 8000,
    max_upload_mb: float = 512.0,
) -> None:
    """Load the models of ``ckpts`` (task -> checkpoint, run folder or ONNX file) and serve them
    on ``host``:``port`` until interrupted; bodies over ``max_upload_mb`` MB are refused (413)."""
    import uvicorn

    if max_upload_mb <= 0:
        raise UserError(f"--max-upload-mb must be positive, got {max_upload_mb}")
    models = {task: load_model(task, path) for task, path in ckpts.items()}
    app = create_app(models, int(max_upload_mb * 1e6))
    for task, model in models.items():
        log.info(
            "serving %s: %s (%s, sha256 %s)", task, model.path.name, model.format, model.sha256[:16]
        )
    log.info("http://%s:%d/docs (uploads up to %g MB)", host, port, max_upload_mb)
    # uvicorn's access log would add client addresses: the service logs its own lines instead
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info")
