"""Run the benchmark matrix on this machine with LiteRT's Python benchmark tool (`--local`).

`python -m ai_edge_litert.tools.benchmark_litert_model` (ai-edge-litert 2.3) accepts --model,
--num_threads, --num_runs, --warmup_runs, --use_gpu, --use_npu, --require_full_delegation and
prints a `BENCHMARK RESULTS` block in milliseconds. It runs LiteRT's CompiledModel API, whose CPU
accelerator is XNNPACK, so the matrix maps onto it as follows:

  cpu_1t, cpu_4t   --num_threads=1/4 (XNNPACK cannot be turned off there: said in the row note)
  xnnpack_4t       --num_threads=4
  gpu_fp16         --use_gpu (LiteRT's GPU accelerator; it allows fp16 by default)
  gpu_fp32         error row: the tool has no option to force fp32 on the GPU
  nnapi            error row: NNAPI is an Android API

A configuration the machine cannot run (no GPU adapter here) fails inside the tool and becomes an
error row with the tool's own message.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import platform
import subprocess
import sys

from android_bench import matrix, parse, report

LITERT_TOOL = "ai_edge_litert.tools.benchmark_litert_model"
_CPU_NOTE = ("run by benchmark_litert_model, whose CPU accelerator is XNNPACK: "
             "--use_xnnpack=false has no local equivalent")


class Unsupported(Exception):
    """The local tool cannot run this configuration; the message says why."""


def litert_tool_args(config: matrix.Configuration, model: str, *, num_runs: int,
                     warmup_runs: int) -> tuple[list[str], str]:
    """Map a configuration onto benchmark_litert_model's flags.

    Args:
      config: the configuration.
      model: local model path.
      num_runs, warmup_runs: measured and warm-up inferences.

    Returns:
      (arguments after `python -m LITERT_TOOL`, a note on how the run differs from benchmark_model).

    Raises:
      Unsupported: the tool has no way to run this configuration.
    """
    if config.use_nnapi:
        raise Unsupported("NNAPI is an Android API; benchmark_litert_model has no NNAPI option")
    if config.use_gpu and not config.gpu_fp16:
        raise Unsupported("benchmark_litert_model has no option to force fp32 on the GPU "
                          "(LiteRT's GPU accelerator allows fp16 by default)")
    args = [f"--model={model}", f"--num_threads={config.num_threads}",
            f"--num_runs={num_runs}", f"--warmup_runs={warmup_runs}"]
    if config.use_gpu:
        return args + ["--use_gpu"], "LiteRT GPU accelerator, CPU fall-back for unsupported ops"
    return args, _CPU_NOTE if config.use_xnnpack is False else ""


@dataclasses.dataclass
class LocalRunner:
    """Runs one model × configuration with benchmark_litert_model here (a `run_one`).

    Attributes:
      num_runs, warmup_runs: measured and warm-up inferences.
      timeout_s: time limit of one run.
      log_dir: where each run's full output is kept, or None.
      python: the interpreter that runs the tool.
    """

    num_runs: int = 50
    warmup_runs: int = 5
    timeout_s: float = 600.0
    log_dir: str | None = None
    python: str = sys.executable

    def __call__(self, model: str, config: matrix.Configuration) -> matrix.Row:
        try:
            args, note = litert_tool_args(config, model, num_runs=self.num_runs,
                                          warmup_runs=self.warmup_runs)
        except Unsupported as reason:
            return matrix.make_row(model, config, None, f"not available locally: {reason}")
        command = [self.python, "-m", LITERT_TOOL, *args]
        printable = " ".join(["python", "-m", LITERT_TOOL, *args])
        try:
            completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True, errors="replace", timeout=self.timeout_s,
                                       check=False)
        except subprocess.TimeoutExpired:
            return matrix.make_row(model, config, None,
                                   f"timed out after {self.timeout_s:g} s", note=note,
                                   command=printable)
        report.write_log(self.log_dir, model, config, printable, completed.stdout)
        result = parse.parse_litert_tool(completed.stdout)
        return matrix.make_row(model, config, result,
                               parse.failure(result, completed.returncode), note=note,
                               command=printable)


def machine_description() -> dict[str, str]:
    """Describe this machine for the report: CPU model, core count, OS, LiteRT version."""
    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle
                     if line.lower().startswith("model name")]
        cpu = names[0] if names else cpu
    try:
        litert = importlib.metadata.version("ai-edge-litert")
    except importlib.metadata.PackageNotFoundError:
        litert = "unknown"
    return {"host": platform.node(), "cpu": cpu, "cores": str(os.cpu_count()),
            "os": f"{platform.system()} {platform.release()} {platform.machine()}",
            "ai_edge_litert": litert}
