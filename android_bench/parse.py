"""Parse the output of TFLite's `benchmark_model` and of LiteRT's `benchmark_litert_model`.

`benchmark_model` (C++, run on the phone) logs, possibly behind an `INFO: ` or logcat prefix:

  The input model file size (MB): 1.2
  Initialized session in 61.2ms.
  count=9 first=81913 curr=55502 min=55502 max=81913 avg=58984.7 std=8115      <- warm-up
  count=50 first=56576 curr=56299 min=54669 max=60236 avg=56265.8 std=982      <- runs
  Inference timings in us: Init: 61200, First inference: 81913, Warmup (avg): 58984.7, ...
  Memory footprint delta from the start of the tool (MB): init=2.4 overall=8.7
  Overall peak memory footprint (MB) via periodic monitoring: 13.2

All times there are microseconds (large ones in exponent form, `avg=2.95034e+06`); a run whose
times are all equal prints `count=N curr=T`. `python -m ai_edge_litert.tools.benchmark_litert_model`
(the `--local` path) prints a `BENCHMARK RESULTS` block in milliseconds instead. Both parsers
return a `BenchmarkResult` in milliseconds and megabytes.
"""

from __future__ import annotations

import dataclasses
import re

_N = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"

_SUMMARY = re.compile(
    rf"Inference timings in us: Init: (?P<init>{_N}), First inference: (?P<first>{_N}), "
    rf"Warmup \(avg\): (?P<warmup>{_N}), Inference \(avg\): (?P<avg>{_N})")
_STATS = re.compile(r"(?:^|[\s:])count=(?P<count>\d+)(?P<rest>(?:\s+\w+=\S+)*)")
_KEY_VALUE = re.compile(rf"(\w+)=({_N})")
_MEMORY_DELTA = re.compile(
    rf"(?:Memory footprint delta from the start of the tool|Peak memory footprint) \(MB\): "
    rf"init=(?P<init>{_N}) overall=(?P<overall>{_N})")
_PEAK = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring: ({_N})")
_MODEL_SIZE = re.compile(rf"The input model file size \(MB\): ({_N})")
_APPLIED = re.compile(r"[Aa]pplied (?P<name>\w+) delegate, and the model graph will be "
                      r"(?P<how>completely|partially) executed(?: by the delegate w/ "
                      r"(?P<kernels>\d+) delegate kernels)?")
_NOT_APPLIED = re.compile(r"Though (?P<name>\w+) delegate is explicitly applied, the model "
                          r"graph will not be executed")
_UNSUPPORTED = re.compile(r"(?P<name>\w+) acceleration is unsupported on this platform")
_ERROR = re.compile(r"\bERROR\b")
_BARE_LOCATION = re.compile(r"ERROR: \[[^\]]*\]\s*$")  # LiteRT's "ERROR: [file.cc:12]" frames
_EXCEPTION = re.compile(r"^(?:\w+\.)*\w*(?:Error|Exception): .+")

_LITERT_FIELDS = {
    "init_ms": rf"Model initialization:\s+({_N}) ms",
    "first_inference_ms": rf"Warmup \(first\):\s+({_N}) ms",
    "warmup_avg_ms": rf"Warmup \(avg\):\s+({_N}) ms",
    "inference_avg_ms": rf"Inference \(avg\):\s+({_N}) ms",
    "inference_min_ms": rf"Inference \(min\):\s+({_N}) ms",
    "inference_max_ms": rf"Inference \(max\):\s+({_N}) ms",
    "inference_std_ms": rf"Inference \(std\):\s+({_N}) ms",
}
_LITERT_RUNS = re.compile(rf"Inference \(avg\):\s+{_N} ms \((\d+) runs\)")
_LITERT_WARMUP_RUNS = re.compile(rf"Warmup \(avg\):\s+{_N} ms \((\d+) runs\)")
_LITERT_FULLY = re.compile(r"Fully accelerated:\s+(True|False)")


@dataclasses.dataclass(frozen=True)
class RunStats:
    """One `count=… first=… curr=… min=… max=… avg=… std=…` line, in microseconds.

    Fields the line does not print (an all-equal run prints only count and curr) are None.
    """

    count: int
    first: float | None = None
    curr: float | None = None
    min: float | None = None
    max: float | None = None
    avg: float | None = None
    std: float | None = None


