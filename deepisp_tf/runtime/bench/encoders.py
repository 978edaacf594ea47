"""Encoder settings: time and size of every output format / PNG mode on one rendered image
(PNG "small" is OpenCV's defaults: what `cv2.imwrite` does for the reference side)."""

from __future__ import annotations

import time
from typing import Any

import cv2
import numpy as np

from deepisp_tf.runtime import output


def _variants() -> dict[str, Any]:
    """Return {name: function(image [H, W, 3] uint16) -> bytes} of every setting timed."""
    variants: dict[str, Any] = {
        "png level 1 only (zlib default strategy)": lambda image: cv2.imencode(
            ".png", np.ascontiguousarray(image[..., ::-1]),
            [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes()}
    for mode in output.PNG_MODES:
        name = f"png {mode}" + (" (= cv2.imwrite defaults)" if mode == "small" else "")
        variants[name] = lambda image, mode=mode: output.encode_image(image, "png", mode)
    for fmt in ("tiff", "tiff_raw", "jpg"):
        variants[fmt] = lambda image, fmt=fmt: output.encode_image(image, fmt)
    return variants


def time_encoders(image: np.ndarray, repeats: int = 3) -> list[dict[str, Any]]:
    """Return one row per setting: best-of-`repeats` ms per MP, MB per MP, lossless or not.

    Args:
      image: [H, W, 3] uint16 sRGB (e.g. a reference render).
      repeats: timed encodes per setting (the fastest is kept).
    """
    megapixels = image.shape[0] * image.shape[1] / 1e6
    rows = []
    for name, encode in _variants().items():
        best, data = float("inf"), b""
        for _ in range(repeats):
            start = time.perf_counter()
            data = encode(image)
            best = min(best, time.perf_counter() - start)
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        lossless = decoded is not None and decoded.dtype == np.uint16 and np.array_equal(
            decoded[..., ::-1], image)
        rows.append({"setting": name, "ms_per_megapixel": 1000 * best / megapixels,
                     "mb_per_megapixel": len(data) / 1e6 / megapixels, "lossless": lossless})
    return rows


def format_markdown(rows: list[dict[str, Any]], what: str) -> str:
    """Return the encoder table as Markdown."""
    lines = [f"Encoders on {what}:", "", "| setting | ms per MP | MB per MP | lossless 16-bit |",
             "|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['setting']} | {row['ms_per_megapixel']:.1f} | "
                     f"{row['mb_per_megapixel']:.2f} | {'yes' if row['lossless'] else 'no'} |")
    return "\n".join(lines) + "\n"
