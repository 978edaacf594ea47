"""Encode and write rendered images atomically: 16-bit PNG, 8-bit JPEG or 16-bit TIFF.

16-bit PNG is the costly one. Measured with OpenCV 5.1 on a 4 MP render (Intel Xeon, AVX-512;
docs/runtime_speed.md): OpenCV's defaults ("small": level 1, RLE, adaptive filters) ~160 ms/MP
and 4.92 MB per MP (passing only IMWRITE_PNG_COMPRESSION=1, as this module did before, switches
the strategy to zlib's default: ~310 ms/MP); "fast", the default here (level 1, Huffman only,
SUB filter), ~90 ms/MP and 4.99 MB/MP; "stored" (level 0, no filter) ~14 ms/MP, 6.0 MB/MP.
Uncompressed TIFF ("tiff_raw") ~2 ms/MP, 6.0 MB/MP; deflate TIFF ("tiff") ~260 ms/MP. JPEG q95
~5 ms/MP. All lossless formats keep the 16-bit values exactly. The encoders release the GIL,
so `batch` runs them in writer threads.
"""

from __future__ import annotations

import io
import os

import cv2
import numpy as np
import tifffile

from deepisp_tf import atomic

FORMATS = ("png", "jpg", "tiff", "tiff_raw")
EXTENSIONS = {"png": "png", "jpg": "jpg", "tiff": "tiff", "tiff_raw": "tiff"}
JPEG_QUALITY = 95
PNG_MODES = {  # name: cv2.imencode parameters
    "fast": [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY,
             cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY, cv2.IMWRITE_PNG_FILTER,
             cv2.IMWRITE_PNG_FILTER_SUB],
    # OpenCV's defaults (level 1, RLE, adaptive filters): what cv2.imwrite does. Passing
    # IMWRITE_PNG_COMPRESSION alone also resets the strategy to zlib's default, ~2x slower.
    "small": [],
    "stored": [cv2.IMWRITE_PNG_COMPRESSION, 0, cv2.IMWRITE_PNG_FILTER,
               cv2.IMWRITE_PNG_FILTER_NONE],
}
DEFAULT_PNG_MODE = "fast"


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Scale uint16 values to uint8, rounding to nearest (65535 -> 255).

    `cv2.convertScaleAbs` gives exactly round(v * 255 / 65535) for every uint16 value (no
    value lies on a half), ~15x faster than the integer formula in numpy.
    """
    return cv2.convertScaleAbs(image, alpha=255.0 / 65535.0)


def encode_image(image: np.ndarray, fmt: str, png_mode: str = DEFAULT_PNG_MODE) -> bytes:
    """Encode an sRGB image.

    Args:
      image: [H, W, 3] uint16 RGB.
      fmt: "png" (16-bit RGB), "jpg" (8-bit, quality 95), "tiff" (16-bit RGB, deflate) or
        "tiff_raw" (16-bit RGB, uncompressed).
      png_mode: a key of PNG_MODES.

    Returns:
      The encoded file.
    """
    if image.dtype != np.uint16 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a [H, W, 3] uint16 image, got {image.shape} {image.dtype}")
    if fmt in ("tiff", "tiff_raw"):
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, image, photometric="rgb",
                         compression="zlib" if fmt == "tiff" else None)
        return buffer.getvalue()
    if fmt == "png":
        if png_mode not in PNG_MODES:
            raise ValueError(f"unknown PNG mode {png_mode!r}: one of {', '.join(PNG_MODES)}")
        ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                                PNG_MODES[png_mode])
    elif fmt == "jpg":
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(to_uint8(image), cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    else:
        raise ValueError(f"unknown image format {fmt!r}: one of {', '.join(FORMATS)}")
    if not ok:
        raise OSError(f"OpenCV could not encode a {image.shape} image as {fmt}")
    return data.tobytes()


def output_path(output_dir: str | os.PathLike, input_path: str | os.PathLike, fmt: str) -> str:
    """Return DIR/<stem of the input>.<extension of fmt>."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown image format {fmt!r}: one of {', '.join(FORMATS)}")
    stem = os.path.splitext(os.path.basename(os.fspath(input_path)))[0]
    return os.path.join(os.fspath(output_dir), f"{stem}.{EXTENSIONS[fmt]}")


def write_image(path: str | os.PathLike, image: np.ndarray, fmt: str,
                png_mode: str = DEFAULT_PNG_MODE) -> str:
    """Encode `image` [H, W, 3] uint16 as `fmt` and write it to `path` atomically."""
    return atomic.write_bytes(path, encode_image(image, fmt, png_mode))