@dataclasses.dataclass(frozen=True)
class BenchmarkResult:
    """What one benchmark run reported; times in milliseconds, memory in MB, None if absent.

    Attributes:
      init_ms: interpreter/compiled-model initialization (benchmark_model's `Init`).
      first_inference_ms: the first (warm-up) inference.
      warmup_avg_ms: mean of the warm-up inferences.
      inference_avg_ms: mean of the measured inferences (the headline number).
      inference_std_ms, inference_min_ms, inference_max_ms: spread of the measured inferences.
      runs: number of measured inferences; warmup_runs: number of warm-up inferences.
      memory_init_mb, memory_overall_mb: memory footprint delta after init / at the end.
      peak_memory_mb: peak footprint by periodic monitoring (--report_peak_memory_footprint).
      model_size_mb: size of the model file as the tool reports it.
      delegates: delegate name -> "full", "partial (N kernels)" or "none", as logged.
      unsupported: delegates the tool said are unsupported on the platform.
      errors: the error lines of the output, in order, without duplicates.
    """

    init_ms: float | None = None
    first_inference_ms: float | None = None
    warmup_avg_ms: float | None = None
    inference_avg_ms: float | None = None
    inference_std_ms: float | None = None
    inference_min_ms: float | None = None
    inference_max_ms: float | None = None
    runs: int | None = None
    warmup_runs: int | None = None
    memory_init_mb: float | None = None
    memory_overall_mb: float | None = None
    peak_memory_mb: float | None = None
    model_size_mb: float | None = None
    delegates: dict[str, str] = dataclasses.field(default_factory=dict)
    unsupported: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def has_timings(self) -> bool:
        """True when the output contained a positive mean inference time."""
        return self.inference_avg_ms is not None and self.inference_avg_ms > 0


def parse_stats_line(line: str) -> RunStats | None:
    """Parse one `count=…` statistics line of benchmark_model; None if it is not one."""
    match = _STATS.search(line)
    if match is None:
        return None
    values = {key: float(value) for key, value in _KEY_VALUE.findall(match.group("rest"))}
    fields = {f.name for f in dataclasses.fields(RunStats)} - {"count"}
    return RunStats(count=int(match.group("count")),
                    **{key: value for key, value in values.items() if key in fields})


def _ms(microseconds: float | None) -> float | None:
    return None if microseconds is None else microseconds / 1000.0


def error_lines(text: str) -> tuple[str, ...]:
    """Return the informative error lines of a tool's output (prefix kept, duplicates dropped).

    Lines naming only a source location (LiteRT's `ERROR: [file.cc:12]` frames) are skipped;
    when no ERROR line remains, the last Python exception line (`RuntimeError: …`) is used.
    """
    found: list[str] = []
    for raw in text.splitlines():
        line = raw.strip().lstrip("└ ").strip()
        if _ERROR.search(line) and not _BARE_LOCATION.search(line) and line not in found:
            found.append(line)
    if not found:
        exceptions = [line.strip() for line in text.splitlines() if _EXCEPTION.match(line.strip())]
        found = exceptions[-1:]
    return tuple(found)


