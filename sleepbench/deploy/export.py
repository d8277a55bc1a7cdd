"""``sleepbench export``: a trained run's network as an ONNX file with a dynamic batch axis.

The exporter is ``torch.onnx.export(..., dynamo=True)`` (the ``torch.export``-based exporter, the
default since torch 2.9; the TorchScript exporter is deprecated and cannot export the LSRM front
end's complex STFT). Export traces the network once on an example batch: every axis but the batch
axis is fixed at the task's input length (the Mamba scan's loop over chunk sizes and the LSTMs run
over that length; the batch axis stays symbolic, ``"batch"``). Opset 18 is the exporter's native
operator set (no version conversion) and has the ``STFT`` operator the LSRM tasks need (>= 17).

After export the file is checked: onnxruntime and torch run the same inputs (batches of 1 and 3,
neither the traced size) and the largest absolute difference is recorded. The facts of the export
(task, opset, inputs and outputs, the checkpoint's SHA-256, the run's config hash, that check) are
returned and also written into the model's ``metadata_props`` (values JSON-encoded;
:func:`read_metadata` decodes them), so a deployed file says where it came from.

Needs ``onnx``, ``onnxscript`` and ``onnxruntime`` (the ``dev`` extra).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sleepbench.config import to_plain
from sleepbench.deploy.checkpoint import load_checkpoint
from sleepbench.deploy.spec import ExportSpec
from sleepbench.errors import UserError
from sleepbench.registry import get_spec

__all__ = [
    "ONNX_OPSET",
    "TOLERANCE",
    "export_onnx",
    "max_abs_diff",
    "onnx_session",
    "read_metadata",
    "write_onnx",
]

log = logging.getLogger("sleepbench")

#: ONNX operator set of every export (torch's torchlib opset; STFT needs >= 17)
ONNX_OPSET = 18
#: largest absolute difference of onnxruntime from torch (fp32) that counts as agreement
TOLERANCE = 1e-4
#: batch sizes of the check after export (the trace used 2: these show the axis is dynamic)
CHECK_BATCHES = (1, 3)
# warnings of the exporter that say nothing to a user: the LSTM's cached flat-weight list is
# re-assigned while tracing (harmless), and a pytree deprecation inside torch itself
_QUIET = (r"The tensor attributes .*_flat_weights", r".*isinstance\(treespec, LeafSpec\)")


def _require_onnx() -> None:
    """Fail with a one-line hint when the ONNX packages are missing."""
    missing = [n for n in ("onnx", "onnxscript", "onnxruntime") if not importlib.util.find_spec(n)]
    if missing:
        raise UserError(
            f"ONNX export needs {', '.join(missing)}: pip install {' '.join(missing)} "
            "(or the dev extra: pip install -e '.[dev]')"
        )


def onnx_session(path: str | Path | bytes, threads: int | None = None) -> Any:
    """An onnxruntime CPU session of an ONNX file (or serialised model).

    Args:
        path: ``.onnx`` file, or the model's bytes.
        threads: intra-op threads (``None``: onnxruntime's default, one per core).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    source = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def max_abs_diff(net: nn.Module, session: Any, inputs: Sequence[torch.Tensor]) -> float:
    """Largest absolute difference between ``net`` (as it is: call ``eval()`` first) and the
    onnxruntime ``session`` over ``inputs`` (each a float32 batch for the single input)."""
    name = session.get_inputs()[0].name
    worst = 0.0
    for x in inputs:
        with torch.no_grad():
            expected = net(x).numpy()
        (got,) = session.run(None, {name: x.numpy()})
        if got.shape != expected.shape:
            raise RuntimeError(f"onnxruntime gave shape {got.shape}, torch {expected.shape}")
        worst = max(worst, float(np.max(np.abs(got - expected))))
    return worst


def _describe(values: Any, docs: Mapping[str, str]) -> list[dict[str, Any]]:
    """Graph inputs or outputs as ``{name, shape, dtype, doc}``; a symbolic axis is shown by its
    name (``"batch"``), a fixed one by its size."""
    import onnx

    out = []
    for v in values:
        tensor = v.type.tensor_type
        out.append(
            {
                "name": v.name,
                "shape": [d.dim_param or int(d.dim_value) for d in tensor.shape.dim],
                "dtype": onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name,
                "doc": docs.get(v.name, ""),
            }
        )
    return out


def write_onnx(
    spec: ExportSpec, out: str | Path, metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Export ``spec.net`` (in eval mode) to ``out`` with a dynamic batch axis, and check it.

    Args:
        spec: network and input description.
        out: ``.onnx`` file to write (folders are created).
        metadata: further facts for the file's ``metadata_props`` (task, checkpoint hash...).

    Returns:
        ``metadata`` plus ``path``, ``format``, ``opset``, ``inputs`` / ``outputs`` (name,
        shape with ``"batch"`` for the dynamic axis, dtype, description), ``item_s``,
        ``max_abs_diff`` (onnxruntime vs torch on :data:`CHECK_BATCHES`), ``tolerance``,
        ``torch``, ``size_bytes``. All but ``path`` and ``size_bytes`` are in the file too.
    """
    _require_onnx()
    import onnx

    out = Path(out)
    net = spec.net.eval()
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad(), warnings.catch_warnings():
        for pattern in _QUIET:
            warnings.filterwarnings("ignore", message=pattern)
        program = torch.onnx.export(
            net,
            (spec.example(batch=2),),
            dynamo=True,
            opset_version=ONNX_OPSET,
            input_names=[spec.input_name],
            output_names=[spec.output_name],
            dynamic_shapes=({0: batch},),
            verbose=False,
        )
    proto = program.model_proto
    docs = {spec.input_name: spec.input_doc, spec.output_name: spec.output_doc}
    info: dict[str, Any] = {
        **dict(metadata or {}),
        "format": "onnx",
        "opset": ONNX_OPSET,
        "inputs": _describe(proto.graph.input, docs),
        "outputs": _describe(proto.graph.output, docs),
        "item_s": float(spec.item_s),
        "exporter": "torch.onnx.export(dynamo=True)",
        "torch": torch.__version__,
    }
    session = onnx_session(proto.SerializeToString())
    checks = [spec.example(batch=b, seed=1 + b) for b in CHECK_BATCHES]
    info["max_abs_diff"] = max_abs_diff(net, session, checks)
    info["tolerance"] = TOLERANCE
    if info["max_abs_diff"] > TOLERANCE:
        log.warning(
            "onnxruntime differs from torch by up to %.3g (> %g) on %s",
            info["max_abs_diff"],
            TOLERANCE,
            out.name,
        )
    proto.producer_name = "sleepbench"
    proto.doc_string = f"input {spec.input_name}: {spec.input_doc}; output: {spec.output_doc}"
    del proto.metadata_props[:]
    for key, value in info.items():
        proto.metadata_props.add(key=key, value=json.dumps(value))
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out))
    return {**info, "path": str(out), "size_bytes": out.stat().st_size}


def export_onnx(task_name: str, ckpt: str | Path, out: str | Path) -> dict[str, Any]:
    """Export a trained run of ``task_name`` to ONNX.

    Args:
        task_name: registered task.
        ckpt: checkpoint file, or a folder under which the newest ``best.ckpt`` is taken.
        out: ``.onnx`` file to write.

    Returns:
        :func:`write_onnx`'s facts plus ``task``, ``model``, ``checkpoint``,
        ``checkpoint_sha256``, ``config_hash``, ``synthetic`` (trained on synthetic data),
        ``config`` (the run's resolved config) and ``input_state`` (normalisation statistics...).

    Raises:
        KeyError: unknown task.
        FileNotFoundError: no checkpoint or no run config.
        UserError: a checkpoint of another task or one that does not fit; ONNX packages missing.
    """
    _require_onnx()  # before loading anything: a missing package is the quicker answer
    loaded = load_checkpoint(task_name, ckpt)
    metadata = {
        "task": task_name,
        "model": get_spec(task_name).model,
        "checkpoint": str(loaded.path),
        "checkpoint_sha256": loaded.sha256,
        "config_hash": loaded.config_hash,
        "synthetic": loaded.synthetic,
        # what predict/serve need to read a night for this file without the run folder
        "config": to_plain(loaded.cfg),
        "input_state": loaded.input_state,
    }
    return write_onnx(loaded.spec, out, metadata)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The facts :func:`write_onnx` stored in an ONNX file's ``metadata_props``."""
    _require_onnx()
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    out: dict[str, Any] = {}
    for prop in model.metadata_props:
        try:
            out[prop.key] = json.loads(prop.value)
        except json.JSONDecodeError:  # written by another tool: keep the text
            out[prop.key] = prop.value
    return out
