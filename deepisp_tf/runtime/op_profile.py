"""Per-op profile of a .tflite model on LiteRT's default CPU path (XNNPACK), no TensorFlow.

LiteRT's Python `Interpreter` exposes no op profiler, so each operator is timed on its own: the
model's flatbuffer is cut into one single-op model per node (the node's constant inputs kept,
its other inputs made graph inputs, quantization kept), and every such model is invoked on the
same CPU path and thread count as the whole model. What that measures is the op's kernel on
the op's real shapes and types; what it leaves out is the cost between ops inside one XNNPACK
partition (the whole model's time minus the nodes' sum says how much that is, usually a few
percent: the runtime's invoke overhead counts once per node here).

    profile = profile_model("tile_int8.tflite", threads=1)
    print(format_profile(profile, cpu_info()))

The table names the CPU model and the ISA flags that decide XNNPACK's kernels
(`cpu_info`, from /proc/cpuinfo), since the same graph ranks differently on other CPUs.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import platform
import statistics
import time
from typing import Any, Iterable

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from deepisp_tf.runtime import inspection

# ISA flags that select XNNPACK's kernels (x86: /proc/cpuinfo "flags", ARM: "Features").
ISA_FLAGS = ("sse4_1", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw",
             "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16",
             "asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2", "sme")
_OP_NAMES = {value: name for name, value in vars(schema.BuiltinOperator).items()
             if not name.startswith("_")}
_NUMPY_TYPES = {schema.TensorType.FLOAT32: np.float32, schema.TensorType.INT8: np.int8,
                schema.TensorType.UINT8: np.uint8, schema.TensorType.INT32: np.int32,
                schema.TensorType.INT16: np.int16, schema.TensorType.FLOAT16: np.float16,
                schema.TensorType.INT64: np.int64, schema.TensorType.BOOL: np.bool_}
_FILE_IDENTIFIER = b"TFL3"
# How the timed invokes of one measurement are summarised: the median, or the minimum (the
# kernel's own cost, most stable on a shared machine where other processes preempt this one).
STATISTICS = {"median": statistics.median, "min": min}


@dataclasses.dataclass(frozen=True)
class CpuInfo:
    """The host CPU: model name, the ISA flags of `ISA_FLAGS` it has, logical cores."""

    model: str
    flags: tuple[str, ...]
    cores: int

    def line(self) -> str:
        """One line for a report, e.g. 'Intel Xeon ... (2 cores; avx2 avx512_vnni ...)'."""
        return f"{self.model} ({self.cores} cores; ISA: {' '.join(self.flags) or 'none listed'})"


@dataclasses.dataclass(frozen=True)
class NodeTime:
    """One operator of the primary subgraph, timed alone.

    Attributes:
      index: node index in the model's primary subgraph.
      op: builtin op name, e.g. "CONV_2D".
      output: output shape and type, e.g. "1x64x64x32 int8".
      ms: median invoke time of the op's single-op model, in milliseconds.
    """

    index: int
    op: str
    output: str
    ms: float


@dataclasses.dataclass(frozen=True)
class Profile:
    """A model's per-op profile on the default CPU path.

    Attributes:
      model: the model's path.
      threads: interpreter threads.
      whole_ms: median invoke time of the whole model.
      nodes: every operator, in graph order.
      partitions: XNNPACK partitions (DELEGATE nodes) of the whole model.
      undelegated: names of the ops left to LiteRT's own kernels (sorted, unique).
    """

    model: str
    threads: int
    whole_ms: float
    nodes: tuple[NodeTime, ...]
    partitions: int
    undelegated: tuple[str, ...]

    def by_type(self) -> dict[str, tuple[int, float]]:
        """Return {op name: (node count, summed ms)}, slowest first."""
        totals: dict[str, list[float]] = {}
        for node in self.nodes:
            entry = totals.setdefault(node.op, [0, 0.0])
            entry[0] += 1
            entry[1] += node.ms
        ordered = sorted(totals.items(), key=lambda item: -item[1][1])
        return {op: (int(count), float(ms)) for op, (count, ms) in ordered}

    def nodes_ms(self) -> float:
        """Sum of the per-node times."""
        return float(sum(node.ms for node in self.nodes))


def cpu_info(path: str = "/proc/cpuinfo") -> CpuInfo:
    """Read the CPU model and its XNNPACK-relevant ISA flags (falls back to `platform`)."""
    model, flags = "", set()
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "hardware", "cpu model") and not model:
                    model = value.strip()
                elif key in ("flags", "features"):
                    flags.update(value.split())
    except OSError:
        pass
    return CpuInfo(model or platform.processor() or platform.machine(),
                   tuple(flag for flag in ISA_FLAGS if flag in flags), os.cpu_count() or 1)


def op_name(model: Any, opcode_index: int) -> str:
    """Return the builtin name of operator code `opcode_index` of a `schema.ModelT`."""
    code = model.operatorCodes[opcode_index]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == schema.BuiltinOperator.CUSTOM:
        return f"CUSTOM:{(code.customCode or b'').decode()}"
    return _OP_NAMES.get(builtin, str(builtin))


def _describe(tensor: Any) -> str:
    shape = "x".join(str(int(n)) for n in (tensor.shape if tensor.shape is not None else []))
    dtype = _NUMPY_TYPES.get(tensor.type)
    return f"{shape} {np.dtype(dtype).name if dtype else tensor.type}"


def _is_constant(model: Any, tensor: Any) -> bool:
    data = model.buffers[tensor.buffer].data if tensor.buffer < len(model.buffers) else None
    return tensor.buffer != 0 and data is not None and len(data) > 0


def single_op_models(content: bytes) -> list[tuple[int, str, str, bytes]]:
    """Cut a .tflite model into one model per operator of its primary subgraph.

    Args:
      content: the .tflite flatbuffer.

    Returns:
      [(node index, op name, output description, single-op .tflite bytes)], in graph order.
      Each single-op model has the op's constant inputs as constants and its other inputs
      as graph inputs, the op's outputs as graph outputs, and no signature.
    """
    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    graph = model.subgraphs[0]
    results = []
    for index, op in enumerate(graph.operators):
        buffers = [schema.BufferT()]
        tensors, remap, inputs = [], {}, []
        for position in [*op.inputs, *op.outputs]:
            if position < 0 or position in remap:
                continue
            tensor = copy.copy(graph.tensors[position])
            if _is_constant(model, tensor):
                buffers.append(model.buffers[tensor.buffer])
                tensor.buffer = len(buffers) - 1
            else:
                tensor.buffer = 0
                if position in op.inputs:
                    inputs.append(len(tensors))
            remap[position] = len(tensors)
            tensors.append(tensor)
        single_op = copy.copy(op)
        single_op.inputs = [remap[p] if p >= 0 else -1 for p in op.inputs]
        single_op.outputs = [remap[p] for p in op.outputs]
        subgraph = schema.SubGraphT()
        subgraph.tensors, subgraph.operators = tensors, [single_op]
        subgraph.inputs, subgraph.outputs = inputs, single_op.outputs
        sliced = schema.ModelT()
        sliced.version, sliced.operatorCodes = model.version, model.operatorCodes
        sliced.subgraphs, sliced.buffers = [subgraph], buffers
        sliced.description = b"single op"
        builder = flatbuffers.Builder(1024)
        builder.Finish(sliced.Pack(builder), file_identifier=_FILE_IDENTIFIER)
        output = ", ".join(_describe(graph.tensors[p]) for p in op.outputs)
        results.append((index, op_name(model, op.opcodeIndex), output, bytes(builder.Output())))
    return results


def _fill_inputs(interpreter: Interpreter, rng: np.random.Generator) -> None:
    for detail in interpreter.get_input_details():
        dtype, shape = np.dtype(detail["dtype"]), detail["shape"]
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            low, high = max(int(info.min), -128), min(int(info.max), 127)
            values = rng.integers(low, high + 1, size=shape).astype(dtype)
        else:
            values = rng.random(shape).astype(dtype)
        interpreter.set_tensor(detail["index"], values)


def time_invoke(interpreter: Interpreter, runs: int, warmup: int, seed: int = 0,
                statistic: str = "median") -> float:
    """Return the median (or `statistic`) wall time of `interpreter.invoke()` in ms."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got {runs} and {warmup}")
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {sorted(STATISTICS)}, got {statistic!r}")
    _fill_inputs(interpreter, np.random.default_rng(seed))
    for _ in range(warmup):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
    return 1e3 * STATISTICS[statistic](times)


