"""Benchmarks of the LiteRT runtime (no TensorFlow): what `python -m tools.benchmark` runs.

File mode, on the same RAW files in one run:
  (a) serial      decode -> tiles -> invoke -> blend, one file at a time, one thread;
  (b) concurrent  `runtime.Engine`: preprocessing threads || `interpreters` interpreter threads,
                  swept over `workers`;
  (c) rawpy       the reference render (DESIGN §2.1) of the same files, with as many threads.
Each reports images/s, megapixels/s, per-image and per-tile latency (p50/p90/p99), time per
stage, CPU utilization and peak RSS; the summary gives the speed-up of (b) over (a) and the
ratio of (b) to (c). An optional memory probe renders a synthetic big mosaic in a fresh process
and reports its peak RSS.

Model mode: per-tile and per-Full-HD-frame latency of every .tflite in a folder (float32, int8,
sparse ...), on the chosen delegate.

Reports: report.json, report.md and a PNG plot (throughput against threads, or latency per
model), written atomically.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Any, Sequence

import numpy as np

from deepisp_tf import atomic
from deepisp_tf.config import REFERENCE_RENDER_SETTINGS
from deepisp_tf.raw.io import reference_render
from deepisp_tf.runtime import batch, frames, models, pipeline
from deepisp_tf.runtime.engine import Engine
from deepisp_tf.runtime.gpu import open_runner
from deepisp_tf.runtime.interpreter import Runner
from deepisp_tf.runtime.profiling import StageTimes, measure, percentiles_ms, peak_rss_bytes

FULL_HD = (1080, 1920)
REPORT_FILES = ("report.json", "report.md", "throughput.png")
MODEL_REPORT_FILES = ("report.json", "report.md", "latency.png")


@dataclasses.dataclass(frozen=True)
class Settings:
    """How to open the model and run the pipeline.

    Attributes:
      model: the .tflite.
      delegate: xnnpack, none, gpu, nnapi or external:PATH.
      delegate_fallback: fall back to the CPU when the delegate fails.
      threads: threads of each interpreter (None: LiteRT's default).
      workers: preprocessing thread counts to sweep (the concurrent mode).
      interpreters: interpreter threads of the concurrent mode, each with a copy of the model.
      overlap: tile overlap (None: tile / 16).
      queue_size: tiles buffered between preprocessing and the interpreter.
      repeats: file mode runs every mode this many times and keeps each one's fastest run.
    """

    model: str
    delegate: str = "xnnpack"
    delegate_fallback: bool = False
    threads: int | None = None
    workers: tuple[int, ...] = (1, 2)
    interpreters: int = 1
    overlap: int | None = None
    queue_size: int = 16
    repeats: int = 1

    def open(self, model: str | None = None) -> Runner:
        return open_runner(model or self.model, delegate=self.delegate, threads=self.threads,
                           delegate_fallback=self.delegate_fallback)


def machine() -> dict[str, Any]:
    """Return what the numbers depend on: host, CPU count, Python, numpy/rawpy/LiteRT versions."""
    import rawpy  # pylint: disable=import-outside-toplevel
    from importlib import metadata  # pylint: disable=import-outside-toplevel
    return {"host": platform.node(), "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "load_average": list(os.getloadavg()),
            "python": platform.python_version(),
            "numpy": np.__version__, "rawpy": rawpy.__version__,
            "libraw": ".".join(map(str, rawpy.libraw_version)),
            "ai_edge_litert": metadata.version("ai-edge-litert")}


def _warm_up(runner: Runner, paths: Sequence[str]) -> None:
    """Run one tile (XNNPACK packs weights on the first invoke) and read every file once."""
    height, width = runner.tile_shape
    runner.run(np.zeros((height, width), np.float32),
               np.zeros(12, np.float32) if runner.has_metadata else None)
    for path in paths:
        with open(path, "rb") as handle:
            while handle.read(1 << 22):
                pass


@dataclasses.dataclass(frozen=True)
class _Rendered:
    """One rendered image: output megapixels (the reference render's size) and latency."""

    megapixels: float
    seconds: float


def _mode_report(mode: str, workers: int, results: list[Any], measurement: Any,
                 times: StageTimes, failures: list[str]) -> dict[str, Any]:
    """Summarize one mode's run; megapixels are those of the output images in every mode."""
    images = len(results)
    megapixels = float(sum(result.megapixels for result in results))
    seconds = measurement.seconds
    totals = times.totals()
    return {
        "mode": mode, "workers": workers, "images": images, "failed": failures,
        "megapixels": megapixels, "seconds": seconds,
        "images_per_s": images / seconds if seconds else 0.0,
        "megapixels_per_s": megapixels / seconds if seconds else 0.0,
        "image_latency_ms": percentiles_ms([result.seconds for result in results]),
        "tiles": len(times.durations("invoke")),
        "tile_latency_ms": percentiles_ms(times.durations("invoke")),
        "stage_seconds": totals,
        "stage_ms_per_image": {stage: 1000 * total / max(images, 1)
                               for stage, total in totals.items()},
        **{key: value for key, value in measurement.to_dict().items() if key != "seconds"},
    }


def run_pipeline(runner: Runner, paths: Sequence[str], *, serial: bool, workers: int = 1,
                 interpreters: int = 1, overlap: int | None = None,
                 queue_size: int = 16) -> dict[str, Any]:
    """Render `paths` with the model, serially or concurrently; return the mode's report."""
    times = StageTimes()
    engine = Engine(runner, overlap=overlap, workers=workers, interpreters=interpreters,
                    queue_size=queue_size, serial=serial, times=times)
    results, failures = [], []
    with measure() as measurement:
        for result in engine.run(paths):
            if result.ok:
                height, width = result.image.shape[:2]
                results.append(_Rendered(height * width / 1e6, result.seconds))
            else:
                failures.append(f"{result.path}: {result.error}")
    return _mode_report("serial" if serial else "concurrent", 1 if serial else workers,
                        results, measurement, times, failures)


def run_reference(paths: Sequence[str], workers: int = 1) -> dict[str, Any]:
    """Render `paths` with rawpy's reference render in `workers` threads; return the report."""
    times = StageTimes()

    def render(path: str) -> _Rendered:
        started = time.perf_counter()
        image = reference_render(path)
        seconds = time.perf_counter() - started
        times.add("render", seconds)
        return _Rendered(image.shape[0] * image.shape[1] / 1e6, seconds)

    results, failures = [], []
    with measure() as measurement:
        with concurrent.futures.ThreadPoolExecutor(workers, "deepisp-rawpy") as pool:
            futures = {pool.submit(render, path): path for path in paths}
            for future in concurrent.futures.as_completed(futures):
                try:
                    results.append(future.result())
                except Exception as error:  # pylint: disable=broad-except  # reported
                    failures.append(f"{futures[future]}: {error}")
    return _mode_report("rawpy", workers, results, measurement, times, failures)


def memory_probe_child(model: str, path: str, delegate: str, threads: int | None,
                       workers: int, overlap: int | None, interpreters: int = 1
                       ) -> dict[str, Any]:
    """Render one file with the concurrent engine; return peak RSS and time (the probe's body).

    Runs in a fresh process (see `memory_probe`), so the peak is that of this one frame.
    """
    runner = open_runner(model, delegate=delegate, threads=threads)
    baseline = peak_rss_bytes()
    started = time.perf_counter()
    result = next(Engine(runner, workers=workers, overlap=overlap,
                         interpreters=interpreters).run([path]))
    if not result.ok:
        raise RuntimeError(f"memory probe failed: {result.error}")
    height, width = result.image.shape[:2]
    return {"megapixels": result.megapixels, "output_size": [height, width],
            "tiles": result.tiles, "seconds": time.perf_counter() - started,
            "baseline_rss_mb": baseline / 2**20, "peak_rss_mb": peak_rss_bytes() / 2**20,
            "estimate_mb": pipeline.peak_bytes_estimate((height, width), 1.0,
                                                        runner.tile_shape[0]) / 2**20}


def memory_probe(settings: Settings, megapixels: float, workdir: str | None = None
                 ) -> dict[str, Any]:
    """Measure the peak RSS of rendering a synthetic `megapixels` DNG in a fresh process.

    The DNG is written to a temporary folder (deleted afterwards); the child decodes it with
    rawpy and renders it with one preprocessing worker, as `tools.infer` would.
    """
    with tempfile.TemporaryDirectory(prefix="deepisp-memprobe-", dir=workdir) as folder:
        path = os.path.join(folder, "synthetic.dng")
        frames.write_synthetic_dng(path, megapixels)
        arguments = json.dumps({"model": settings.model, "path": path,
                                "delegate": settings.delegate, "threads": settings.threads,
                                "workers": 1, "overlap": settings.overlap,
                                "interpreters": settings.interpreters})
        code = ("import json, sys; from deepisp_tf import bench; "
                "print(json.dumps(bench.memory_probe_child(**json.loads(sys.argv[1]))))")
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [repo, os.environ.get("PYTHONPATH")]))}
        completed = subprocess.run([sys.executable, "-c", code, arguments], env=env,
                                   capture_output=True, text=True, check=False)
    if completed.returncode:
        raise RuntimeError(f"memory probe exited with {completed.returncode}: "
                           f"{completed.stderr.strip()[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def benchmark_files(paths: Sequence[str], settings: Settings,
                    memory_megapixels: float = 0.0) -> dict[str, Any]:
    """Run (a) serial, (b) concurrent for every worker count and (c) rawpy on `paths`.

    Every mode runs `settings.repeats` times (interleaved); the fastest run of each is kept.

    Returns:
      The report: settings, machine, model description, one entry per mode in `runs`, and a
      `summary` with the speed-ups; with `memory_megapixels` > 0 also `memory`.
    """
    if not paths:
        raise ValueError("no input files to benchmark")
    host = machine()
    runner = settings.open()
    _warm_up(runner, paths)
    best: dict[tuple[str, int], dict[str, Any]] = {}
    for _ in range(settings.repeats):  # modes interleaved, so drifting load hits them alike
        runs = [run_pipeline(runner, paths, serial=True, overlap=settings.overlap)]
        for workers in settings.workers:
            runs.append(run_pipeline(runner, paths, serial=False, workers=workers,
                                     interpreters=settings.interpreters,
                                     overlap=settings.overlap, queue_size=settings.queue_size))
        for workers in settings.workers:
            runs.append(run_reference(paths, workers))
        for run in runs:
            key = (run["mode"], run["workers"])
            if key not in best or run["megapixels_per_s"] > best[key]["megapixels_per_s"]:
                best[key] = run
    runs = list(best.values())
    report = {"kind": "files", "settings": dataclasses.asdict(settings),
              "machine": host, "model": runner.describe(),
              "reference_render": REFERENCE_RENDER_SETTINGS,
              "files": [os.path.basename(path) for path in paths],
              "runs": runs, "summary": summarize(runs)}
    if memory_megapixels > 0:
        report["memory"] = memory_probe(settings, memory_megapixels)
    return report


def _best(runs: list[dict[str, Any]], mode: str) -> dict[str, Any] | None:
    candidates = [run for run in runs if run["mode"] == mode and run["images"]]
    return max(candidates, key=lambda run: run["megapixels_per_s"], default=None)


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the headline numbers: speed-up of concurrent over serial, ratio to rawpy."""
    serial, concurrent, rawpy = (_best(runs, mode) for mode in ("serial", "concurrent", "rawpy"))

    def ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
        if not a or not b or not b["megapixels_per_s"]:
            return None
        return a["megapixels_per_s"] / b["megapixels_per_s"]

    return {
        "serial_megapixels_per_s": serial and serial["megapixels_per_s"],
        "concurrent_megapixels_per_s": concurrent and concurrent["megapixels_per_s"],
        "rawpy_megapixels_per_s": rawpy and rawpy["megapixels_per_s"],
        "best_concurrent_workers": concurrent and concurrent["workers"],
        "best_rawpy_workers": rawpy and rawpy["workers"],
        "speedup_concurrent_over_serial": ratio(concurrent, serial),
        "ratio_concurrent_to_rawpy": ratio(concurrent, rawpy),
    }


def model_kind(description: dict[str, Any], path: str) -> str:
    """Return the dominant weight dtype ("float32", "float16", "int8"), "sparse-" prefixed when
    weights use TFLite's sparse format or the file is named sparse."""
    weights = description["weights"]
    kind = max(weights["dtypes"], key=weights["dtypes"].get, default="unknown")
    sparse = weights["sparse_tensors"] or "sparse" in os.path.basename(path).lower()
    return f"sparse-{kind}" if sparse else kind


def benchmark_model(settings: Settings, path: str, runs: int = 20, warmup: int = 3,
                    frame: tuple[int, int] = FULL_HD, frame_runs: int = 3) -> dict[str, Any]:
    """Time one .tflite: per tile (random input) and per synthetic frame of `frame` (H, W)."""
    runner = settings.open(path)
    height, width = runner.tile_shape
    rng = np.random.default_rng(0)
    metadata = np.concatenate([np.eye(3).ravel(), [2.0, 1.0, 1.6]]).astype(np.float32)
    metadata = metadata if runner.has_metadata else None
    tile = runner.input_quantization.quantize(rng.uniform(0, 1, (height, width)))
    times = StageTimes()
    for _ in range(warmup):
        runner.invoke(tile, metadata)
    for _ in range(runs):
        pipeline.run_tile(runner, tile, metadata, times)
    record = frames.synthetic_record(*frame)
    frame_seconds = []
    for _ in range(frame_runs):
        started = time.perf_counter()
        pipeline.infer_record(record, runner, settings.overlap)
        frame_seconds.append(time.perf_counter() - started)
    description = runner.describe()
    description["weights"] = runner.weights_summary()
    plan = pipeline.plan_record(record, runner.tile_shape[0], settings.overlap
                                if settings.overlap is not None
                                else pipeline.default_overlap(runner.tile_shape[0]))
    return {"model": os.path.basename(path), "path": path, "bytes": os.path.getsize(path),
            "kind": model_kind(description, path), "description": description,
            "tile_latency_ms": percentiles_ms(times.durations("invoke")),
            "frame": list(frame), "tiles_per_frame": len(plan.grid),
            "frame_latency_ms": percentiles_ms(frame_seconds)}


def benchmark_models(paths: Sequence[str], settings: Settings, runs: int = 20,
                     frame_runs: int = 3) -> dict[str, Any]:
    """Run `benchmark_model` on every model; a model that cannot run is a row with its error."""
    host = machine()
    rows = []
    for path in paths:
        try:
            rows.append(benchmark_model(settings, path, runs=runs, frame_runs=frame_runs))
        except Exception as error:  # pylint: disable=broad-except  # one row per model
            rows.append({"model": os.path.basename(path), "path": path,
                         "error": f"{type(error).__name__}: {error}"})
    return {"kind": "models", "settings": dataclasses.asdict(settings), "machine": host,
            "models": rows}


def list_models(folder: str) -> list[str]:
    """Return the .tflite files of a folder, sorted."""
    if not os.path.isdir(folder):
        raise ValueError(f"{folder}: not a folder")
    models = sorted(os.path.join(folder, name) for name in os.listdir(folder)
                    if name.endswith(".tflite"))
    if not models:
        raise ValueError(f"{folder}: no .tflite files")
    return models


def list_inputs(folder: str, limit: int | None = None) -> list[str]:
    """Return the RAW candidates of `folder` (see `batch.collect_inputs`), the first `limit`."""
    paths, failures = batch.collect_inputs([folder])
    if failures:
        raise ValueError("; ".join(f"{f.path}: {f.reason}" for f in failures))
    return paths[:limit] if limit else paths


