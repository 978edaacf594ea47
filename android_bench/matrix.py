"""The benchmark matrix: configurations, their tool flags, and one result row per model × config.

Configurations (names for `--configs`):

  cpu_1t      CPU, 1 thread, no XNNPACK       --num_threads=1 --use_xnnpack=false
  cpu_4t      CPU, 4 threads, no XNNPACK      --num_threads=4 --use_xnnpack=false
  xnnpack_4t  XNNPACK, 4 threads              --num_threads=4 --use_xnnpack=true
  gpu_fp32    GPU delegate, fp32              --use_gpu=true --gpu_precision_loss_allowed=false
  gpu_fp16    GPU delegate, fp16 allowed      --use_gpu=true --gpu_precision_loss_allowed=true
  nnapi       Android NNAPI                   --use_nnapi=true

Every run also gets --graph, --num_runs, --warmup_runs and --report_peak_memory_footprint=true.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Iterable, Sequence

from android_bench.parse import BenchmarkResult


@dataclasses.dataclass(frozen=True)
class Configuration:
    """One column of the matrix: how benchmark_model runs a model.

    Attributes:
      name: short id used in `--configs`, file names and reports.
      label: human-readable name for tables.
      num_threads: CPU threads (also used by ops a delegate leaves on the CPU).
      use_xnnpack: --use_xnnpack=true/false, or None to leave benchmark_model's default.
      use_gpu: apply the GPU delegate.
      gpu_fp16: let the GPU delegate compute in fp16 (--gpu_precision_loss_allowed).
      use_nnapi: apply the NNAPI delegate.
    """

    name: str
    label: str
    num_threads: int
    use_xnnpack: bool | None = None
    use_gpu: bool = False
    gpu_fp16: bool = False
    use_nnapi: bool = False

    @property
    def delegate(self) -> str | None:
        """The delegate name benchmark_model logs for this configuration (None: plain CPU)."""
        if self.use_gpu:
            return "GPU"
        if self.use_nnapi:
            return "NNAPI"
        return "XNNPACK" if self.use_xnnpack else None


CONFIGURATIONS: tuple[Configuration, ...] = (
    Configuration("cpu_1t", "CPU 1 thread", 1, use_xnnpack=False),
    Configuration("cpu_4t", "CPU 4 threads", 4, use_xnnpack=False),
    Configuration("xnnpack_4t", "XNNPACK 4 threads", 4, use_xnnpack=True),
    Configuration("gpu_fp32", "GPU fp32", 4, use_gpu=True, gpu_fp16=False),
    Configuration("gpu_fp16", "GPU fp16", 4, use_gpu=True, gpu_fp16=True),
    Configuration("nnapi", "NNAPI", 4, use_nnapi=True),
)


def select_configurations(names: Sequence[str] | None) -> tuple[Configuration, ...]:
    """Return the configurations named (in matrix order); all of them for None or [].

    Raises:
      ValueError: an unknown name (the message lists the valid ones).
    """
    if not names:
        return CONFIGURATIONS
    known = {config.name for config in CONFIGURATIONS}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown configuration(s) {', '.join(unknown)}: expected some of "
                         f"{', '.join(sorted(known))}")
    return tuple(config for config in CONFIGURATIONS if config.name in names)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def benchmark_model_flags(config: Configuration, graph: str, *, num_runs: int,
                          warmup_runs: int) -> list[str]:
    """Return TFLite benchmark_model's command-line flags for one run.

    Args:
      config: the configuration.
      graph: the model path as the benchmark binary sees it (on the device).
      num_runs: measured inferences (benchmark_model may do more to fill --min_secs).
      warmup_runs: warm-up inferences.
    """
    flags = [f"--graph={graph}", f"--num_threads={config.num_threads}"]
    if config.use_xnnpack is not None:
        flags.append(f"--use_xnnpack={_bool(config.use_xnnpack)}")
    if config.use_gpu:
        flags += ["--use_gpu=true", f"--gpu_precision_loss_allowed={_bool(config.gpu_fp16)}"]
    if config.use_nnapi:
        flags.append("--use_nnapi=true")
    return flags + [f"--num_runs={num_runs}", f"--warmup_runs={warmup_runs}",
                    "--report_peak_memory_footprint=true"]


@dataclasses.dataclass
class Row:
    """One result: a model under one configuration (an error row when status is "error").

    Times are milliseconds, memory megabytes; None when not measured.
    """

    model: str
    configuration: str
    label: str
    status: str
    inference_avg_ms: float | None = None
    inference_std_ms: float | None = None
    inference_min_ms: float | None = None
    inference_max_ms: float | None = None
    runs: int | None = None
    init_ms: float | None = None
    first_inference_ms: float | None = None
    warmup_avg_ms: float | None = None
    memory_init_mb: float | None = None
    memory_overall_mb: float | None = None
    peak_memory_mb: float | None = None
    delegation: str = ""
    error: str = ""
    note: str = ""
    command: str = ""


ROW_FIELDS: tuple[str, ...] = tuple(field.name for field in dataclasses.fields(Row))


def make_row(model: str, config: Configuration, result: BenchmarkResult | None,
             error: str | None, *, note: str = "", command: str = "") -> Row:
    """Build the row of one run from its parsed output and its failure reason (None: ok).

    Args:
      model: the model file (its base name goes into the row).
      config: the configuration run.
      result: the parsed output, or None when nothing ran.
      error: why the run failed, or None.
      note: remarks about how the configuration was run.
      command: the command line that ran.
    """
    measured = {}
    if result is not None:
        measured = {name: getattr(result, name) for name in ROW_FIELDS if hasattr(result, name)}
        measured["delegation"] = ", ".join(f"{name}: {how}"
                                           for name, how in sorted(result.delegates.items()))
    return Row(model=os.path.basename(model), configuration=config.name, label=config.label,
               status="error" if error else "ok", error=error or "", note=note,
               command=command, **measured)


def run_matrix(models: Sequence[str], configs: Iterable[Configuration],
               run_one: Callable[[str, Configuration], Row],
               on_row: Callable[[Row], None] | None = None) -> list[Row]:
    """Run every model under every configuration; return the rows in model-major order.

    Args:
      models: model paths, as `run_one` expects them.
      configs: the configurations.
      run_one: runs one model under one configuration and returns its row (never raises for
        a failing configuration: that is an error row).
      on_row: called with each row as soon as it exists (e.g. to rewrite the reports).
    """
    configs = tuple(configs)
    rows = []
    for model in models:
        for config in configs:
            row = run_one(model, config)
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows
