"""Evaluate a model against the reference render and two classic baselines, image by image.

For every RAW file: the reference render (the ground truth, DESIGN §2.1), the model's render
(tiled full-image inference, `runtime.pipeline.infer_record`), rawpy's own LINEAR demosaic with
the same pinned settings, and the classic OpenCV pipeline (`raw.classic.render`), scored with
`metrics` (DESIGN §2.3) and timed. A prepared Zurich RAW-to-RGB dataset is scored against its
Canon JPEGs with PyNET's protocol instead (no RAW files there, so no rawpy baseline).

    inputs.py     what --input holds (RAW folder, prepared dataset split, ZRR shards)
    models.py     the model runners: a training workdir (tf_keras) or a .tflite (LiteRT)
    scoring.py    `evaluate`: render, score and time every image; the report rows
    grids.py      the per-image grid (input preview | classic | ours | reference | error map)
    report.py     set means, tables and Markdown, written by `deepisp_tf.reports`

Outputs in the report folder, written atomically and refreshed after every image:

    report.json          settings, model, input, one row per image (scores, seconds, error),
                         means, and the tables below (so README tables regenerate from it)
    report.md            the same as Markdown tables
    report_scores.csv    per image PSNR / SSIM per method (+ the mean row)
    report_seconds.csv   per image seconds per method
    grids/<name>.png     input preview | classic | ours | reference | error map

A file that cannot be evaluated becomes a row with an `error` and the run goes on.
"""

from deepisp_tf.evaluation.grids import (GRID_GAP, GRID_HEADER, GRID_MAX_HEIGHT, GRID_MAX_WIDTH,
                                         cell_size, compose_grid, downscale, input_preview)
from deepisp_tf.evaluation.inputs import EvalInput, Item, iter_items, resolve_input
from deepisp_tf.evaluation.models import DEFAULT_TILE, KerasRunner, open_keras, open_model
from deepisp_tf.evaluation.report import (METHODS, format_markdown, scores_table, summarize,
                                          write_report)
from deepisp_tf.evaluation.scoring import evaluate, evaluate_item

__all__ = [
    "DEFAULT_TILE", "EvalInput", "GRID_GAP", "GRID_HEADER", "GRID_MAX_HEIGHT", "GRID_MAX_WIDTH",
    "Item", "KerasRunner", "METHODS", "cell_size", "compose_grid", "downscale", "evaluate",
    "evaluate_item", "format_markdown", "input_preview", "iter_items", "open_keras",
    "open_model", "resolve_input", "scores_table", "summarize", "write_report",
]
