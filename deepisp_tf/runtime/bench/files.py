"""In-memory file mode: the same RAW files rendered (a) serially, (b) by the concurrent engine,
swept over preprocessing threads, and (c) by rawpy's reference render, in one run.

Each mode reports images/s, megapixels/s, per-image and per-tile latency (p50/p90/p99), time
per stage, CPU utilization and peak RSS; `summarize` gives the speed-up of (b) over (a) and
the ratio of (b) to (c). Nothing is encoded or written here (`file_to_file` does that).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time
from typing import Any, Sequence

from deepisp_tf.raw.io import reference_render
from deepisp_tf.runtime import batch
from deepisp_tf.runtime.engine import Engine
from deepisp_tf.runtime.interpreter import Runner
from deepisp_tf.runtime.profiling import StageTimes, measure, percentiles_ms


def read_files(paths: Sequence[str]) -> None:
    """Read every file once, so the page cache holds them for every mode alike."""
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
                 queue_size: int = 16, decode: Any = None) -> dict[str, Any]:
    """Render `paths` with the model, serially or concurrently; return the mode's report."""
    times = StageTimes()
    engine = Engine(runner, overlap=overlap, workers=workers, interpreters=interpreters,
                    queue_size=queue_size, serial=serial, times=times, decode=decode)
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


def list_inputs(folder: str, limit: int | None = None) -> list[str]:
    """Return the RAW candidates of `folder` (see `batch.collect_inputs`), the first `limit`."""
    paths, failures = batch.collect_inputs([folder])
    if failures:
        raise ValueError("; ".join(f"{f.path}: {f.reason}" for f in failures))
    return paths[:limit] if limit else paths


