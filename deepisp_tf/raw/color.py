"""Colour stages of the ISP in numpy: normalization + white balance, colour matrix, gamma.

Each stage is a small pure function with its inverse beside it, following what LibRaw's render
does so the classic baseline and the model's inputs match the reference render (DESIGN §2.1).
"""

from __future__ import annotations

import functools

import numpy as np

from deepisp_tf.raw import cfa

# rawpy's default output gamma: power 1/2.222 with a linear toe of slope 4.5 (BT.709).
GAMMA_POWER = 1 / 2.222
GAMMA_SLOPE = 4.5


@functools.lru_cache(maxsize=8)
def gamma_params(power: float = GAMMA_POWER,
                 slope: float = GAMMA_SLOPE) -> tuple[float, float, float]:
    """Return (toe_out, toe_in, offset) of LibRaw's `gamma_curve` for a power and toe slope.

    The toe joins the power segment with continuous value and slope; LibRaw finds the junction
    by bisection and so do we.
    """
    low, high = 0.0, 1.0
    toe_out = 0.0
    for _ in range(48):
        toe_out = (low + high) / 2
        if ((toe_out / slope) ** -power - 1) / power - 1 / toe_out > -1:
            high = toe_out
        else:
            low = toe_out
    toe_in = toe_out / slope
    offset = toe_out * (1 / power - 1)
    return toe_out, toe_in, offset


def gamma_compression(linear: np.ndarray, power: float = GAMMA_POWER,
                      slope: float = GAMMA_SLOPE) -> np.ndarray:
    """Apply LibRaw's output gamma to linear values in [0, 1] (any shape)."""
    _, toe_in, offset = gamma_params(power, slope)
    x = np.clip(np.asarray(linear, np.float64), 0.0, 1.0)
    curve = np.power(np.maximum(x, toe_in), power) * (1 + offset) - offset
    return np.where(x < toe_in, x * slope, curve)


def gamma_expansion(encoded: np.ndarray, power: float = GAMMA_POWER,
                    slope: float = GAMMA_SLOPE) -> np.ndarray:
    """Invert `gamma_compression`: encoded values in [0, 1] back to linear (any shape)."""
    toe_out, _, offset = gamma_params(power, slope)
    y = np.clip(np.asarray(encoded, np.float64), 0.0, 1.0)
    curve = np.power((np.maximum(y, toe_out) + offset) / (1 + offset), 1 / power)
    return np.where(y < toe_out, y / slope, curve)


def site_map(values_2x2: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Tile per-site values [2, 2] over a mosaic of `shape` (H, W)."""
    height, width = shape
    return np.tile(np.asarray(values_2x2), (height // 2 + 1, width // 2 + 1))[:height, :width]


def site_gains(wb_gains: np.ndarray, pattern: str) -> np.ndarray:
    """Return the [2, 2] gain per site: (R, G, B) gains [3] spread over `pattern`, or [2, 2]."""
    gains = np.asarray(wb_gains, np.float32)
    if gains.shape == (2, 2):
        return gains
    if gains.shape != (3,):
        raise ValueError(f"white-balance gains must be [3] (R, G, B) or [2, 2], got {gains.shape}")
    return gains[cfa.channel_map(pattern)]


def white_range(black_levels: np.ndarray, white_level: float) -> np.float32:
    """Return the range every site is divided by: white level minus the smallest site black.

    LibRaw's `adjust_bl()` moves the smallest per-site black into the common `black`, and
    `scale_colors()` scales every black-subtracted site by `65535 / (maximum - black)`: one
    range for all sites, not `white - black` of each site.
    """
    return np.float32(white_level) - np.float32(np.min(black_levels))


def normalize(mosaic: np.ndarray, pattern: str, black_levels: np.ndarray, white_level: float,
              wb_gains: np.ndarray) -> np.ndarray:
    """Subtract black, scale to [0, 1] and white-balance a mosaic, clipping as LibRaw does.

    `clip((mosaic - black[site]) / white_range(black_levels, white_level) * gain[site], 0, 1)`,
    LibRaw's `scale_colors()`.

    Args:
      mosaic: [H, W] raw values.
      pattern: CFA pattern of `mosaic`.
      black_levels: [2, 2] black level per site.
      white_level: saturation value.
      wb_gains: [3] (R, G, B) gains, or [2, 2] per site (LibRaw's four `pre_mul`).

    Returns:
      [H, W] float32 in [0, 1].
    """
    black = site_map(black_levels, mosaic.shape)
    gains = site_map(site_gains(wb_gains, pattern), mosaic.shape)
    scaled = (mosaic.astype(np.float32) - black) / white_range(black_levels, white_level) * gains
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def denormalize(normalized: np.ndarray, pattern: str, black_levels: np.ndarray,
                white_level: float, wb_gains: np.ndarray) -> np.ndarray:
    """Invert `normalize` (for values it did not clip): back to raw values [H, W] float32."""
    black = site_map(black_levels, normalized.shape)
    gains = site_map(site_gains(wb_gains, pattern), normalized.shape)
    return (normalized / gains * white_range(black_levels, white_level) + black
            ).astype(np.float32)


def apply_matrix(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Return `matrix @ pixel` for every pixel of an [H, W, 3] image."""
    return np.einsum("ij,hwj->hwi", np.asarray(matrix, np.float32), image.astype(np.float32))


def camera_to_srgb(rgb: np.ndarray, cam_to_srgb: np.ndarray) -> np.ndarray:
    """Map the network's gamma camera RGB [H, W, 3] to gamma sRGB [H, W, 3] float32 in [0, 1].

    `gamma_compression(clip(cam_to_srgb @ gamma_expansion(rgb), 0, 1))`: the colour matrix and
    output curve of LibRaw's render, applied to a white-balanced, demosaicked camera image
    (the reference implementation of what `deepisp_tf.model.colour` does in training and the
    runtime does with look-up tables).
    """
    linear = apply_matrix(gamma_expansion(rgb).astype(np.float32), cam_to_srgb)
    return gamma_compression(linear).astype(np.float32)
