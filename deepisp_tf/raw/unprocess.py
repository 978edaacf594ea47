"""Unprocessing (Brooks et al. 2019, "Unprocessing Images for Learned Raw Denoising") in numpy.

`unprocess` inverts a simple camera ISP step by step to turn an sRGB photo into a plausible
Bayer RAW frame, and `process` runs the same ISP forward. Each stage is a small pure function,
with its inverse beside it:

    sRGB --invert_smoothstep--> gamma-encoded --gamma_expansion--> linear sRGB
         --rgb_to_cam--> camera RGB --safe_invert_gains--> raw camera RGB --cfa.mosaic-->
         mosaic --add_noise--> noisy mosaic --scale to [black, white]--> uint16 DN

Unlike the paper (power 2.2 gamma), the gamma pair is LibRaw's BT.709 curve (power 1/2.222, toe
slope 4.5; `deepisp_tf.raw.color`), so rawpy's reference render of a synthetic DNG undoes the
expansion exactly. Camera constants come from `deepisp_tf.config`, never from these functions.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from deepisp_tf.config import CAMERA_XYZ_MATRICES, SyntheticConfig
from deepisp_tf.raw import cfa, classic, color
from deepisp_tf.raw.io import XYZ_FROM_SRGB, cam_to_srgb_from_xyz

# Brooks et al.: highlights whose mean linear value exceeds this keep their brightness when
# the white balance is inverted (so they still clip to white when it is re-applied).
_HIGHLIGHT_INFLECTION = 0.9
# Lower bound of the inverse exposure draw, so an extreme normal sample cannot flip its sign.
_MIN_INVERSE_BRIGHTNESS = 0.1


def smoothstep(image: np.ndarray) -> np.ndarray:
    """Apply the global tone curve 3x^2 - 2x^3 to values in [0, 1] (any shape)."""
    x = np.clip(np.asarray(image, np.float64), 0.0, 1.0)
    return 3.0 * x ** 2 - 2.0 * x ** 3


def invert_smoothstep(image: np.ndarray) -> np.ndarray:
    """Invert `smoothstep` on values in [0, 1] (any shape)."""
    y = np.clip(np.asarray(image, np.float64), 0.0, 1.0)
    return 0.5 - np.sin(np.arcsin(1.0 - 2.0 * y) / 3.0)


def gamma_expansion(image: np.ndarray) -> np.ndarray:
    """Linearize gamma-encoded values in [0, 1] with LibRaw's BT.709 curve (any shape)."""
    return color.gamma_expansion(image)


def gamma_compression(image: np.ndarray) -> np.ndarray:
    """Gamma-encode linear values in [0, 1] with LibRaw's BT.709 curve (any shape)."""
    return color.gamma_compression(image)


def random_xyz_to_cam(rng: np.random.Generator, names: Sequence[str]) -> np.ndarray:
    """Draw a random convex combination of the named cameras' XYZ -> camera matrices.

    Args:
      rng: random generator.
      names: keys of `deepisp_tf.config.CAMERA_XYZ_MATRICES`.

    Returns:
      [3, 3] float64 XYZ(D65) -> camera matrix.
    """
    if not names:
        raise ValueError("random_xyz_to_cam needs at least one camera name")
    unknown = [name for name in names if name not in CAMERA_XYZ_MATRICES]
    if unknown:
        raise ValueError(f"unknown cameras {unknown}; known: {sorted(CAMERA_XYZ_MATRICES)}")
    matrices = np.array([CAMERA_XYZ_MATRICES[name] for name in names], np.float64)
    weights = rng.uniform(1e-8, 1.0, size=len(names))
    weights /= weights.sum()
    return np.tensordot(weights, matrices, axes=1).reshape(3, 3)


def rgb_to_cam(xyz_to_cam: np.ndarray) -> np.ndarray:
    """Return the linear sRGB -> camera matrix [3, 3] for an XYZ -> camera matrix [3, 3].

    Rows are normalized to sum to 1 (sRGB white maps to camera white), as LibRaw does, so this
    is exactly the inverse of `deepisp_tf.raw.io.cam_to_srgb_from_xyz(xyz_to_cam)`.
    """
    matrix = np.asarray(xyz_to_cam, np.float64)
    if matrix.shape != (3, 3):
        raise ValueError(f"xyz_to_cam must be [3, 3], got shape {matrix.shape}")
    cam_from_srgb = matrix @ XYZ_FROM_SRGB
    return cam_from_srgb / cam_from_srgb.sum(axis=1, keepdims=True)