def run_benchmark(settings: Settings, *, input_dir: str | None = None,
                  model_dir: str | None = None, limit: int | None = None,
                  memory_megapixels: float = 0.0, runs: int = 20,
                  frame_runs: int = 3) -> dict[str, Any]:
    """Run the model mode when `model_dir` (or `settings.model`) is a folder, else file mode.

    File mode without `settings.model` uses the shipped default model (`default_model_path`).

    Raises:
      ValueError: neither a model folder nor `input_dir`, or an empty folder.
      FileNotFoundError: no model (e.g. none ships yet).
    """
    if model_dir is None and settings.model and os.path.isdir(settings.model):
        model_dir = settings.model
    if model_dir:
        return benchmark_models(list_models(model_dir), settings, runs=runs,
                                frame_runs=frame_runs)
    if not input_dir:
        raise ValueError("give --input=RAW_DIR (file mode) or --model_dir=DIR (model mode)")
    if not settings.model:
        settings = dataclasses.replace(settings, model=models.default_model_path())
    return benchmark_files(list_inputs(input_dir, limit), settings, memory_megapixels)


def _ms(values: dict[str, float | None], key: str) -> str:
    value = values.get(key)
    return "–" if value is None else f"{value:.1f}"


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _files_markdown(report: dict[str, Any]) -> list[str]:
    summary, model = report["summary"], report["model"]
    lines = [
        f"Model `{os.path.basename(model['model'])}`: tile {model['tile_shape']}, delegate "
        f"{model['delegate']}, {model['threads'] or 'default'} interpreter threads, "
        f"{model['delegated_ops']}/{model['ops']} ops delegated. "
        f"{len(report['files'])} files.", "",
        "## Summary", "",
        f"- serial: {_number(summary['serial_megapixels_per_s'])} MP/s",
        f"- concurrent (best, {summary['best_concurrent_workers']} preprocessing threads): "
        f"{_number(summary['concurrent_megapixels_per_s'])} MP/s",
        f"- rawpy reference render (best, {summary['best_rawpy_workers']} threads): "
        f"{_number(summary['rawpy_megapixels_per_s'])} MP/s",
        f"- speed-up concurrent / serial: **{_number(summary['speedup_concurrent_over_serial'])}"
        "x**",
        f"- ratio concurrent / rawpy: **{_number(summary['ratio_concurrent_to_rawpy'])}x** "
        "(> 1: faster than the reference render)", "",
        "## Throughput and latency", "",
        "| mode | threads | images | MP | s | images/s | MP/s | image p50/p90/p99 ms | "
        "tile p50/p90/p99 ms | CPU util | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in report["runs"]:
        image, tile = run["image_latency_ms"], run["tile_latency_ms"]
        lines.append(
            f"| {run['mode']} | {run['workers']} | {run['images']} | {run['megapixels']:.1f} | "
            f"{run['seconds']:.2f} | {run['images_per_s']:.2f} | {run['megapixels_per_s']:.2f} |"
            f" {_ms(image, 'p50')} / {_ms(image, 'p90')} / {_ms(image, 'p99')} |"
            f" {_ms(tile, 'p50')} / {_ms(tile, 'p90')} / {_ms(tile, 'p99')} |"
            f" {run['cpu_utilization']:.0%} | {run['peak_rss_mb']:.0f} |")
    stages = sorted({stage for run in report["runs"] for stage in run["stage_ms_per_image"]})
    lines += ["", "## Time per stage (ms per image, summed over threads)", "",
              "| mode | threads | " + " | ".join(stages) + " |",
              "|---|---|" + "---|" * len(stages)]
    for run in report["runs"]:
        cells = [_number(run["stage_ms_per_image"].get(stage), 1) for stage in stages]
        lines.append(f"| {run['mode']} | {run['workers']} | " + " | ".join(cells) + " |")
    failed = sorted({failure for run in report["runs"] for failure in run["failed"]})
    if failed:
        lines += ["", "## Failed files", ""] + [f"- {failure}" for failure in failed]
    if "memory" in report:
        memory = report["memory"]
        lines += ["", "## Memory (synthetic mosaic, fresh process)", "",
                  f"{memory['megapixels']:.1f} MP rendered in {memory['seconds']:.1f} s "
                  f"({memory['tiles']} tiles): peak RSS {memory['peak_rss_mb']:.0f} MB "
                  f"(after loading the model: {memory['baseline_rss_mb']:.0f} MB; estimate of "
                  f"the image buffers: {memory['estimate_mb']:.0f} MB)."]
    return lines


def _models_markdown(report: dict[str, Any]) -> list[str]:
    lines = ["| model | kind | IO | MB | delegate | delegated ops | zero weights | tile | "
             "tile p50/p90/p99 ms | tiles per frame | Full-HD frame p50 ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in report["models"]:
        if "error" in row:
            lines.append(f"| {row['model']} | error: {row['error']} |" + " |" * 9)
            continue
        description, tile = row["description"], row["tile_latency_ms"]
        zeros = description["weights"]["zero_fraction"]
        lines.append(
            f"| {row['model']} | {row['kind']} | {description['io_dtypes']['bayer']} | "
            f"{row['bytes'] / 2**20:.2f} | "
            f"{description['delegate']} | {description['delegated_ops']}/{description['ops']} | "
            f"{'–' if zeros is None else f'{zeros:.0%}'} | "
            f"{description['tile_shape'][0]}x{description['tile_shape'][1]} | "
            f"{_ms(tile, 'p50')} / {_ms(tile, 'p90')} / {_ms(tile, 'p99')} | "
            f"{row['tiles_per_frame']} | {_ms(row['frame_latency_ms'], 'p50')} |")
    return lines


def format_markdown(report: dict[str, Any]) -> str:
    """Return report.md: settings, machine, then the tables of the file or model mode."""
    settings, host = report["settings"], report["machine"]
    title = "Runtime benchmark" if report["kind"] == "files" else "Model latency"
    lines = [f"# {title}", "",
             f"Machine: {host['host']} ({host['processor']}, {host['cpu_count']} CPUs, load "
             f"average {host['load_average'][0]:.1f} at the start), Python "
             f"{host['python']}, ai-edge-litert {host['ai_edge_litert']}, rawpy "
             f"{host['rawpy']} (LibRaw {host['libraw']}).",
             f"Settings: delegate {settings['delegate']}, threads per interpreter "
             f"{settings['threads'] or 'default'}"
             + (f", {settings.get('interpreters', 1)} interpreters (concurrent mode)"
                if report["kind"] == "files" else "")
             + f", overlap {settings['overlap'] or 'tile / 16'}"
             + (f", best of {settings['repeats']} run(s) per mode." if report["kind"] == "files"
                else "."),
             ""]
    lines += _files_markdown(report) if report["kind"] == "files" else _models_markdown(report)
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: str) -> str:
    """Plot throughput against preprocessing threads (files) or latency per model; write PNG."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel
    figure, axes = pyplot.subplots(figsize=(6.4, 4.0), dpi=100)
    if report["kind"] == "files":
        for mode, style in (("concurrent", "o-"), ("rawpy", "s--")):
            runs = sorted((run for run in report["runs"] if run["mode"] == mode),
                          key=lambda run: run["workers"])
            axes.plot([run["workers"] for run in runs],
                      [run["megapixels_per_s"] for run in runs], style, label=mode)
        for run in (run for run in report["runs"] if run["mode"] == "serial"):
            axes.axhline(run["megapixels_per_s"], color="gray", linestyle=":", label="serial")
        axes.set_xticks(sorted({run["workers"] for run in report["runs"]}))
        axes.set_xlabel("preprocessing threads (rawpy: render threads)")
        axes.set_ylabel("megapixels / s")
        axes.set_title("Throughput against threads")
        axes.legend()
    else:
        rows = [row for row in report["models"] if "error" not in row]
        axes.barh([row["model"] for row in rows],
                  [row["frame_latency_ms"]["p50"] for row in rows])
        axes.set_xlabel(f"Full-HD frame latency p50, ms ({report['settings']['delegate']})")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    with atomic.replacing(path, suffix=".png") as temporary:
        figure.savefig(temporary)
    pyplot.close(figure)
    return path


def write_report(report: dict[str, Any], output_dir: str) -> list[str]:
    """Write report.json, report.md and the plot into `output_dir`; return their paths."""
    os.makedirs(output_dir, exist_ok=True)
    names = REPORT_FILES if report["kind"] == "files" else MODEL_REPORT_FILES
    paths = [os.path.join(output_dir, name) for name in names]
    atomic.write_json(paths[0], report)
    atomic.write_text(paths[1], format_markdown(report))
    plot(report, paths[2])
    return paths
