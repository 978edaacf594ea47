"""Input benchmark: prepare_data's worker speed-up and tf.data serial vs parallel throughput.

Two measurements on the same RAW folder, written as one report:

- preparation: `prepare_files` on every file with 1, 2, ... worker processes (each into a fresh
  folder), files/s and megapixels/s, and the speed-up over one worker;
- input pipeline: `make_dataset(training=True)` over the prepared train split, truly serial
  (no parallel interleave/map, tf.data's automatic map parallelization and prefetch injection
  off) against the parallel pipeline (AUTOTUNE), batches/s and tiles/s after a warm-up.

Importing this module does not import TensorFlow (prepare's worker processes re-import the
entry point's modules).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from typing import Any

from deepisp_tf.config import DataConfig
from deepisp_tf.data import prepare


@dataclasses.dataclass(frozen=True)
class PrepareRun:
    workers: int
    files: int
    megapixels: float
    seconds: float


@dataclasses.dataclass(frozen=True)
class PipelineRun:
    mode: str            # "serial" or "parallel"
    batches: int
    batch_size: int
    seconds: float


def time_prepare(paths: list[str], output: str, config: DataConfig, workers: int) -> PrepareRun:
    """Prepare `paths` into a fresh `output` folder with `workers` processes and time it."""
    shutil.rmtree(output, ignore_errors=True)
    started = time.perf_counter()
    manifest = prepare.prepare_files(paths, output, config, source="benchmark", workers=workers,
                                     progress=False)
    seconds = time.perf_counter() - started
    ok = [entry for entry in manifest["files"] if entry["status"] == "ok"]
    megapixels = sum(entry["raw_size"][0] * entry["raw_size"][1] for entry in ok) / 1e6
    return PrepareRun(workers, len(ok), megapixels, seconds)


def time_pipeline(data_dir: str, config: DataConfig, batch_size: int, batches: int,
                  serial: bool, warmup: int = 5) -> PipelineRun:
    """Time `batches` batches of the training pipeline after `warmup` batches."""
    # Imported here: spawned prepare workers re-import this module and must not load TF.
    from deepisp_tf.data import pipeline  # pylint: disable=import-outside-toplevel

    dataset = pipeline.make_dataset(data_dir, "train", config, batch_size, training=True,
                                    serial=serial)
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    started = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    seconds = time.perf_counter() - started
    return PipelineRun("serial" if serial else "parallel", batches, batch_size, seconds)


def run(paths: list[str], workdir: str, config: DataConfig, workers: list[int],
        batch_size: int, batches: int) -> dict[str, Any]:
    """Run both measurements and return the report dict (see `format_report`)."""
    # Shards are written with TF in this process: load it before the clock starts.
    from deepisp_tf.data import tfrecord  # noqa: F401  pylint: disable=import-outside-toplevel

    prepares = [time_prepare(paths, os.path.join(workdir, f"prepared_w{n}"), config, n)
                for n in workers]
    data_dir = os.path.join(workdir, f"prepared_w{workers[-1]}")
    pipelines = [time_pipeline(data_dir, config, batch_size, batches, serial)
                 for serial in (True, False)]
    return {
        "files": len(paths), "cpu_count": os.cpu_count(),
        "data": dataclasses.asdict(config),
        "prepare": [dataclasses.asdict(run_) | {
            "files_per_s": run_.files / run_.seconds,
            "megapixels_per_s": run_.megapixels / run_.seconds,
            "speedup": prepares[0].seconds / run_.seconds} for run_ in prepares],
        "pipeline": [dataclasses.asdict(run_) | {
            "batches_per_s": run_.batches / run_.seconds,
            "tiles_per_s": run_.batches * run_.batch_size / run_.seconds,
            "speedup": pipelines[0].seconds / run_.seconds} for run_ in pipelines],
    }


def format_report(report: dict[str, Any], command: str) -> str:
    """Return the report as Markdown."""
    data = report["data"]
    lines = [
        "# Input benchmark", "", f"`{command}`", "",
        f"{report['files']} RAW files, {report['cpu_count']} CPUs, tile {data['tile_size']}, "
        f"crop {data['crop_size']}.", "",
        "## prepare_data (decode + reference render + tiles + shards)", "",
        "| workers | files | MP | seconds | files/s | MP/s | speed-up |",
        "|---:|---:|---:|---:|---:|---:|---:|"]
    for row in report["prepare"]:
        lines.append(f"| {row['workers']} | {row['files']} | {row['megapixels']:.1f} | "
                     f"{row['seconds']:.2f} | {row['files_per_s']:.2f} | "
                     f"{row['megapixels_per_s']:.2f} | {row['speedup']:.2f}x |")
    lines += ["", "## tf.data training pipeline (parse, normalize, crop, augment, batch)", "",
              "| mode | batch | batches | batches/s | tiles/s | speed-up |",
              "|---|---:|---:|---:|---:|---:|"]
    for row in report["pipeline"]:
        lines.append(f"| {row['mode']} | {row['batch_size']} | {row['batches']} | "
                     f"{row['batches_per_s']:.1f} | {row['tiles_per_s']:.0f} | "
                     f"{row['speedup']:.2f}x |")
    return "\n".join(lines) + "\n"
