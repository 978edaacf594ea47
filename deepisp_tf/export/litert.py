"""The adapter between export and the LiteRT runtime: every LiteRT call the export makes.

Export opens each written `.tflite` with the runtime's `Runner` and asks four things of it:
the median invoke latency after warm-up, the weight sparsity of its kernels, its op list with
XNNPACK delegation, and its IO dtypes. They are the runtime's concepts (tools.benchmark and
tools.infer need the same), so this module only forwards to one implementation of each; the
timer, warm-up and sparsity reader are the runtime's own (`runtime.profiling`,
`runtime.inspection`).
"""

from __future__ import annotations

from typing import Any


from deepisp_tf.runtime import Runner, inspection, profiling

WARMUP_RUNS = 2
KERNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def open_runner(path: str, threads: int) -> Runner:
    """Open a written model on LiteRT's default CPU path (XNNPACK) with `threads` threads."""
    return Runner(path, threads=threads)


def latency_ms(runner: Runner, runs: int, seed: int = 0) -> float:
    """Return the median wall time (ms) of one invoke on random inputs, after warm-up runs."""
    return profiling.latency_ms(runner, runs, seed, WARMUP_RUNS)


def weight_sparsity(path: str) -> float:
    """Return the fraction of zero weights over the conv / dense kernels of a .tflite."""
    return inspection.weight_sparsity(path)


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
