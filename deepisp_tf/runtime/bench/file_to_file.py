"""File to file: the whole batch from RAW files to written images, ours against rawpy's.

Ours is `batch.infer_files` (the concurrent engine, encoding and writing in writer threads);
the reference is rawpy's render (DESIGN §2.1; `output_bps=8` for JPEG) followed by
`cv2.imwrite` of the same format with OpenCV's default settings (16-bit PNG: level 1, RLE; JPEG
quality 95), in as many threads as there are CPUs (rawpy and OpenCV release the GIL). The two
run on the same files, alternated (A B A B ...), each into a fresh temporary folder; every run
reports wall time, output megapixels, MP/s, bytes written and MB per output MP.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import tempfile
from typing import Any, Sequence

import cv2
import numpy as np

from deepisp_tf import atomic
from deepisp_tf.raw.io import reference_render
from deepisp_tf.runtime import batch, output
from deepisp_tf.runtime.interpreter import Runner
from deepisp_tf.runtime.profiling import measure

FORMATS = ("jpg", "png")


def _rawpy_one(path: str, target: str, fmt: str) -> tuple[float, int]:
    """Render one file with rawpy and cv2.imwrite it atomically; return (output MP, bytes)."""
    if fmt == "jpg":
        image = reference_render(path, output_bps=8)
        parameters = [cv2.IMWRITE_JPEG_QUALITY, output.JPEG_QUALITY]
    else:
        image = reference_render(path)
        parameters = []
    with atomic.replacing(target, suffix=f".{fmt}") as temporary:
        if not cv2.imwrite(temporary, np.ascontiguousarray(image[..., ::-1]), parameters):
            raise OSError(f"cv2.imwrite could not write {target}")
    return image.shape[0] * image.shape[1] / 1e6, os.path.getsize(target)


def run_rawpy(paths: Sequence[str], output_dir: str, fmt: str,
              threads: int | None = None) -> dict[str, Any]:
    """Render and write `paths` with rawpy + cv2.imwrite in `threads` threads; return the run."""
    threads = threads or os.cpu_count() or 1
    os.makedirs(output_dir, exist_ok=True)
    megapixels, size, failed = 0.0, 0, []
    with measure() as measurement:
        with concurrent.futures.ThreadPoolExecutor(threads, "deepisp-rawpy") as pool:
            futures = {pool.submit(_rawpy_one, path, output.output_path(output_dir, path, fmt),
                                   fmt): path for path in paths}
            for future in concurrent.futures.as_completed(futures):
                try:
                    done_mp, done_bytes = future.result()
                except Exception as error:  # pylint: disable=broad-except  # reported
                    failed.append(f"{futures[future]}: {error}")
                    continue
                megapixels += done_mp
                size += done_bytes
    return _run("rawpy+cv2.imwrite", fmt, threads, len(paths) - len(failed), megapixels, size,
                measurement, failed, {})


def run_ours(runner: Runner, paths: Sequence[str], output_dir: str, fmt: str, *,
             workers: int = 2, interpreters: int = 1, writers: int = 2,
             png_mode: str = output.DEFAULT_PNG_MODE,
             overlap: int | None = None, isolate: bool = False) -> dict[str, Any]:
    """Render and write `paths` with `batch.infer_files`; return the run."""
    with measure() as measurement:
        summary = batch.infer_files(paths, runner, output_dir, fmt=fmt, workers=workers,
                                    interpreters=interpreters, writers=writers,
                                    png_mode=png_mode, overlap=overlap, progress=False,
                                    isolate=isolate)
    totals = summary.times.totals()
    stages = {stage: 1000 * total / max(len(summary.outputs), 1)
              for stage, total in totals.items()}
    return _run("deepisp_tf", fmt, workers, len(summary.outputs), summary.output_megapixels,
                summary.bytes, measurement, [f"{f.path}: {f.reason}" for f in summary.failures],
                stages)


def _run(mode: str, fmt: str, threads: int, images: int, megapixels: float, size: int,
         measurement: Any, failed: list[str], stages: dict[str, float]) -> dict[str, Any]:
    seconds = measurement.seconds
    return {"mode": mode, "format": fmt, "threads": threads, "images": images,
            "megapixels": megapixels, "seconds": seconds,
            "megapixels_per_s": megapixels / seconds if seconds else 0.0,
            "bytes": size, "mb_per_megapixel": size / 1e6 / megapixels if megapixels else None,
            "stage_ms_per_image": stages, "failed": failed,
            **{key: value for key, value in measurement.to_dict().items() if key != "seconds"}}


def compare(runner: Runner, paths: Sequence[str], *, formats: Sequence[str] = FORMATS,
            rounds: int = 2, workers: int = 2, interpreters: int = 1, writers: int = 2,
            png_mode: str = output.DEFAULT_PNG_MODE, overlap: int | None = None,
            workdir: str | None = None, isolate: bool = False) -> dict[str, Any]:
    """Time ours against rawpy file to file, alternated `rounds` times per format.

    Returns:
      {"runs": every run in order, "summary": {fmt: {"ours_megapixels_per_s",
       "rawpy_megapixels_per_s", "ratio" (best of each), ...}}}.
    """
    runs = []
    with tempfile.TemporaryDirectory(prefix="deepisp-f2f-", dir=workdir) as folder:
        for fmt in formats:
            for round_index in range(rounds):
                ours_dir = os.path.join(folder, f"ours_{fmt}_{round_index}")
                rawpy_dir = os.path.join(folder, f"rawpy_{fmt}_{round_index}")
                runs.append({"round": round_index, **run_ours(
                    runner, paths, ours_dir, fmt, workers=workers, interpreters=interpreters,
                    writers=writers, png_mode=png_mode, overlap=overlap, isolate=isolate)})
                shutil.rmtree(ours_dir, ignore_errors=True)
                runs.append({"round": round_index, **run_rawpy(paths, rawpy_dir, fmt)})
                shutil.rmtree(rawpy_dir, ignore_errors=True)
    return {"runs": runs, "summary": summarize(runs), "png_mode": png_mode,
            "writers": writers, "rounds": rounds}


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Return per format the best MP/s of each side, their ratio and the bytes per MP."""
    summary = {}
    for fmt in dict.fromkeys(run["format"] for run in runs):
        sides = {}
        for mode in ("deepisp_tf", "rawpy+cv2.imwrite"):
            candidates = [run for run in runs if run["format"] == fmt and run["mode"] == mode
                          and run["images"]]
            sides[mode] = max(candidates, key=lambda run: run["megapixels_per_s"], default=None)
        ours, rawpy = sides["deepisp_tf"], sides["rawpy+cv2.imwrite"]
        summary[fmt] = {
            "ours_megapixels_per_s": ours and ours["megapixels_per_s"],
            "rawpy_megapixels_per_s": rawpy and rawpy["megapixels_per_s"],
            "ratio": (ours["megapixels_per_s"] / rawpy["megapixels_per_s"]
                      if ours and rawpy and rawpy["megapixels_per_s"] else None),
            "ours_mb_per_megapixel": ours and ours["mb_per_megapixel"],
            "rawpy_mb_per_megapixel": rawpy and rawpy["mb_per_megapixel"]}
    return summary


def copy_repeated(paths: Sequence[str], copies: int, folder: str) -> list[str]:
    """Return `copies` hard links (or copies) of every file in `folder`, with distinct stems
    (<k>_<name>), so outputs do not collide; file order kept, copy-major."""
    os.makedirs(folder, exist_ok=True)
    out = []
    for copy in range(copies):
        for path in paths:
            target = os.path.join(folder, f"{copy:03d}_{os.path.basename(path)}")
            if not os.path.exists(target):
                try:
                    os.link(path, target)
                except OSError:
                    shutil.copyfile(path, target)
            out.append(target)
    return out

