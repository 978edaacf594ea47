"""Benchmark .tflite models with TFLite's benchmark_model on an Android phone (or here, --local).

  python -m android_bench.run --models=A.tflite,B.tflite --benchmark_binary=benchmark_model \
      --output=DIR [--serial=DEVICE] [--num_runs=50] [--warmup_runs=5] [--configs=cpu_1t,gpu_fp16]
  python -m android_bench.run --local --models=A.tflite --output=DIR

Writes DIR/results.csv, DIR/results.json, DIR/results.md (one row per model × configuration,
failed configurations as error rows) and DIR/logs/<model>__<config>.log. See README.md.
"""

from __future__ import annotations

import datetime
import os
import sys
from typing import Sequence

from absl import app, flags

from android_bench import adb, local, matrix, report

FLAGS = flags.FLAGS
flags.DEFINE_list("models", None, "Comma-separated .tflite files to benchmark.")
flags.DEFINE_string("benchmark_binary", None, "Local path of benchmark_model for the phone "
                    "(arm64); not needed with --local.")
flags.DEFINE_string("output", None, "Report folder (results.csv/.json/.md, logs/).")
flags.DEFINE_string("serial", None, "adb serial of the phone (default: the only one).")
flags.DEFINE_integer("num_runs", 50, "Measured inferences per configuration.", lower_bound=1)
flags.DEFINE_integer("warmup_runs", 5, "Warm-up inferences per configuration.", lower_bound=0)
flags.DEFINE_list("configs", [], "Configurations to run (default all): "
                  + ",".join(config.name for config in matrix.CONFIGURATIONS))
flags.DEFINE_bool("local", False, "Run the matrix on this machine with LiteRT's "
                  "benchmark_litert_model instead of a phone.")
flags.DEFINE_string("adb", "adb", "adb command or path.")
flags.DEFINE_float("timeout", 900.0, "Time limit of one adb command / benchmark run (s).")
flags.mark_flags_as_required(["models", "output"])


def check_files(paths: Sequence[str], what: str) -> None:
    """Raise ValueError naming the first of `paths` that is not a file."""
    for path in paths:
        if not os.path.isfile(path):
            raise ValueError(f"{what} {path}: no such file")


def benchmark(models: Sequence[str], output: str, *, binary: str | None = None,
              use_local: bool = False, serial: str | None = None,
              configs: Sequence[str] | None = None, num_runs: int = 50, warmup_runs: int = 5,
              adb_command: str = "adb", timeout_s: float = 900.0
              ) -> tuple[list[matrix.Row], dict[str, str]]:
    """Run the matrix on the phone (or locally) and write the reports after every row.

    Args:
      models: local .tflite paths.
      output: report folder.
      binary: local benchmark_model for the phone (required unless use_local).
      use_local: run here with benchmark_litert_model instead of adb.
      serial: adb serial, or None for the only connected device.
      configs: configuration names (see matrix.CONFIGURATIONS), None/[] for all.
      num_runs, warmup_runs: measured and warm-up inferences.
      adb_command: adb command or path.
      timeout_s: time limit of one adb command or run.

    Returns:
      (rows, {"csv"|"json"|"md": path}).

    Raises:
      ValueError: missing model/binary file, unknown configuration, duplicate model names.
      adb.AdbError: adb missing, no usable device, failed push.
    """
    selected = matrix.select_configurations(configs)
    if not models:
        raise ValueError("no model given (--models=A.tflite,B.tflite)")
    check_files(models, "model")
    log_dir = os.path.join(output, report.LOG_DIR)
    meta = {"runs": f"{num_runs} measured, {warmup_runs} warm-up",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    if use_local:
        machine = local.machine_description()
        meta.update(title=f"LiteRT benchmark on this machine ({machine['cpu']}, "
                          f"{machine['cores']} cores) — --local",
                    runner=f"python -m {local.LITERT_TOOL} (ai-edge-litert "
                           f"{machine['ai_edge_litert']})",
                    device=", ".join(f"{key}={value}" for key, value in machine.items()))
        run_one = local.LocalRunner(num_runs=num_runs, warmup_runs=warmup_runs,
                                    timeout_s=timeout_s, log_dir=log_dir)
    else:
        if not binary:
            raise ValueError("--benchmark_binary is required (or use --local)")
        check_files([binary], "benchmark binary")
        device = adb.connect(serial, adb_command, timeout_s)
        remote_binary, remote_models = adb.install(device, binary, models)
        props = device.properties()
        meta.update(title=f"benchmark_model on {props['model'] or props['serial']}",
                    runner=f"{remote_binary} via adb",
                    device=", ".join(f"{key}={value}" for key, value in props.items() if value))
        run_one = adb.DeviceRunner(device, remote_binary, remote_models, num_runs=num_runs,
                                   warmup_runs=warmup_runs, log_dir=log_dir)
    rows: list[matrix.Row] = []
    paths = report.write_reports(output, rows, meta)

    def on_row(row: matrix.Row) -> None:
        rows.append(row)
        report.write_reports(output, rows, meta)

    matrix.run_matrix(models, selected, run_one, on_row)
    return rows, paths


def main(argv):
    del argv
    try:
        rows, paths = benchmark(
            FLAGS.models, FLAGS.output, binary=FLAGS.benchmark_binary, use_local=FLAGS.local,
            serial=FLAGS.serial, configs=FLAGS.configs, num_runs=FLAGS.num_runs,
            warmup_runs=FLAGS.warmup_runs, adb_command=FLAGS.adb, timeout_s=FLAGS.timeout)
    except (ValueError, adb.AdbError) as error:
        sys.exit(f"android_bench: {error}")
    with open(paths["md"], encoding="utf-8") as handle:
        print(handle.read())
    failed = sum(row.status != "ok" for row in rows)
    print(f"{len(rows)} rows ({failed} failed configurations): {', '.join(paths.values())}")


if __name__ == "__main__":
    app.run(main)