def parse_benchmark_model(text: str) -> BenchmarkResult:
    """Parse the full output (stdout + stderr) of one `benchmark_model` run.

    Args:
      text: the tool's output; prefixes such as `INFO: ` or `I tflite  : ` are allowed.

    Returns:
      The result in milliseconds; the first `count=` line is the warm-up, the second the run.
    """
    stats: list[RunStats] = []
    summary = memory = peak = size = None
    delegates: dict[str, str] = {}
    unsupported: list[str] = []
    for line in text.splitlines():
        summary = _SUMMARY.search(line) or summary
        memory = _MEMORY_DELTA.search(line) or memory
        peak = _PEAK.search(line) or peak
        size = _MODEL_SIZE.search(line) or size
        if parsed := parse_stats_line(line):
            stats.append(parsed)
        if applied := _APPLIED.search(line):
            kernels = applied.group("kernels")
            delegates[applied.group("name")] = (
                "full" if applied.group("how") == "completely"
                else f"partial ({kernels} kernels)" if kernels else "partial")
        elif not_applied := _NOT_APPLIED.search(line):
            delegates[not_applied.group("name")] = "none"
        if (refused := _UNSUPPORTED.search(line)) and refused.group("name") not in unsupported:
            unsupported.append(refused.group("name"))
    warmup = stats[0] if stats else None
    runs = stats[1] if len(stats) > 1 else None
    return BenchmarkResult(
        init_ms=_ms(float(summary.group("init"))) if summary else None,
        first_inference_ms=_ms(float(summary.group("first"))) if summary else None,
        warmup_avg_ms=_ms(float(summary.group("warmup"))) if summary else None,
        inference_avg_ms=(_ms(float(summary.group("avg"))) if summary
                          else _ms(runs.avg if runs and runs.avg is not None
                                   else runs.curr if runs else None)),
        inference_std_ms=_ms(runs.std) if runs else None,
        inference_min_ms=_ms(runs.min) if runs else None,
        inference_max_ms=_ms(runs.max) if runs else None,
        runs=runs.count if runs else None,
        warmup_runs=warmup.count if warmup else None,
        memory_init_mb=float(memory.group("init")) if memory else None,
        memory_overall_mb=float(memory.group("overall")) if memory else None,
        peak_memory_mb=float(peak.group(1)) if peak else None,
        model_size_mb=float(size.group(1)) if size else None,
        delegates=delegates, unsupported=tuple(unsupported), errors=error_lines(text))


def parse_litert_tool(text: str) -> BenchmarkResult:
    """Parse the output of `python -m ai_edge_litert.tools.benchmark_litert_model`.

    Args:
      text: the tool's stdout + stderr (its `BENCHMARK RESULTS` block is in milliseconds).

    Returns:
      The result; memory fields are None (the tool does not measure memory). The tool's
      "Fully accelerated: True/False" (every op on the accelerator, XNNPACK for the CPU, or
      some left to LiteRT's builtin kernels) shows as delegates {"accelerated": "all ops" or
      "some ops"}.
    """
    values: dict[str, float] = {}
    for field, pattern in _LITERT_FIELDS.items():
        if match := re.search(pattern, text):
            values[field] = float(match.group(1))
    runs = _LITERT_RUNS.search(text)
    warmup_runs = _LITERT_WARMUP_RUNS.search(text)
    fully = _LITERT_FULLY.search(text)
    delegates = ({"accelerated": "all ops" if fully.group(1) == "True" else "some ops"}
                 if fully else {})
    return BenchmarkResult(**values, runs=int(runs.group(1)) if runs else None,
                           warmup_runs=int(warmup_runs.group(1)) if warmup_runs else None,
                           delegates=delegates, errors=error_lines(text))


def failure(result: BenchmarkResult, returncode: int, delegate: str | None = None) -> str | None:
    """Return why a run failed, or None when it produced a valid measurement.

    A run fails when the tool exited non-zero, printed no timings, or — for a configuration that
    asks for `delegate` ("GPU", "NNAPI", "XNNPACK") — the tool said that delegate is unsupported
    on the platform or runs no node of the graph (a silent CPU fall-back is not a GPU number).

    Args:
      result: the parsed output.
      returncode: the tool's exit status (for adb: the remote status, adb >= Android 7).
      delegate: the delegate the configuration requested, or None for plain CPU.
    """
    specific = [line for line in result.errors if "Benchmarking failed" not in line]
    errors = specific or list(result.errors)
    reason = "; ".join(errors[:1] + errors[-1:] if len(errors) > 1 else errors)
    if returncode != 0:
        return f"exit status {returncode}" + (f": {reason}" if reason else "")
    if delegate is not None and delegate in result.unsupported:
        return f"{delegate} acceleration is unsupported on this platform"
    if delegate is not None and result.delegates.get(delegate) == "none":
        return f"{delegate} delegate executes no node of the graph (CPU fall-back)"
    if not result.has_timings:
        return "no inference timings in the output" + (f": {reason}" if reason else "")
    return None
