"""Model mode: per-tile and per-Full-HD-frame latency of every .tflite in a folder (float32,
float16, int8, sparse ...), on the chosen delegate, with the frame's time per stage."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Sequence

import numpy as np

from deepisp_tf.runtime import frames, pipeline
from deepisp_tf.runtime.bench.common import FULL_HD, Settings, machine
from deepisp_tf.runtime.engine import Engine
from deepisp_tf.runtime.profiling import StageTimes, percentiles_ms, warm_up


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
    warm_up(runner, warmup)
    for _ in range(runs):
        pipeline.run_tile(runner, tile, metadata, times)
    record = frames.synthetic_record(*frame)
    frame_seconds = []
    frame_times = StageTimes()
    for _ in range(frame_runs):
        started = time.perf_counter()
        pipeline.infer_record(record, runner, settings.overlap, frame_times)
        frame_seconds.append(time.perf_counter() - started)
    engine_seconds = _engine_frame_seconds(runner, record, settings, frame_runs)
    description = runner.describe()
    description["weights"] = runner.weights_summary()
    plan = pipeline.plan_record(record, runner.tile_shape[0], settings.overlap
                                if settings.overlap is not None
                                else pipeline.default_overlap(runner.tile_shape[0]))
    return {"model": os.path.basename(path), "path": path, "bytes": os.path.getsize(path),
            "kind": model_kind(description, path), "description": description,
            "tile_latency_ms": percentiles_ms(times.durations("invoke")),
            "frame": list(frame), "tiles_per_frame": len(plan.grid),
            "frame_latency_ms": percentiles_ms(frame_seconds),
            "engine_interpreters": settings.interpreters if engine_seconds else None,
            "engine_frame_latency_ms": (percentiles_ms(engine_seconds) if engine_seconds
                                        else None),
            "frame_stage_ms": {stage: 1000 * total / max(frame_runs, 1)
                               for stage, total in frame_times.totals().items()}}


def _engine_frame_seconds(runner: Any, record: Any, settings: Settings, runs: int
                          ) -> list[float]:
    """Time `runs` renders of one frame through the engine with `settings.interpreters`
    interpreters sharing its tiles (what `deepisp_tf.render` and tools.infer do); [] with one
    interpreter or a runner without replicas (GPU)."""
    if settings.interpreters < 2 or not hasattr(runner, "replica"):
        return []
    engine = Engine(runner, overlap=settings.overlap, workers=1,
                    interpreters=settings.interpreters, decode=lambda _: record)
    list(engine.run(["frame"]))  # warm-up: the replicas' first tiles
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        list(engine.run(["frame"]))
        seconds.append(time.perf_counter() - started)
    return seconds


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
