"""Score a model image by image against the reference render and the two classic baselines."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Any, Callable

import numpy as np
import rawpy

from deepisp_tf import metrics
from deepisp_tf.config import REFERENCE_RENDER_DEFAULTS_NOTE, REFERENCE_RENDER_SETTINGS
from deepisp_tf.evaluation import grids
from deepisp_tf.evaluation.inputs import Item, iter_items, resolve_input
from deepisp_tf.evaluation.models import open_model
from deepisp_tf.evaluation.report import CLASSIC_NOTE, LINEAR_SETTINGS_NOTE, summarize, \
    write_report
from deepisp_tf.raw import classic
from deepisp_tf.raw.io import RawReadError, RawRecord, read_raw
from deepisp_tf.runtime.pipeline import TileRunner, default_overlap, infer_record

log = logging.getLogger("deepisp_tf.evaluation")

ZRR_TILE = 448  # PyNET's whole patch


def _render_baseline(method: str, item: Item, record: RawRecord) -> np.ndarray:
    if method == "rawpy_linear":
        return item.read(item.path, with_reference=True, render_settings={
            "demosaic_algorithm": rawpy.DemosaicAlgorithm.LINEAR})[1]
    return classic.render(record)


def _timed(render: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = render()
    return result, time.perf_counter() - start


def evaluate_item(item: Item, runner: TileRunner, overlap: int | None,
                  protocol: metrics.Protocol, grid_path: str) -> dict[str, Any]:
    """Render, score and time one image against its ground truth; write its grid.

    Returns:
      The report row: name, path, camera, pattern, sizes, scores {method: {psnr, ssim}},
      seconds {reference, method...} (ours excludes decoding: it starts from the record),
      ms_per_megapixel, grid.
    """
    (record, reference), load_seconds = _timed(item.load)
    size = grids.cell_size(reference.shape[:2])
    megapixels = reference.shape[0] * reference.shape[1] / 1e6
    renders = {"ours": lambda: infer_record(record, runner, overlap),
               **{m: (lambda m=m: _render_baseline(m, item, record)) for m in item.baselines}}
    scores, seconds, cells = {}, {"reference": load_seconds}, {}
    for method, render in renders.items():
        image, seconds[method] = _timed(render)
        if image.shape != reference.shape:
            raise ValueError(f"{item.path}: {method} render is {image.shape}, reference "
                             f"{reference.shape}")
        scores[method] = dataclasses.asdict(metrics.score(reference, image, protocol))
        if method in ("ours", "classic"):
            cells[method] = grids.downscale(image, size)
        if method == "ours":
            cells["error"] = grids.error_map(reference, image, size)
        del image  # one full-size render alive at a time
    label = {m: f"{m} {scores[m]['psnr']:.2f} dB" for m in cells if m in scores}
    grids.write_png(grid_path, grids.compose_grid([
        ("input (WB mosaic)", grids.input_preview(record, size)),
        *[(label[m], cells[m]) for m in ("classic",) if m in cells],
        (label["ours"], cells["ours"]), ("reference", grids.downscale(reference, size)),
        (f"|ours - ref| x{grids.ERROR_GAIN:g}", cells["error"])]))
    return {"name": item.name, "path": item.path, "camera": record.camera,
            "pattern": record.pattern, "raw_size": list(record.raw_size),
            "render_size": list(reference.shape[:2]), "megapixels": round(megapixels, 4),
            "scores": scores, "seconds": {k: round(v, 4) for k, v in seconds.items()},
            "ms_per_megapixel": {k: round(1000 * v / megapixels, 2) for k, v in seconds.items()},
            "grid": os.path.join("grids", os.path.basename(grid_path)),
            "error": None}


def _pair(score: dict[str, float]) -> str:
    return f"{score['psnr']:.2f} / {score['ssim']:.4f}"


def evaluate(model: str | None, input_path: str, output: str, *, tile: int | None = None,
             overlap: int | None = None, limit: int | None = None,
             read: Callable[..., Any] = read_raw) -> dict[str, Any]:
    """Evaluate a model on a folder of RAW files or a prepared dataset; write the report.

    Args:
      model: training workdir or .tflite (None: the shipped default model).
      input_path: RAW folder or prepared dataset folder (its test split, else val).
      output: report folder (created).
      tile: Keras tile side (default 256; 448 for ZRR, PyNET's whole patch).
      overlap: tile overlap (default: the runtime's, `default_overlap`: tile / 16 rounded
        down to even, at least 2; 16 for 256-pixel tiles).
      limit: evaluate at most this many images.
      read: `read_raw` or a stand-in with its arguments (`isolation.DecoderPool.load`).

    Returns:
      The report (also in output/report.json, which adds its tables under "tables").
    """
    eval_input = resolve_input(input_path)
    zrr = eval_input.kind == "zrr"
    runner, model_info = open_model(model, ZRR_TILE if zrr and tile is None else tile)
    overlap = default_overlap(runner.tile_shape[0]) if overlap is None else overlap
    protocol = metrics.PYNET if zrr else metrics.DESIGN
    report = {
        "format_version": 1, "model": model_info, "tile": runner.tile_shape[0],
        "overlap": overlap,
        "input": dataclasses.asdict(eval_input), "protocol": dataclasses.asdict(protocol),
        "ground_truth": ("Canon 5D Mark IV JPEG of each ZRR patch (PyNET protocol)" if zrr else
                         f"rawpy reference render {REFERENCE_RENDER_SETTINGS}; "
                         f"{REFERENCE_RENDER_DEFAULTS_NOTE}"),
        "reference_render": {"settings": REFERENCE_RENDER_SETTINGS,
                             "note": REFERENCE_RENDER_DEFAULTS_NOTE},
        "baselines": {"classic": CLASSIC_NOTE, **({} if zrr else {"rawpy_linear": (
            f"rawpy postprocess {LINEAR_SETTINGS_NOTE}, other settings as the reference")})},
        "images": [], "means": {}, "complete": False}
    os.makedirs(os.path.join(output, "grids"), exist_ok=True)
    for index, item in enumerate(iter_items(eval_input, limit, read)):
        try:
            row = evaluate_item(item, runner, overlap, protocol,
                                os.path.join(output, "grids", grids.grid_name(index, item.name)))
            log.info("%s: ours %s", item.name, _pair(row["scores"]["ours"]))
        except Exception as error:  # pylint: disable=broad-except  # reported, the run goes on
            reason = str(error) if isinstance(error, RawReadError) \
                else f"{type(error).__name__}: {error}"
            log.warning("%s failed: %s", item.name, reason)
            row = {"name": item.name, "path": item.path, "error": reason}
        report["images"].append(row)
        report["means"] = summarize(report["images"])
        write_report(output, report)
    report["complete"] = True
    write_report(output, report)
    return report
