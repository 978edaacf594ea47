"""LiteRT runtime: interpreter and delegates, tiling and blending, full-image and batch inference.

No TensorFlow import anywhere in this package: it runs with `ai_edge_litert`, numpy, rawpy and
OpenCV only (tests/test_runtime.py checks it in a fresh interpreter).
"""

from deepisp_tf.runtime.batch import BatchSummary, Failure, format_summary, infer_files
from deepisp_tf.runtime.engine import Engine, InferenceResult
from deepisp_tf.runtime.delegates import DelegateError, parse_delegate
from deepisp_tf.runtime.inspection import OpInfo
from deepisp_tf.runtime.interpreter import Runner
from deepisp_tf.runtime.models import NoDefaultModelError, default_model_path
from deepisp_tf.runtime.pipeline import infer_record, peak_bytes_estimate
from deepisp_tf.runtime.tiling import (
    StripStitcher, TileGrid, stitch_tiles, tile_grid, tile_image)

__all__ = [
    "BatchSummary", "Failure", "format_summary", "infer_files",
    "Engine", "InferenceResult",
    "DelegateError", "OpInfo", "Runner", "parse_delegate",
    "NoDefaultModelError", "default_model_path",
    "infer_record", "peak_bytes_estimate",
    "StripStitcher", "TileGrid", "stitch_tiles", "tile_grid", "tile_image",
]