def dng_color_matrix(xyz_to_cam: np.ndarray, as_shot_neutral: np.ndarray) -> np.ndarray:
    """Scale the rows of an XYZ -> camera matrix [3, 3] so D65 white maps to `as_shot_neutral`.

    The DNG specification expects ColorMatrix1 * XYZ(D65 white) to be the camera's neutral;
    LibRaw normalizes rows, so the scaling does not change its render.
    """
    matrix = np.asarray(xyz_to_cam, np.float64)
    response = matrix @ XYZ_FROM_SRGB.sum(axis=1)
    return matrix * (np.asarray(as_shot_neutral, np.float64) / response)[:, None]


def random_gains(rng: np.random.Generator, config: SyntheticConfig) -> tuple[float, np.ndarray]:
    """Draw an exposure gain and white-balance gains.

    Args:
      rng: random generator.
      config: gain ranges (`red_gain_range`, `blue_gain_range`, `exposure_gain_*`).

    Returns:
      (brightness_gain, wb_gains): the overall gain the ISP would apply (1 / N(mean, std), the
      paper's `rgb_gain`) and [3] (R, 1, B) white-balance gains.
    """
    for name in ("red_gain_range", "blue_gain_range"):
        low, high = getattr(config, name)
        if not 1.0 <= low <= high:
            raise ValueError(f"SyntheticConfig.{name} must satisfy 1 <= low <= high (green is the "
                             f"reference channel, gain 1), got {(low, high)}")
    if config.exposure_gain_mean <= 0 or config.exposure_gain_std < 0:
        raise ValueError("SyntheticConfig.exposure_gain_mean must be positive and "
                         "exposure_gain_std non-negative")
    inverse = rng.normal(config.exposure_gain_mean, config.exposure_gain_std)
    brightness_gain = 1.0 / max(float(inverse), _MIN_INVERSE_BRIGHTNESS)
    red = rng.uniform(*config.red_gain_range)
    blue = rng.uniform(*config.blue_gain_range)
    return brightness_gain, np.array([red, 1.0, blue])


def apply_gains(image: np.ndarray, wb_gains: np.ndarray) -> np.ndarray:
    """Multiply each channel of an [H, W, 3] image by its white-balance gain [3]."""
    return np.asarray(image, np.float64) * np.asarray(wb_gains, np.float64)


def safe_invert_gains(image: np.ndarray, wb_gains: np.ndarray,
                      brightness_gain: float) -> np.ndarray:
    """Undo white balance and exposure on linear camera RGB, preserving highlights.

    Pixels whose mean exceeds 0.9 are blended toward gain 1 (quadratically up to mean 1), so
    saturated highlights stay bright and clip to white, not to a tint, when white balance is
    applied again (Brooks et al. 2019, section 3.2).

    Args:
      image: [H, W, 3] linear camera RGB in [0, 1].
      wb_gains: [3] (R, G, B) white-balance gains.
      brightness_gain: the overall gain to undo.

    Returns:
      [H, W, 3] float64 raw camera RGB.
    """
    gains = 1.0 / (np.asarray(wb_gains, np.float64) * brightness_gain)
    image = np.asarray(image, np.float64)
    gray = image.mean(axis=-1, keepdims=True)
    mask = (np.maximum(gray - _HIGHLIGHT_INFLECTION, 0.0) / (1.0 - _HIGHLIGHT_INFLECTION)) ** 2
    safe_gains = np.maximum(mask + (1.0 - mask) * gains, gains)
    return image * safe_gains


def random_noise_levels(rng: np.random.Generator, config: SyntheticConfig) -> tuple[float, float]:
    """Draw (shot, read) noise levels: log-uniform shot, log-linear read with Gaussian scatter.

    Args:
      rng: random generator.
      config: `log_shot_noise_range` and the `read_noise_*` line and scatter.

    Returns:
      (shot, read): variance of a pixel of value x (fraction of the sensor's range) is
      `x * shot + read`.
    """
    low, high = config.log_shot_noise_range
    if low > high:
        raise ValueError(f"SyntheticConfig.log_shot_noise_range must be (low, high), got "
                         f"{(low, high)}")
    log_shot = rng.uniform(low, high)
    log_read = (config.read_noise_slope * log_shot + config.read_noise_intercept
                + rng.normal(0.0, config.read_noise_std))
    return float(np.exp(log_shot)), float(np.exp(log_read))


def add_noise(rng: np.random.Generator, linear: np.ndarray, shot: float,
              read: float) -> np.ndarray:
    """Add heteroscedastic Gaussian noise of variance `linear * shot + read`.

    Args:
      rng: random generator.
      linear: [H, W] (or any shape) linear values, fractions of the sensor's range.
      shot: shot-noise factor (variance per unit signal).
      read: read-noise variance.

    Returns:
      float64 array of the same shape (not clipped).
    """
    if shot < 0 or read < 0:
        raise ValueError(f"noise levels must be non-negative, got shot={shot}, read={read}")
    linear = np.asarray(linear, np.float64)
    variance = np.maximum(linear, 0.0) * shot + read
    return linear + rng.normal(size=linear.shape) * np.sqrt(variance)


