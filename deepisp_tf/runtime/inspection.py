"""What a LiteRT model holds: its operators (delegated or not) and the sparsity of its weights.

The one reader of weight statistics for the runtime, the benchmarks and `export` (which calls
`weight_sparsity`). No TensorFlow.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")
# Ops between a stored weight tensor and the kernel that reads it.
_WEIGHT_SOURCES = ("DEQUANTIZE", "DENSIFY")


@dataclasses.dataclass(frozen=True)
class OpInfo:
    """One operator of the model.

    Attributes:
      index: node index in the primary subgraph.
      name: builtin op name, e.g. "CONV_2D".
      delegated: True when a delegate kernel replaced it, False when it runs on a CPU kernel.
    """

    index: int
    name: str
    delegated: bool


def list_ops(interpreter: Interpreter) -> list[OpInfo]:
    """List an allocated interpreter's operators and whether each runs inside a delegate kernel.

    A node counts as delegated when it lies between a DELEGATE node's inputs and outputs
    (walking back from the delegate's outputs through producers until its inputs).
    """
    details = interpreter._get_ops_details()  # pylint: disable=protected-access
    producer = {int(t): d["index"] for d in details if d["op_name"] != "DELEGATE"
                for t in d["outputs"]}
    delegated: set[int] = set()
    for node in (d for d in details if d["op_name"] == "DELEGATE"):
        boundary = {int(t) for t in node["inputs"]}
        stack = [int(t) for t in node["outputs"]]
        while stack:
            index = producer.get(stack.pop())
            if index is None or index in delegated:
                continue
            delegated.add(index)
            stack.extend(int(t) for t in details[index]["inputs"]
                         if t >= 0 and int(t) not in boundary)
    return [OpInfo(d["index"], d["op_name"], d["index"] in delegated)
            for d in details if d["op_name"] != "DELEGATE"]


def weights_summary(interpreter: Interpreter) -> dict[str, Any]:
    """Summarize the weights of the conv / dense ops: dtypes, count, zeros, sparse tensors.

    Weights behind a DEQUANTIZE (float16) or DENSIFY (sparse) op are read at their source, as
    stored (a sparse tensor holds only its values, counted at its dense size).

    Returns:
      {"dtypes": {dtype: tensors}, "parameters": n, "zero_fraction": f (None without weights),
       "sparse_tensors": tensors stored in TFLite's sparse format}.
    """
    details = {detail["index"]: detail for detail in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()  # pylint: disable=protected-access
    producer = {int(t): op for op in ops if op["op_name"] != "DELEGATE" for t in op["outputs"]}
    dtypes: dict[str, int] = {}
    parameters = zeros = sparse = 0
    for op in ops:
        if op["op_name"] not in WEIGHT_OPS:
            continue
        index = int(op["inputs"][1])
        while index in producer and producer[index]["op_name"] in _WEIGHT_SOURCES:
            index = int(producer[index]["inputs"][0])
        detail = details.get(index)
        if detail is None:
            continue
        try:
            values = interpreter.get_tensor(index)
        except ValueError:  # no data (not a constant)
            continue
        name = np.dtype(detail["dtype"]).name
        dtypes[name] = dtypes.get(name, 0) + 1
        count = int(np.prod(detail["shape"]))
        parameters += count
        zeros += count - int(np.count_nonzero(values))
        sparse += bool(detail.get("sparsity_parameters"))
    return {"dtypes": dtypes, "parameters": parameters,
            "zero_fraction": zeros / parameters if parameters else None,
            "sparse_tensors": sparse}


def weight_sparsity(path: str) -> float:
    """Return the fraction of zero weights over the conv / dense kernels of a .tflite file
    (0.0 for a model without such weights); opened without delegates, so nothing is repacked."""
    interpreter = Interpreter(model_path=path, experimental_op_resolver_type=(
        OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    interpreter.allocate_tensors()
    return weights_summary(interpreter)["zero_fraction"] or 0.0
