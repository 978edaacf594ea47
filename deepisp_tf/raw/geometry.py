"""Pixel-aspect geometry: LibRaw's stretch of non-square-pixel sensors, and its inverse.

LibRaw renders cameras with non-square pixels (e.g. Nikon D1X, pixel aspect 0.5; Kodak DC120,
~1.53) by linearly resampling one axis after demosaicing. Training pairs are built in the
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


def _positions(count: int, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Return integer indices and fractions of `count` samples spaced `step` apart from 0."""
    positions = np.arange(count, dtype=np.float64) * step
    index = np.floor(positions).astype(np.int64)
    return index, positions - index


def _resample_axis(image: np.ndarray, axis: int, count: int, step: float) -> np.ndarray:
    """Linearly resample `image` along `axis` at positions 0, step, 2*step, ... (edge-clamped)."""
    index, frac = _positions(count, step)
    last = image.shape[axis] - 1
    lower = np.take(image, np.minimum(index, last), axis=axis).astype(np.float64)
    upper = np.take(image, np.minimum(index + 1, last), axis=axis).astype(np.float64)
    shape = [1] * image.ndim
    shape[axis] = count
    frac = frac.reshape(shape)
    return lower * (1 - frac) + upper * frac


def _cast_like(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    if np.issubdtype(like.dtype, np.integer):
        info = np.iinfo(like.dtype)
        return np.clip(np.floor(values + 0.5), info.min, info.max).astype(like.dtype)
    return values.astype(like.dtype)


def stretch(image: np.ndarray, pixel_aspect: float) -> np.ndarray:
    """Resample an image from mosaic geometry to LibRaw's render geometry.

    Args:
      image: [H, W, C] image in the geometry of the visible mosaic.
      pixel_aspect: LibRaw's `sizes.pixel_aspect` (1 for square pixels).

    Returns:
      [H', W', C] image with (H', W') == render_size((H, W), pixel_aspect).
    """
    if pixel_aspect == 1:
        return image
    out_h, out_w = render_size(image.shape[:2], pixel_aspect)
    if pixel_aspect < 1:
        values = _resample_axis(image, 0, out_h, pixel_aspect)
    else:
        values = _resample_axis(image, 1, out_w, 1.0 / pixel_aspect)
    return _cast_like(values, image)


def unstretch(image: np.ndarray, pixel_aspect: float, raw_size: tuple[int, int]) -> np.ndarray:
    """Resample a render back to the geometry of its visible mosaic (inverse of `stretch`).

    Exact where LibRaw's stretch kept source rows/columns (pixel aspect 1/n), linear otherwise.

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
    if pixel_aspect < 1:
        values = _resample_axis(image, 0, raw_size[0], 1.0 / pixel_aspect)
    else:
        values = _resample_axis(image, 1, raw_size[1], pixel_aspect)
    return _cast_like(values, image)
