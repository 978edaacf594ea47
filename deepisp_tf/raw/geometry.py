"""Pixel-aspect geometry: LibRaw's stretch of non-square-pixel sensors, and its inverse.

LibRaw renders cameras with non-square pixels (e.g. Nikon D1X, pixel aspect 0.5; Kodak DC120,
~1.53) by repeating lines of one axis after colour conversion. Training pairs are built in the
mosaic's own geometry (`unstretch` the reference), and inference maps the network's output back
to the reference render's geometry with `stretch`, following LibRaw's `stretch()` exactly.
"""

from __future__ import annotations

import numpy as np


def render_size(raw_size: tuple[int, int], pixel_aspect: float) -> tuple[int, int]:
    """Return the (height, width) of LibRaw's render of a [H, W] visible mosaic."""
    height, width = raw_size
    if pixel_aspect < 1:
        return int(height / pixel_aspect + 0.5), width
    if pixel_aspect > 1:
        return height, int(width * pixel_aspect + 0.5)
    return height, width


def stretch_sources(count: int, pixel_aspect: float) -> np.ndarray:
    """Return the source line [N] int64 of each line of LibRaw's stretched axis.

    LibRaw's `stretch()` walks the stretched axis with `rc += pixel_aspect` (rows, aspect < 1) or
    `rc += 1 / pixel_aspect` (columns, aspect > 1), a running double sum, and reads source line
    `(int) rc` (the last line's neighbour clamped). Its blend weight `rc - (int) rc` does not
    reach the output of rawpy 0.28 / LibRaw 0.22 renders (measured: D1X output rows 2k and
    2k + 1 are both source row k, and the DC120's columns repeat likewise), so each output line is
    a copy of source line `(int) rc`, which this returns.

    Args:
      count: number of lines of the stretched output (`render_size` along the axis).
      pixel_aspect: LibRaw's `sizes.pixel_aspect` (!= 1).

    Returns:
      [count] source indices, non-decreasing, starting at 0.
    """
    step = pixel_aspect if pixel_aspect < 1 else 1.0 / pixel_aspect
    steps = np.full(count, step, np.float64)
    steps[0] = 0.0
    return np.floor(np.add.accumulate(steps)).astype(np.int64)


def _axis(pixel_aspect: float) -> int:
    """Return the axis LibRaw stretches: rows (0) below aspect 1, columns (1) above."""
    return 0 if pixel_aspect < 1 else 1


def stretch(image: np.ndarray, pixel_aspect: float) -> np.ndarray:
    """Resample an image from mosaic geometry to LibRaw's render geometry (`stretch()`).

    Each output line copies source line `stretch_sources(...)`, so the stretch commutes with
    every per-pixel stage (colour matrix, gamma) and with the dtype.

    Args:
      image: [H, W, C] image in the geometry of the visible mosaic.
      pixel_aspect: LibRaw's `sizes.pixel_aspect` (1 for square pixels).

    Returns:
      [H', W', C] image with (H', W') == render_size((H, W), pixel_aspect).
    """
    if pixel_aspect == 1:
        return image
    axis = _axis(pixel_aspect)
    count = render_size(image.shape[:2], pixel_aspect)[axis]
    sources = np.minimum(stretch_sources(count, pixel_aspect), image.shape[axis] - 1)
    return np.take(image, sources, axis=axis)


def unstretch(image: np.ndarray, pixel_aspect: float, raw_size: tuple[int, int]) -> np.ndarray:
    """Resample a render back to the geometry of its visible mosaic (inverse of `stretch`).

    Source line k is the first output line `stretch` copied from it, so
    `unstretch(stretch(x)) == x` exactly; a line `stretch` skipped (possible only if the
    stretched axis had fewer lines than the source) takes the next output line.

    Args:
      image: [H', W', C] render.
      pixel_aspect: LibRaw's `sizes.pixel_aspect`.
      raw_size: (H, W) of the visible mosaic.

    Returns:
      [H, W, C] image aligned with the mosaic.
    """
    if pixel_aspect == 1:
        return image
    if tuple(image.shape[:2]) != render_size(raw_size, pixel_aspect):
        raise ValueError(
            f"render of shape {image.shape[:2]} does not match raw size {raw_size} at pixel "
            f"aspect {pixel_aspect}")
    axis = _axis(pixel_aspect)
    sources = stretch_sources(image.shape[axis], pixel_aspect)
    first = np.searchsorted(sources, np.arange(raw_size[axis]), side="left")
    first = np.minimum(first, image.shape[axis] - 1)
    return np.take(image, first, axis=axis)
