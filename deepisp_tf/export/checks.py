"""What the report proves of each converted file: quality, parity, GPU and NNAPI compatibility.

`quality` scores outputs on validation tiles with DESIGN §2.3's metrics after the tile's own
colour matrix; `parity` compares LiteRT outputs with the Keras model the variant was converted
from, against the per-mode minimum `PARITY_MIN_PSNR_DB`.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Iterable

import numpy as np

from deepisp_tf import metrics
from deepisp_tf.export.convert import fixed_shape_model
from deepisp_tf.raw import color
from deepisp_tf.tf_env import keras, tf

# Parity: minimum PSNR (dB) of the LiteRT output against the Keras model the variant was
# converted from (outputs in [0, 1]). float32 only reorders float arithmetic (~1e-6 errors,
# > 90 dB); float16 rounds weights to 11 significant bits (~1e-3 relative, > 50 dB); dynamic
# and int8 round weights and activations to 8 bits: one output step alone is 1/255 (58.9 dB),
# and errors add up over ~20 layers, so 30 dB (3% RMS) separates "same function, quantized"
# from a broken conversion (an unrelated image scores ~10-15 dB). QAT's fake-quant model
# already rounds like the interpreter, but min/max ranges and rounding order still differ.
# The sparse encoding runs FULLY_CONNECTED on LiteRT's sparse int8 kernel, whose rounding
# differs from the dense one (measured 29.6-50 dB on the tests' tiny model): 25 dB.
PARITY_MIN_PSNR_DB = {"float32": 70.0, "float16": 45.0, "dynamic": 30.0, "int8": 30.0,
                      "int8_per_tensor": 30.0, "qat": 30.0, "int8_sparse": 25.0,
                      "int8_float_head": 30.0, "int8_per_tensor_float_head": 30.0}
# Ops the NNAPI delegate accepts, with the Android API level each needs (float32 / quantized
# uint8 graphs); signed int8 graphs need NNAPI 1.3, API 30. A static check from the TFLite
# NNAPI delegate's op table, not a run on a device (android_bench does that).
NNAPI_OPS = {
    "ADD": 27, "AVERAGE_POOL_2D": 27, "CONCATENATION": 27, "CONV_2D": 27, "DEPTH_TO_SPACE": 27,
    "DEPTHWISE_CONV_2D": 27, "DEQUANTIZE": 27, "FULLY_CONNECTED": 27, "LOGISTIC": 27,
    "MAX_POOL_2D": 27, "MUL": 27, "RELU": 27, "RELU_N1_TO_1": 27, "RELU6": 27, "RESHAPE": 27,
    "RESIZE_BILINEAR": 27, "SOFTMAX": 27, "SPACE_TO_DEPTH": 27, "TANH": 27, "MEAN": 28,
    "PAD": 28, "STRIDED_SLICE": 28, "SUB": 28, "TRANSPOSE": 28, "HARD_SWISH": 29,
    "MAXIMUM": 29, "MINIMUM": 29, "QUANTIZE": 29, "RESIZE_NEAREST_NEIGHBOR": 29,
    "TRANSPOSE_CONV": 29,
}
NNAPI_INT8_API = 30


def keras_outputs(model: keras.Model, tiles: list) -> list[np.ndarray]:
    """Run a Keras model (any variant source) on validation tiles; return [S, S, 3] each."""
    size = tiles[0][0].shape
    fixed = fixed_shape_model(model, *size)
    outputs = []
    for bayer, metadata, _ in tiles:
        inputs = [bayer[None, ..., None]] + ([metadata[None]] if len(model.inputs) > 1 else [])
        outputs.append(np.asarray(fixed(inputs if len(inputs) > 1 else inputs[0],
                                        training=False))[0])
    return outputs


def quality(outputs: list[np.ndarray], tiles: list) -> dict[str, float]:
    """Return the mean PSNR/SSIM (DESIGN §2.3) of camera-RGB outputs, mapped to sRGB with each
    tile's matrix (`color.camera_to_srgb`), against the tiles' targets."""
    score = metrics.mean_score(
        metrics.score(target, color.camera_to_srgb(output, metadata[:9].reshape(3, 3)))
        for output, (_, metadata, target) in zip(outputs, tiles))
    return {"psnr": score.psnr, "ssim": score.ssim}


def parity(outputs: list[np.ndarray], references: list[np.ndarray]) -> dict[str, float]:
    """Return PSNR (whole tile, no crop) and max |difference| of outputs against references."""
    reference, output = np.concatenate(references), np.concatenate(outputs)  # tiles stacked in H
    return {"parity_psnr_db": metrics.psnr(reference, output, border=0),
            "max_abs_diff": float(np.max(np.abs(output.astype(np.float64) - reference)))}


def gpu_compatibility(tflite: bytes) -> dict[str, Any]:
    """Run `tf.lite.experimental.Analyzer` with gpu_compatibility=True; return its verdict.

    Returns:
      {"compatible": bool, "warnings": the analyzer's GPU COMPATIBILITY WARNING lines,
       "analyzer_summary": its closing verdict line}.
    """
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        tf.lite.experimental.Analyzer.analyze(model_content=tflite, gpu_compatibility=True)
    lines = text.getvalue().splitlines()
    warnings = [line.strip() for line in lines if "GPU COMPATIBILITY WARNING" in line]
    verdict = [line.strip() for line in lines if "compatible with GPU delegate" in line]
    return {"compatible": not warnings and any("looks compatible" in v for v in verdict),
            "warnings": warnings, "analyzer_summary": verdict[0] if verdict else ""}


def nnapi_check(ops: Iterable[str], integer: bool) -> dict[str, Any]:
    """Check the op list against `NNAPI_OPS`; return support and the minimum Android API."""
    ops = sorted(set(ops))
    unsupported = [op for op in ops if op not in NNAPI_OPS]
    levels = [NNAPI_OPS[op] for op in ops if op in NNAPI_OPS] + ([NNAPI_INT8_API] if integer
                                                                   else [])
    return {"supported": not unsupported, "unsupported_ops": unsupported,
            "min_android_api": max(levels) if levels and not unsupported else None,
            "check": "static op table (deepisp_tf.export.checks.NNAPI_OPS), not a device run"}
