"""The colour stages around the network as look-up tables (no float maths per pixel).

Model input: `color.normalize` (black, white level, white balance, clip) and
`color.gamma_compression` of a raw value depend only on the value and its CFA site, so they are
one table per site of 65536 entries, quantized straight to the model's input dtype
(`input_table`, `encode_tile`).

Model output: `color.camera_to_srgb` = gamma_compression(clip(M @ gamma_expansion(rgb))) runs as
a table from the stored output to linear camera RGB (256 entries for int8/uint8 outputs; float
outputs are quantized to 16 bits first), OpenCV's `transform` for the matrix, a saturating
conversion to 16-bit linear (the clip) and a 65536-entry table from 16-bit linear to 16-bit
gamma sRGB (`OutputColour`). 16-bit linear is also the precision of LibRaw's own render; the
result is within a few 16-bit steps of the float64 reference (tests/test_runtime_colour.py).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from deepisp_tf.raw import color
from deepisp_tf.runtime.quantization import Quantization

LEVELS = 65536          # raw values are uint16
LINEAR_SCALE = 65535.0  # 16-bit linear and output values: value / 65535


def to_uint16(values: np.ndarray) -> np.ndarray:
    """Quantize float values in [0, 1] (clipped) to uint16, rounding to nearest."""
    scaled = np.clip(values, 0.0, 1.0)
    scaled *= np.float32(LINEAR_SCALE)
    scaled += np.float32(0.5)
    return scaled.astype(np.uint16)  # truncation of non-negative values: floor


def input_table(black_levels: np.ndarray, white_level: float, wb_gains: np.ndarray,
                quantization: Quantization) -> np.ndarray:
    """Return the model input of every raw value at every site of an RGGB mosaic.

    Entry `site * 65536 + value` (site = 2 * (row % 2) + col % 2) holds
    `quantization.quantize(gamma_compression(normalize(value)))`, computed by the reference
    functions themselves. Values past the saturation of every site are filled with the input of
    1.0 (what `normalize` clips them to) instead of being computed.

    Args:
      black_levels: [2, 2] black level per site of the RGGB mosaic.
      white_level: saturation value.
      wb_gains: [3] (R, G, B) gains, or [2, 2] per site of the RGGB mosaic.
      quantization: the model's input (float32, or int8/uint8 with scale and zero point).

    Returns:
      [4 * 65536] table of the model's input dtype.
    """
    black = np.asarray(black_levels, np.float64).reshape(2, 2)
    gains = color.site_gains(wb_gains, "RGGB").astype(np.float64)
    saturation = black + float(color.white_range(black, white_level)) / np.maximum(gains, 1e-6)
    count = int(min(LEVELS, np.ceil(saturation.max()) + 2))
    # A [2, 2 * count] mosaic whose site (i, j) holds 0 .. count - 1 at columns j, j + 2, ...
    values = np.repeat(np.arange(count, dtype=np.uint16), 2)[None].repeat(2, axis=0)
    encoded = quantization.quantize(color.gamma_compression(
        color.normalize(values, "RGGB", black_levels, white_level, wb_gains)
    ).astype(np.float32))
    table = np.empty((2, 2, LEVELS), quantization.dtype)
    table[...] = quantization.quantize(np.float32(1.0))
    for row in range(2):
        for col in range(2):
            table[row, col, :count] = encoded[row, col::2]
    return table.reshape(-1)


@functools.lru_cache(maxsize=4)
def site_offsets(tile: int) -> np.ndarray:
    """Return [tile, tile] uint32 `site * 65536` of an RGGB tile (read-only, cached)."""
    sites = np.add.outer(np.arange(tile) % 2 * 2, np.arange(tile) % 2)
    offsets = (sites * LEVELS).astype(np.uint32)
    offsets.flags.writeable = False
    return offsets


def encode_tile(window: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Return the model input [t, t] of an RGGB raw window [t, t] uint16 (`input_table`)."""
    if window.dtype != np.uint16:
        raise ValueError(f"raw windows must be uint16, got {window.dtype}")
    index = np.add(window, site_offsets(window.shape[0]), dtype=np.uint32)
    return np.take(table, index)  # index < 4 * 65536 == len(table): no clipping needed


@functools.lru_cache(maxsize=8)
def expansion_table(quantization: Quantization) -> np.ndarray:
    """Return linear values (float32) of gamma-encoded model outputs (read-only, cached).

    Returns:
      [256] indexed by the stored byte for int8/uint8 outputs (an int8 value v at v & 255);
      [65536] indexed by round(output * 65535) for float outputs.
    """
    if quantization.is_float:
        encoded = np.arange(LEVELS, dtype=np.float64) / LINEAR_SCALE
    elif quantization.dtype.itemsize == 1:
        encoded = quantization.dequantize(np.arange(256, dtype=np.uint8).view(quantization.dtype))
    else:
        raise ValueError(f"no output table for {quantization.dtype} outputs: float, int8 or uint8")
    table = color.gamma_expansion(encoded).astype(np.float32)
    table.flags.writeable = False
    return table


@functools.lru_cache(maxsize=1)
def compression_table() -> np.ndarray:
    """Return [65536] uint16: 16-bit gamma sRGB of every 16-bit linear value (read-only)."""
    table = to_uint16(color.gamma_compression(np.arange(LEVELS) / LINEAR_SCALE).astype(np.float32))
    table.flags.writeable = False
    return table


def _to_16bit(values: np.ndarray) -> np.ndarray:
    """Return round(values * 65535) as uint16, saturated (the clip to [0, 1]) [n, W, 3].

    Multiplied as one channel of n x 3W values: the same result as the 3-channel product with
    a per-channel scalar, ~8x faster (OpenCV 5.1 broadcasts a Scalar over 3 channels slowly).
    """
    flat = values.reshape(values.shape[0], -1)
    return cv2.multiply(flat, LINEAR_SCALE, dtype=cv2.CV_16U).reshape(values.shape)


class OutputColour:
    """Map model outputs (gamma camera RGB, as stored) to 16-bit gamma sRGB of one image."""

    def __init__(self, quantization: Quantization, cam_to_srgb: np.ndarray):
        """Prepare the tables of a model output and an image's camera->sRGB matrix [3, 3]."""
        self.quantization = quantization
        self.expansion = expansion_table(quantization)
        self.compression = compression_table()
        self.matrix = np.asarray(cam_to_srgb, np.float32).reshape(3, 3)

    def linear(self, rgb: np.ndarray) -> np.ndarray:
        """Return linear camera RGB [n, W, 3] float32 of model outputs [n, W, 3]."""
        if not self.quantization.is_float:
            return cv2.LUT(rgb.view(np.uint8), self.expansion)
        index = _to_16bit(np.asarray(rgb, np.float32))
        return np.take(self.expansion, index)  # uint16 index, 65536 entries

    def to_srgb(self, rgb: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Return (or write into `out`) the 16-bit gamma sRGB [n, W, 3] of outputs [n, W, 3]."""
        linear = _to_16bit(cv2.transform(self.linear(rgb), self.matrix))
        # uint16 index into 65536 entries: never out of range; the default mode is ~1.6x
        # faster than mode="clip" with `out` (numpy 2, measured).
        return np.take(self.compression, linear, out=out)
