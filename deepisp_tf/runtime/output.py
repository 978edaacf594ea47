"""Encode and write rendered images atomically: 16-bit PNG, 8-bit JPEG or 16-bit TIFF."""

from __future__ import annotations

import io
import os

import cv2
import numpy as np
import tifffile

from deepisp_tf import atomic

FORMATS = ("png", "jpg", "tiff")
JPEG_QUALITY = 95


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Scale uint16 values to uint8, rounding to nearest (65535 -> 255)."""
    return ((image.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def encode_image(image: np.ndarray, fmt: str) -> bytes:
    """Encode an sRGB image.

    Args:
      image: [H, W, 3] uint16 RGB.
      fmt: "png" (16-bit RGB), "jpg" (8-bit, quality 95) or "tiff" (16-bit RGB, deflate).

    Returns:
      The encoded file.
    """
    if image.dtype != np.uint16 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a [H, W, 3] uint16 image, got {image.shape} {image.dtype}")
    if fmt == "tiff":
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, image, photometric="rgb", compression="zlib")
        return buffer.getvalue()
    if fmt == "png":
        ok, data = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]),
                                [cv2.IMWRITE_PNG_COMPRESSION, 1])
    elif fmt == "jpg":
        ok, data = cv2.imencode(".jpg", np.ascontiguousarray(to_uint8(image)[..., ::-1]),
                                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    else:
        raise ValueError(f"unknown image format {fmt!r}: one of {', '.join(FORMATS)}")
    if not ok:
        raise OSError(f"OpenCV could not encode a {image.shape} image as {fmt}")
    return data.tobytes()


def output_path(output_dir: str | os.PathLike, input_path: str | os.PathLike, fmt: str) -> str:
    """Return DIR/<stem of the input>.<fmt>."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown image format {fmt!r}: one of {', '.join(FORMATS)}")
    stem = os.path.splitext(os.path.basename(os.fspath(input_path)))[0]
    return os.path.join(os.fspath(output_dir), f"{stem}.{fmt}")


def write_image(path: str | os.PathLike, image: np.ndarray, fmt: str) -> str:
    """Encode `image` [H, W, 3] uint16 as `fmt` and write it to `path` atomically."""
    return atomic.write_bytes(path, encode_image(image, fmt))
