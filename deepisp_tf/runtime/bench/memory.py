"""Peak memory of one big synthetic frame, rendered in a fresh process (so the peak is its own)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from deepisp_tf.runtime import frames, isolation, pipeline
from deepisp_tf.runtime.bench.common import Settings
from deepisp_tf.runtime.engine import Engine
from deepisp_tf.runtime.gpu import open_runner
from deepisp_tf.runtime.profiling import measure, peak_rss_bytes


def memory_probe_child(model: str, path: str, delegate: str, threads: int | None,
                       workers: int, overlap: int | None, interpreters: int = 1,
                       tile: int | None = None, isolate: bool = False) -> dict[str, Any]:
    """Render one file with the concurrent engine; return peak RSS and time (the probe's body).

    Runs in a fresh process (see `memory_probe`), so the peak is that of this one frame. With
    `isolate` the file is decoded in a worker process, as tools.infer does by default, and that
    process's peak RSS is reported beside ours (`decoder_peak_rss_mb`).
    """
    runner = open_runner(model, delegate=delegate, threads=threads, tile=tile)
    decoders = isolation.DecoderPool(1) if isolate else None
    baseline = peak_rss_bytes()
    started = time.perf_counter()
    with decoders or contextlib.nullcontext(), measure() as measurement:
        result = next(Engine(runner, workers=workers, overlap=overlap,
                             interpreters=interpreters,
                             decode=decoders.decode if decoders else None).run([path]))
    if not result.ok:
        raise RuntimeError(f"memory probe failed: {result.error}")
    height, width = result.image.shape[:2]
    return {"megapixels": result.megapixels, "output_size": [height, width],
            "tiles": result.tiles, "seconds": time.perf_counter() - started,
            "baseline_rss_mb": baseline / 2**20, "peak_rss_mb": peak_rss_bytes() / 2**20,
            "isolate": isolate,
            "decoder_peak_rss_mb": measurement.children_peak_rss_bytes / 2**20,
            "estimate_mb": pipeline.peak_bytes_estimate((height, width), 1.0,
                                                        runner.tile_shape[0]) / 2**20}


def memory_probe(settings: Settings, megapixels: float, workdir: str | None = None
                 ) -> dict[str, Any]:
    """Measure the peak RSS of rendering a synthetic `megapixels` DNG in a fresh process.

    The DNG is written to a temporary folder (deleted afterwards); the child decodes it with
    rawpy (in a decoder process of its own with `settings.isolate`) and renders it with one
    preprocessing worker, as `tools.infer` would.
    """
    with tempfile.TemporaryDirectory(prefix="deepisp-memprobe-", dir=workdir) as folder:
        path = os.path.join(folder, "synthetic.dng")
        frames.write_synthetic_dng(path, megapixels)
        arguments = json.dumps({"model": settings.model_path(), "path": path,
                                "delegate": settings.delegate, "threads": settings.threads,
                                "workers": 1, "overlap": settings.overlap,
                                "interpreters": settings.interpreters,
                                "tile": settings.tile, "isolate": settings.isolate})
        code = ("import json, sys; from deepisp_tf.runtime.bench import memory; "
                "print(json.dumps(memory.memory_probe_child(**json.loads(sys.argv[1]))))")
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [repo, os.environ.get("PYTHONPATH")]))}
        completed = subprocess.run([sys.executable, "-c", code, arguments], env=env,
                                   capture_output=True, text=True, check=False)
    if completed.returncode:
        raise RuntimeError(f"memory probe exited with {completed.returncode}: "
                           f"{completed.stderr.strip()[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


