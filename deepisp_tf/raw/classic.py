"""The classic ISP baseline: OpenCV demosaic + white balance + colour matrix + gamma.

It uses the same metadata as the model (`RawRecord`), so with bilinear demosaicing it reproduces
rawpy's `LINEAR` render closely; `tests/test_classic.py` checks that on the real files.
"""

from __future__ import annotations

import cv2
import numpy as np

from deepisp_tf.raw import cfa, color, geometry
from deepisp_tf.raw.io import RawRecord

# OpenCV names Bayer codes after the second row's first two sites; for a red-first (RGGB)
# mosaic the code is BayerBG.
_DEMOSAIC_CODES = {
    "bilinear": cv2.COLOR_BayerBG2RGB,
    "vng": cv2.COLOR_BayerBG2RGB_VNG,
    "edge_aware": cv2.COLOR_BayerBG2RGB_EA,
}


def demosaic(rggb: np.ndarray, method: str = "bilinear") -> np.ndarray:
    """Demosaic a normalized RGGB mosaic [H, W] in [0, 1] into [H, W, 3] float32 with OpenCV."""
    if method not in _DEMOSAIC_CODES:
        raise ValueError(f"unknown demosaic method {method!r}; one of {sorted(_DEMOSAIC_CODES)}")
    if method == "vng":  # OpenCV's VNG takes 8-bit input only
        coded = np.round(rggb * 255).astype(np.uint8)
        return cv2.cvtColor(coded, _DEMOSAIC_CODES[method]).astype(np.float32) / 255
    coded = np.round(rggb * 65535).astype(np.uint16)
    return cv2.cvtColor(coded, _DEMOSAIC_CODES[method]).astype(np.float32) / 65535


def render(record: RawRecord, method: str = "bilinear") -> np.ndarray:
    """Render a RAW record to sRGB in the reference render's geometry.

    Args:
      record: a decoded RAW file.
      method: OpenCV demosaic ("bilinear", "vng" or "edge_aware").

    Returns:
      [H', W', 3] uint16 image, (H', W') == record.render_size.
    """
    normalized = color.normalize(record.mosaic, record.pattern, record.black_levels,
                                 record.white_level, record.gains_2x2)
    rggb, padding = cfa.canonicalize(normalized, record.pattern)
    camera_rgb = cfa.decanonicalize(demosaic(rggb, method), padding)
    linear = np.clip(color.apply_matrix(camera_rgb, record.cam_to_srgb), 0.0, 1.0)
    linear = geometry.stretch(linear, record.pixel_aspect)  # LibRaw stretches before gamma
    return np.round(color.gamma_compression(linear) * 65535).astype(np.uint16)