def unprocess(srgb: np.ndarray, rng: np.random.Generator, config: SyntheticConfig,
              pattern: str, *, noise: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """Turn an sRGB photo into a Bayer RAW mosaic with random camera, white balance and noise.

    Args:
      srgb: [H, W, 3] sRGB image, float in [0, 1].
      rng: random generator (the only source of randomness).
      config: camera, gain, level and noise ranges.
      pattern: CFA pattern of the output, one of cfa.BAYER_PATTERNS.
      noise: add shot and read noise (levels are drawn either way).

    Returns:
      (mosaic, metadata): [H, W] uint16 mosaic, black level included, and a dict with
      black_level (int), white_level (int), xyz_to_cam ([3, 3], DNG ColorMatrix1),
      as_shot_neutral ([3]), pattern, wb_gains ([3] R, G, B), brightness_gain,
      shot_noise and read_noise.
    """
    pattern = cfa.validate_pattern(pattern)
    srgb = np.asarray(srgb, np.float64)
    if srgb.ndim != 3 or srgb.shape[2] != 3:
        raise ValueError(f"srgb must be [H, W, 3], got shape {srgb.shape}")
    if srgb.min() < 0.0 or srgb.max() > 1.0:
        raise ValueError(f"srgb must lie in [0, 1], got [{srgb.min()}, {srgb.max()}]")
    black_low, black_high = config.black_level_range
    if not 0 <= black_low <= black_high < config.white_level <= 65535:
        raise ValueError(f"need 0 <= black_level_range {config.black_level_range} < white_level "
                         f"{config.white_level} <= 65535")
    xyz_to_cam = random_xyz_to_cam(rng, config.camera_matrices)
    brightness_gain, wb_gains = random_gains(rng, config)
    shot, read = random_noise_levels(rng, config)
    black_level = int(rng.integers(black_low, black_high + 1))

    linear = gamma_expansion(invert_smoothstep(srgb))
    camera = color.apply_matrix(linear, rgb_to_cam(xyz_to_cam)).astype(np.float64)
    raw = safe_invert_gains(np.maximum(camera, 0.0), wb_gains, brightness_gain)
    bayer = cfa.mosaic(raw, pattern)
    if noise:
        bayer = add_noise(rng, bayer, shot, read)
    values = np.round(bayer * (config.white_level - black_level) + black_level)
    mosaic = np.clip(values, 0, config.white_level).astype(np.uint16)

    as_shot_neutral = 1.0 / wb_gains
    metadata = {
        "black_level": black_level,
        "white_level": int(config.white_level),
        "xyz_to_cam": dng_color_matrix(xyz_to_cam, as_shot_neutral),
        "as_shot_neutral": as_shot_neutral,
        "pattern": pattern,
        "wb_gains": wb_gains,
        "brightness_gain": brightness_gain,
        "shot_noise": shot,
        "read_noise": read,
    }
    return mosaic, metadata


def process(mosaic: np.ndarray, metadata: dict[str, Any],
            demosaic_method: str = "bilinear") -> np.ndarray:
    """Render a mosaic with the simple ISP that `unprocess` inverts (no exposure gain).

    Steps: black/white normalization and white balance (gains = 1 / as_shot_neutral, min 1, as
    LibRaw), demosaic, camera -> sRGB, gamma compression, smoothstep tone curve.

    Args:
      mosaic: [H, W] raw values, black level included.
      metadata: pattern, black_level, white_level, xyz_to_cam, as_shot_neutral (as returned by
        `unprocess`).
      demosaic_method: a `deepisp_tf.raw.classic.demosaic` method.

    Returns:
      [H, W, 3] float64 sRGB in [0, 1].
    """
    pattern = cfa.validate_pattern(metadata["pattern"])
    black = np.broadcast_to(np.asarray(metadata["black_level"], np.float64), (2, 2))
    wb_gains = 1.0 / np.asarray(metadata["as_shot_neutral"], np.float64)
    wb_gains /= wb_gains.min()
    normalized = color.normalize(mosaic, pattern, black, float(metadata["white_level"]),
                                 wb_gains)
    rggb, padding = cfa.canonicalize(normalized, pattern)
    camera = cfa.decanonicalize(classic.demosaic(rggb, demosaic_method), padding)
    srgb_linear = color.apply_matrix(camera, cam_to_srgb_from_xyz(metadata["xyz_to_cam"]))
    return smoothstep(gamma_compression(np.clip(srgb_linear, 0.0, 1.0)))
