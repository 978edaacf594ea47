"""Benchmarks of the LiteRT runtime (no TensorFlow): what `python -m tools.benchmark` runs.

File mode, on the same RAW files in one run (`files`, `file_to_file`):
  in memory     (a) serial, (b) the concurrent engine swept over preprocessing threads,
                (c) rawpy's reference render: MP/s, latency percentiles, time per stage;
  file to file  ours (render + encode + write) against rawpy + cv2.imwrite, alternated, for
                JPEG and 16-bit PNG, with the bytes written.
Inputs can be repeated (`min_megapixels`: whole copies until the batch holds that many MP) and
completed with synthetic DNGs of given sizes (`synthetic_megapixels`, e.g. 12 and 24 MP).
An optional memory probe renders a synthetic big mosaic in a fresh process (`memory`).

Model mode (`models`): per-tile and per-Full-HD-frame latency of every .tflite in a folder, the
frame with one interpreter and through the engine with several (as `render()` runs it).

Reports (`report`): report.json, report.md (tools.benchmark adds a plot), and copies named by
machine, precision and runtime. Every report names the CPU model and its ISA flags
(`common.machine`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import os
import tempfile
from typing import Any, Sequence

from deepisp_tf.config import REFERENCE_RENDER_SETTINGS
from deepisp_tf.runtime import frames, isolation
from deepisp_tf.runtime.bench import encoders, file_to_file
from deepisp_tf.runtime.bench.common import FULL_HD, Settings, describe_choice, machine
from deepisp_tf.runtime.bench.files import (list_inputs, read_files, run_pipeline,
                                            run_reference, summarize)
from deepisp_tf.runtime.bench.memory import memory_probe, memory_probe_child
from deepisp_tf.runtime.bench.models import benchmark_model, benchmark_models, list_models
from deepisp_tf.runtime.bench.report import (MODEL_REPORT_FILES, REPORT_FILES, format_markdown,
                                             report_stem, write_report)
from deepisp_tf.runtime.profiling import warm_up
from deepisp_tf.raw.io import RawReadError, read_raw, reference_render

__all__ = [
    "FULL_HD", "MODEL_REPORT_FILES", "REPORT_FILES", "Settings", "machine", "benchmark_files",
    "benchmark_model", "benchmark_models",
    "FileOptions", "compare_files", "format_markdown", "prepare_inputs", "list_inputs",
    "list_models", "memory_probe", "memory_probe_child", "report_stem", "run_benchmark",
    "run_pipeline", "run_reference", "summarize", "write_report",
]


@dataclasses.dataclass(frozen=True)
class FileOptions:
    """What file mode runs besides the in-memory modes.

    Attributes:
      in_memory: run the serial / concurrent / rawpy in-memory modes.
      file_to_file: formats timed file to file ("jpg", "png"; empty: none).
      rounds: alternated rounds of the file-to-file comparison per format.
      writers: encoding threads of ours.
      png_mode: `output.PNG_MODES` key of ours.
      min_megapixels: repeat the inputs (whole copies) until they hold at least this many MP.
      repeat_files: use every input at least this many times.
      synthetic_megapixels: sizes of synthetic DNGs added to the inputs.
      encoders: also time every encoder setting on the largest input's reference render.
    """

    in_memory: bool = True
    file_to_file: tuple[str, ...] = ()
    rounds: int = 2
    writers: int = 2
    png_mode: str = "fast"
    min_megapixels: float = 0.0
    repeat_files: int = 1
    synthetic_megapixels: tuple[float, ...] = ()
    encoders: bool = False


def _megapixels(path: str) -> float:
    """Return the mosaic megapixels of a RAW file (0 for a file that cannot be read)."""
    try:
        return read_raw(path).mosaic.size / 1e6
    except RawReadError:
        return 0.0


def prepare_inputs(paths: Sequence[str], options: FileOptions, folder: str) -> list[str]:
    """Return the inputs of a run: `paths` and the synthetic DNGs (written into `folder`), as
    whole copies (hard links in `folder`) until they hold `options.min_megapixels`."""
    inputs = list(paths)
    for size in options.synthetic_megapixels:
        path = os.path.join(folder, f"synthetic_{size:g}mp.dng")
        frames.write_synthetic_dng(path, size)
        inputs.append(path)
    if not inputs:
        raise ValueError("no input files to benchmark")
    total = sum(_megapixels(path) for path in inputs) if options.min_megapixels > 0 else 0.0
    if options.min_megapixels > 0 and total <= 0:
        raise ValueError("the input files hold no readable pixels to repeat")
    copies = 1 if total >= options.min_megapixels else int(-(-options.min_megapixels // total))
    copies = max(copies, options.repeat_files)
    if copies == 1:
        return inputs
    return file_to_file.copy_repeated(inputs, copies, os.path.join(folder, "repeated"))


def benchmark_files(paths: Sequence[str], settings: Settings, memory_megapixels: float = 0.0,
                    options: FileOptions = FileOptions()) -> dict[str, Any]:
    """Run the in-memory modes and the file-to-file comparison on `paths` (see the module doc).

    Every in-memory mode runs `settings.repeats` times (interleaved); the fastest run of each is
    kept.

    Returns:
      The report: settings, machine, model and precision, `runs` (in memory) and `summary`,
      `file_to_file`, and with `memory_megapixels` > 0 `memory`.
    """
    host = machine()
    model = settings.model_path()
    runner = settings.open(model)
    warm_up(runner)
    with tempfile.TemporaryDirectory(prefix="deepisp-bench-") as folder:
        inputs = prepare_inputs(paths, options, folder)
        read_files(inputs)
        report = {"kind": "files", "settings": dataclasses.asdict(settings),
                  "options": dataclasses.asdict(options), "machine": host,
                  "model": runner.describe(), "precision": describe_choice(settings, model),
                  "reference_render": REFERENCE_RENDER_SETTINGS,
                  "files": [os.path.basename(path) for path in inputs],
                  "input_megapixels": sum(_megapixels(path) for path in dict.fromkeys(inputs)),
                  "runs": [], "summary": summarize([])}
        if options.in_memory:
            report["runs"] = _in_memory(runner, inputs, settings)
            report["summary"] = summarize(report["runs"])
        if options.file_to_file:
            report["file_to_file"] = file_to_file.compare(
                runner, inputs, formats=options.file_to_file, rounds=options.rounds,
                workers=max(settings.workers), interpreters=settings.interpreters,
                writers=options.writers, png_mode=options.png_mode, overlap=settings.overlap,
                workdir=folder, isolate=settings.isolate)
        if options.encoders:
            largest = max(dict.fromkeys(inputs), key=_megapixels)
            report["encoders"] = {"file": os.path.basename(largest),
                                  "rows": encoders.time_encoders(reference_render(largest))}
    if memory_megapixels > 0:
        report["memory"] = memory_probe(settings, memory_megapixels)
    return report


def _in_memory(runner: Any, paths: Sequence[str], settings: Settings) -> list[dict[str, Any]]:
    best: dict[tuple[str, int], dict[str, Any]] = {}
    for _ in range(settings.repeats):  # modes interleaved: drifting load hits them alike
        # Our decoder processes live only around our runs, so rawpy's runs neither share the
        # cores with idle decoders nor count their memory.
        decoders = (isolation.DecoderPool(max(settings.workers), settings.decode_timeout)
                    if settings.isolate else None)
        decode = decoders.decode if decoders else None
        with decoders or contextlib.nullcontext():
            if decoders:
                _warm_decoders(decoders, paths)
            runs = [run_pipeline(runner, paths, serial=True, overlap=settings.overlap,
                                 decode=decode)]
            for workers in settings.workers:
                runs.append(run_pipeline(runner, paths, serial=False, workers=workers,
                                         interpreters=settings.interpreters,
                                         overlap=settings.overlap,
                                         queue_size=settings.queue_size, decode=decode))
        for workers in settings.workers:
            runs.append(run_reference(paths, workers))
        for run in runs:
            key = (run["mode"], run["workers"])
            if key not in best or run["megapixels_per_s"] > best[key]["megapixels_per_s"]:
                best[key] = run
    return list(best.values())


def _warm_decoders(decoders: isolation.DecoderPool, paths: Sequence[str]) -> None:
    """Decode the smallest file once per worker, concurrently, so that every decoder process has
    finished starting (its imports) before a timed run."""
    smallest = min(paths, key=os.path.getsize)

    def decode_once(_: int) -> None:
        try:
            decoders.decode(smallest)
        except RawReadError:  # the timed run reports it
            pass

    with concurrent.futures.ThreadPoolExecutor(decoders.workers) as pool:
        list(pool.map(decode_once, range(decoders.workers)))


def compare_files(paths: Sequence[str], output_dir: str | None = None, *,
                  settings: Settings | None = None, min_megapixels: float = 20.0,
                  formats: Sequence[str] = file_to_file.FORMATS,
                  rounds: int = 1) -> dict[str, Any]:
    """The quickstart's benchmark: ours against rawpy in memory and file to file, on `paths`
    repeated to at least `min_megapixels`; writes the reports into `output_dir` if given.

    Args:
      paths: RAW files.
      output_dir: where to write the reports (None: not written).
      settings: how to open the model (default: the shipped model, precision auto, 1 thread
        per interpreter and one interpreter per CPU).
      min_megapixels: least total megapixels of the run (whole copies of `paths`).
      formats: file-to-file formats.
      rounds: alternated rounds per format.

    Returns:
      The report (`benchmark_files`), with "report_files" when written.
    """
    cpus = os.cpu_count() or 1
    settings = settings or Settings(threads=1, interpreters=cpus, workers=(cpus,))
    options = FileOptions(file_to_file=tuple(formats), rounds=rounds,
                          min_megapixels=min_megapixels)
    report = benchmark_files(list(paths), settings, options=options)
    if output_dir is not None:
        report["report_files"] = write_report(report, output_dir)
    return report


def run_benchmark(settings: Settings, *, input_dir: str | None = None,
                  model_dir: str | None = None, limit: int | None = None,
                  memory_megapixels: float = 0.0, runs: int = 20, frame_runs: int = 3,
                  options: FileOptions = FileOptions()) -> dict[str, Any]:
    """Run the model mode when `model_dir` (or `settings.model`) is a folder, else file mode.

    File mode without `settings.model` uses the shipped default model at `settings.precision`.

    Raises:
      ValueError: neither a model folder nor inputs (`input_dir` or synthetic sizes), or an
        empty folder.
      FileNotFoundError: no model (e.g. none ships yet).
    """
    if model_dir is None and settings.model and os.path.isdir(settings.model):
        model_dir = settings.model
    if model_dir:
        return benchmark_models(list_models(model_dir), settings, runs=runs,
                                frame_runs=frame_runs)
    if not input_dir and not options.synthetic_megapixels:
        raise ValueError("give --input=RAW_DIR or --synthetic_megapixels (file mode) or "
                         "--model_dir=DIR (model mode)")
    paths = list_inputs(input_dir, limit) if input_dir else []
    return benchmark_files(paths, settings, memory_megapixels, options)

