"""Bayer CFA patterns: canonicalization to RGGB, mosaic / unmosaic, pack / unpack.

Every function is pure numpy. A pattern is a 4-letter string read row-major from the top-left
2x2 block of the mosaic ("RGGB", "BGGR", "GRBG", "GBRG"). The network only ever sees RGGB:
other patterns are padded by one mirrored row and/or column (`canonicalize`), which shifts the
red site to the origin without changing orientation, and `decanonicalize` crops the result back.
"""

from __future__ import annotations

import numpy as np

BAYER_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
_CHANNEL = {"R": 0, "G": 1, "B": 2}


def validate_pattern(pattern: str) -> str:
    """Return `pattern` upper-cased, or raise ValueError if it is not a Bayer pattern."""
    upper = str(pattern).upper()
    if upper not in BAYER_PATTERNS:
        raise ValueError(f"not a Bayer pattern: {pattern!r} (expected one of {BAYER_PATTERNS})")
    return upper


def channel_map(pattern: str) -> np.ndarray:
    """Return the colour channel (0=R, 1=G, 2=B) of each site of the 2x2 block, shape [2, 2]."""
    pattern = validate_pattern(pattern)
    return np.array([_CHANNEL[c] for c in pattern], dtype=np.int64).reshape(2, 2)


def red_offset(pattern: str) -> tuple[int, int]:
    """Return (row, col) of the red site in the top-left 2x2 block of `pattern`."""
    index = validate_pattern(pattern).index("R")
    return index // 2, index % 2


def shift_pattern(pattern: str, dy: int, dx: int) -> str:
    """Return the pattern of `mosaic[dy:, dx:]` given the pattern of `mosaic`."""
    grid = np.array(list(validate_pattern(pattern))).reshape(2, 2)
    return "".join(np.roll(grid, (-dy, -dx), axis=(0, 1)).ravel())


def roll_sites(values: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Re-index per-site values [2, 2] for the mosaic cropped by (dy, dx) at its top-left."""
    return np.roll(np.asarray(values), (-dy, -dx), axis=(0, 1))


def canonicalize(mosaic: np.ndarray, pattern: str) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Pad a Bayer mosaic so it starts with a red site and has even height and width.

    Padding mirrors rows/columns about the edge (numpy 'reflect'), which keeps the CFA phase:
    the mirrored row -1 is row 1, of the same colour as row -1 would be.

    Args:
      mosaic: [H, W] or [H, W, C] array whose first two axes follow `pattern`.
      pattern: one of BAYER_PATTERNS.

    Returns:
      (rggb, padding): the [H', W'(, C)] RGGB mosaic with H', W' even, and
      padding = (top, left, H, W) for `decanonicalize`.
    """
    top, left = red_offset(pattern)
    height, width = mosaic.shape[:2]
    if height < 3 or width < 3:
        raise ValueError(f"mosaic too small to canonicalize: {mosaic.shape}")
    bottom = (height + top) % 2
    right = (width + left) % 2
    pad = [(top, bottom), (left, right)] + [(0, 0)] * (mosaic.ndim - 2)
    return np.pad(mosaic, pad, mode="reflect"), (top, left, height, width)


def decanonicalize(image: np.ndarray, padding: tuple[int, int, int, int]) -> np.ndarray:
    """Crop an image computed on a canonicalized mosaic back to the original geometry.

    Args:
      image: [H', W', ...] array in the canonical geometry.
      padding: the tuple returned by `canonicalize`.

    Returns:
      [H, W, ...] array aligned with the original mosaic.
    """
    top, left, height, width = padding
    return image[top:top + height, left:left + width]


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """Sample a full-colour image through a Bayer CFA.

    Args:
      rgb: [H, W, 3] image.
      pattern: one of BAYER_PATTERNS.

    Returns:
      [H, W] mosaic with the dtype of `rgb`.
    """
    channels = channel_map(pattern)
    height, width = rgb.shape[:2]
    index = np.tile(channels, ((height + 1) // 2, (width + 1) // 2))[:height, :width]
    return np.take_along_axis(rgb, index[..., None], axis=2)[..., 0]


def unmosaic(bayer: np.ndarray, pattern: str) -> np.ndarray:
    """Spread a Bayer mosaic into a sparse [H, W, 3] image (zeros where a colour is not sampled).

    The inverse of `mosaic` on the sampled sites: `mosaic(unmosaic(m, p), p) == m`.

    Args:
      bayer: [H, W] mosaic.
      pattern: one of BAYER_PATTERNS.

    Returns:
      [H, W, 3] array with the dtype of `bayer`.
    """
    channels = channel_map(pattern)
    height, width = bayer.shape
    index = np.tile(channels, ((height + 1) // 2, (width + 1) // 2))[:height, :width]
    out = np.zeros((height, width, 3), dtype=bayer.dtype)
    np.put_along_axis(out, index[..., None], bayer[..., None], axis=2)
    return out


def pack(rggb: np.ndarray) -> np.ndarray:
    """Pack an RGGB mosaic into four half-resolution planes (R, G1, G2, B).

    Args:
      rggb: [H, W] mosaic, H and W even, red at the origin.

    Returns:
      [H/2, W/2, 4] array.
    """
    height, width = rggb.shape
    if height % 2 or width % 2:
        raise ValueError(f"pack needs even height and width, got {rggb.shape}")
    blocks = rggb.reshape(height // 2, 2, width // 2, 2)
    return blocks.transpose(0, 2, 1, 3).reshape(height // 2, width // 2, 4)


def unpack(planes: np.ndarray) -> np.ndarray:
    """Interleave four half-resolution planes (R, G1, G2, B) back into an RGGB mosaic.

    Args:
      planes: [H/2, W/2, 4] array.

    Returns:
      [H, W] mosaic, the inverse of `pack`.
    """
    half_h, half_w, depth = planes.shape
    if depth != 4:
        raise ValueError(f"unpack needs 4 planes, got shape {planes.shape}")
    blocks = planes.reshape(half_h, half_w, 2, 2).transpose(0, 2, 1, 3)
    return blocks.reshape(half_h * 2, half_w * 2)
