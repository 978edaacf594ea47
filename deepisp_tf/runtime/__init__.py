"""LiteRT runtime: interpreter and delegates, tiling and blending, full-image inference.

No TensorFlow import anywhere in this package: it runs with `ai_edge_litert` and numpy only.
"""

from deepisp_tf.runtime.interpreter import DelegateError, OpInfo, Runner, parse_delegate
from deepisp_tf.runtime.pipeline import Engine, InferenceResult, infer_record
from deepisp_tf.runtime.tiling import (
    StripStitcher, TileGrid, blend_weights, stitch_tiles, tile_grid, tile_image)

__all__ = [
    "DelegateError", "OpInfo", "Runner", "parse_delegate",
    "Engine", "InferenceResult", "infer_record",
    "StripStitcher", "TileGrid", "blend_weights", "stitch_tiles", "tile_grid", "tile_image",
]