def delegation(interpreter: Interpreter) -> tuple[int, tuple[str, ...]]:
    """Return (XNNPACK partitions, names of the ops no delegate took) of an interpreter.

    A node is delegated when it lies between a DELEGATE node's inputs and outputs.
    """
    ops = inspection.list_ops(interpreter)
    details = interpreter._get_ops_details()  # pylint: disable=protected-access
    partitions = sum(1 for d in details if d["op_name"] == "DELEGATE")
    return partitions, tuple(sorted({op.name for op in ops if not op.delegated}))


def _interpreter(content: bytes, threads: int) -> Interpreter:
    interpreter = Interpreter(model_content=content, num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter


def profile_model(path: str, threads: int = 1, runs: int = 50, warmup: int = 5,
                  node_runs: int | None = None, statistic: str = "median") -> Profile:
    """Time `path` whole and op by op on LiteRT's default CPU path.

    Args:
      path: a .tflite file.
      threads: interpreter threads (XNNPACK's thread pool).
      runs: timed invokes of the whole model (median).
      warmup: untimed invokes before timing.
      node_runs: timed invokes per single-op model (default `runs`).
      statistic: "median" or "min" of the timed invokes (`STATISTICS`).

    Returns:
      The profile.

    Raises:
      ValueError: `path` does not exist or `threads` < 1.
    """
    if not os.path.isfile(path):
        raise ValueError(f"no .tflite model at {path}")
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    with open(path, "rb") as handle:
        content = handle.read()
    whole = _interpreter(content, threads)
    partitions, undelegated = delegation(whole)
    whole_ms = time_invoke(whole, runs, warmup, statistic=statistic)
    nodes = []
    for index, name, output, single in single_op_models(content):
        interpreter = _interpreter(single, threads)
        nodes.append(NodeTime(index, name, output,
                              time_invoke(interpreter, node_runs or runs, warmup,
                                          statistic=statistic)))
    return Profile(path, threads, whole_ms, tuple(nodes), partitions, undelegated)


def alternate_whole(paths: list[str], threads: int, runs: int = 50, rounds: int = 3,
                    warmup: int = 5, statistic: str = "median") -> dict[str, float]:
    """Time whole models in alternation (A B A B ...): {path: median of the rounds' medians}.

    Alternating spreads the noise of a shared machine over every model alike, so the ratios
    between them mean more than each figure alone.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    interpreters = {}
    for path in paths:
        if not os.path.isfile(path):
            raise ValueError(f"no .tflite model at {path}")
        with open(path, "rb") as handle:
            interpreters[path] = _interpreter(handle.read(), threads)
    times: dict[str, list[float]] = {path: [] for path in paths}
    for _ in range(rounds):
        for path, interpreter in interpreters.items():
            times[path].append(time_invoke(interpreter, runs, warmup, statistic=statistic))
    return {path: float(statistics.median(values)) for path, values in times.items()}


def format_profile(profile: Profile, cpu: CpuInfo, top: int = 15) -> str:
    """Return a Markdown report: CPU, whole-model time, per-op-type table, slowest nodes."""
    total = profile.nodes_ms()
    lines = [f"model: {profile.model}", f"CPU: {cpu.line()}",
             f"threads: {profile.threads}; whole model {profile.whole_ms:.3f} ms; "
             f"sum of ops alone {total:.3f} ms; XNNPACK partitions {profile.partitions}; "
             f"not delegated: {', '.join(profile.undelegated) or 'none'}", "",
             "| op | nodes | ms | share |", "| --- | ---: | ---: | ---: |"]
    for op, (count, ms) in profile.by_type().items():
        lines.append(f"| {op} | {count} | {ms:.3f} | {100 * ms / max(total, 1e-9):.1f}% |")
    lines += ["", f"slowest {min(top, len(profile.nodes))} nodes:", "",
              "| node | op | output | ms |", "| ---: | --- | --- | ---: |"]
    for node in sorted(profile.nodes, key=lambda n: -n.ms)[:top]:
        lines.append(f"| {node.index} | {node.op} | {node.output} | {node.ms:.3f} |")
    return "\n".join(lines)


def compare(profiles: Iterable[Profile]) -> str:
    """Return a Markdown table of op-type times side by side (one column per profile)."""
    profiles = list(profiles)
    ops: list[str] = []
    for profile in profiles:
        ops += [op for op in profile.by_type() if op not in ops]
    header = " | ".join("/".join(p.model.replace(os.sep, "/").split("/")[-2:]) for p in profiles)
    lines = [f"| op | {header} |", "| --- |" + " ---: |" * len(profiles)]
    for op in ops:
        cells = []
        for profile in profiles:
            count, ms = profile.by_type().get(op, (0, 0.0))
            cells.append(f"{ms:.3f} ({count})" if count else "–")
        lines.append(f"| {op} | {' | '.join(cells)} |")
    lines.append("| whole model | " + " | ".join(f"{p.whole_ms:.3f}" for p in profiles) + " |")
    return "\n".join(lines)
