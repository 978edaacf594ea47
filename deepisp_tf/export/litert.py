"""The adapter between export and the LiteRT runtime: every LiteRT call the export makes.

Export opens each written `.tflite` with the runtime's `Runner` and asks four things of it:
the median invoke latency after warm-up, the weight sparsity of its kernels, its op list with
XNNPACK delegation, and its IO dtypes. They are the runtime's concepts (tools.benchmark and
tools.infer need the same), so this module only forwards to one implementation of each; the
functions below are kept small so they can be pointed at the runtime's own timer, warm-up and
sparsity reader without touching the rest of the export.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from deepisp_tf import constants
from deepisp_tf.runtime import Runner

WARMUP_RUNS = 2
KERNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def open_runner(path: str, threads: int) -> Runner:
    """Open a written model on LiteRT's default CPU path (XNNPACK) with `threads` threads."""
    return Runner(path, threads=threads)


def latency_ms(runner: Runner, runs: int, seed: int = 0) -> float:
    """Return the median wall time (ms) of one invoke on random inputs, after warm-up runs."""
    rng = np.random.default_rng(seed)
    bayer = rng.uniform(0, 1, runner.tile_shape).astype(np.float32)
    metadata = (rng.normal(0, 1, constants.METADATA_SIZE).astype(np.float32)
                if runner.has_metadata else None)
    times = []
    for index in range(WARMUP_RUNS + runs):
        start = time.perf_counter()
        runner.run(bayer, metadata)
        if index >= WARMUP_RUNS:
            times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def weight_sparsity(path: str) -> float:
    """Return the fraction of zero weights over the kernels of conv / dense ops in a .tflite.

    Weights stored as float16 (behind DEQUANTIZE) are read as stored; sparse-encoded weights
    are read after densification (behind DENSIFY) or as values of their dense shape (read
    directly by a sparse kernel).
    """
    interpreter = Interpreter(model_path=path, experimental_op_resolver_type=(
        OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    interpreter.allocate_tensors()
    details = interpreter._get_ops_details()  # pylint: disable=protected-access
    producer = {int(t): d for d in details for t in d["outputs"]}
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    if any(d["op_name"] == "DENSIFY" for d in details):
        interpreter.invoke()  # DENSIFY fills its (persistent) dense output on the first run
    zeros = total = 0
    for op in (d for d in details if d["op_name"] in KERNEL_OPS):
        index = int(op["inputs"][1])
        source = producer.get(index)
        if source is not None and source["op_name"] == "DEQUANTIZE":
            index = int(source["inputs"][0])
        weights = interpreter.get_tensor(index)
        size = int(np.prod(tensors[index]["shape"]))  # a sparse tensor holds only its values
        zeros += size - int(np.count_nonzero(weights))
        total += size
    return zeros / max(total, 1)


def delegation(runner: Runner) -> dict[str, Any]:
    """Return the op counts and whether XNNPACK (LiteRT's default CPU path) runs every op."""
    ops = runner.ops()
    counts: dict[str, int] = {}
    for op in ops:
        counts[op.name] = counts.get(op.name, 0) + 1
    undelegated = sorted({op.name for op in ops if not op.delegated})
    return {"ops": dict(sorted(counts.items())), "op_count": len(ops),
            "xnnpack_all_delegated": not undelegated, "not_delegated_ops": undelegated}


def io_dtypes(runner: Runner) -> dict[str, str]:
    """Return the stored dtype of each bound tensor (bayer, metadata, rgb) as text."""
    return {name: str(dtype) for name, dtype in runner.io_dtypes.items()}
