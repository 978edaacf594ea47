"""Images that show a tile or a render to a person: the input preview and the error map.

Shared by training (TensorBoard strips of validation tiles) and evaluation (report grids), so
both show the same thing. numpy + OpenCV, no TensorFlow.
"""

from __future__ import annotations

import cv2
import numpy as np

from deepisp_tf import metrics
from deepisp_tf.raw import cfa

ERROR_GAIN = 10.0        # error map: mean |ours - reference| x 10 over channels, inferno colours


def packed_preview(rggb: np.ndarray) -> np.ndarray:
    """Show the model's input, a gamma-coded RGGB mosaic [H, W], as camera RGB [H/2, W/2, 3].

    One pixel per 2x2 CFA block: (R, mean of the two G, B), clipped to [0, 1].
    """
    planes = cfa.pack(rggb)
    rgb = np.stack([planes[..., 0], planes[..., 1:3].mean(-1), planes[..., 3]], -1)
    return np.clip(rgb, 0, 1)


def error_map(reference: np.ndarray, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Return the mean absolute error over channels x ERROR_GAIN, area-downscaled, as colours.

    Args:
      reference: [H, W, 3] in 16-bit units (0..65535), any dtype.
      image: [H, W, 3] in the same units.
      size: (h, w) of the map.

    Returns:
      [h, w, 3] uint8 RGB (inferno colour map; white-hot = large error).
    """
    error = np.empty(reference.shape[:2], np.float32)
    for first in range(0, len(error), metrics.BAND_ROWS):
        rows = slice(first, first + metrics.BAND_ROWS)
        error[rows] = np.abs(reference[rows].astype(np.float32) - image[rows]).mean(-1) / 65535
    small = cv2.resize(error, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    coded = np.clip(small * ERROR_GAIN * 255 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(coded, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
