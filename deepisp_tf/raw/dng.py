"""Write minimal, valid DNG files with tifffile: Bayer CFA mosaics and (for tests) LinearRaw.

The synthetic dataset (`deepisp_tf.raw.synthetic`) stores its unprocessed frames as real Bayer
DNGs, so they flow through exactly the same path as camera files: `deepisp_tf.raw.io.read_raw`
and rawpy's reference render. Files are written atomically: a temporary file in the target's
folder, then `os.replace`, so an interrupted run never leaves a half-written DNG behind.
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Sequence

import numpy as np
import tifffile

from deepisp_tf import atomic
from deepisp_tf.raw import cfa

# TIFF / DNG tag codes and values (TIFF 6.0, TIFF/EP, DNG 1.4 specifications).
_PHOTOMETRIC_CFA = 32803
_PHOTOMETRIC_LINEAR_RAW = 34892
_TAG_ORIENTATION = 274
_TAG_CFA_REPEAT_PATTERN_DIM = 33421
_TAG_CFA_PATTERN = 33422
_TAG_DNG_VERSION = 50706
_TAG_DNG_BACKWARD_VERSION = 50707
_TAG_UNIQUE_CAMERA_MODEL = 50708
_TAG_CFA_PLANE_COLOR = 50710
_TAG_CFA_LAYOUT = 50711
_TAG_BLACK_LEVEL_REPEAT_DIM = 50713
_TAG_BLACK_LEVEL = 50714
_TAG_WHITE_LEVEL = 50717
_TAG_DEFAULT_SCALE = 50718
_TAG_COLOR_MATRIX_1 = 50721
_TAG_AS_SHOT_NEUTRAL = 50728
_TAG_CALIBRATION_ILLUMINANT_1 = 50778
_ILLUMINANT_D65 = 21
_DNG_VERSION = (1, 4, 0, 0)
_DNG_BACKWARD_VERSION = (1, 1, 0, 0)
_RATIONAL_DENOMINATOR_LIMIT = 1_000_000


def _rationals(values: np.ndarray, signed: bool) -> tuple[int, ...]:
    """Return values as flat (numerator, denominator) pairs for a (S)RATIONAL tag."""
    pairs: list[int] = []
    for value in np.asarray(values, np.float64).ravel():
        if not np.isfinite(value):
            raise ValueError(f"cannot store non-finite value {value} as a rational")
        if value < 0 and not signed:
            raise ValueError(f"cannot store negative value {value} as an unsigned rational")
        fraction = Fraction(float(value)).limit_denominator(_RATIONAL_DENOMINATOR_LIMIT)
        pairs += [fraction.numerator, fraction.denominator]
    return tuple(pairs)


def _black_level_tags(black_level: float | np.ndarray) -> list[tuple]:
    """Return the BlackLevelRepeatDim and BlackLevel tags for a scalar or [2, 2] black level."""
    black = np.asarray(black_level, np.float64)
    if black.shape not in ((), (2, 2)):
        raise ValueError(f"black_level must be a scalar or a [2, 2] array, got {black.shape}")
    if np.any(black < 0):
        raise ValueError(f"black_level must be non-negative, got {black.tolist()}")
    repeat = (1, 1) if black.ndim == 0 else (2, 2)
    tags = [(_TAG_BLACK_LEVEL_REPEAT_DIM, "H", 2, repeat, True)]
    if np.all(black == np.round(black)):
        tags.append((_TAG_BLACK_LEVEL, "I", black.size, tuple(int(v) for v in black.ravel()),
                     True))
    else:
        tags.append((_TAG_BLACK_LEVEL, "2I", black.size, _rationals(black, signed=False), True))
    return tags


def _common_tags(black_level: float | np.ndarray, white_level: int,
                 xyz_to_cam: np.ndarray | None, as_shot_neutral: Sequence[float] | None,
                 make: str, model: str) -> list[tuple]:
    """Return the DNG tags shared by Bayer and LinearRaw files, validating their values.

    A None `xyz_to_cam` or `as_shot_neutral` leaves its tag out (a file without a colour
    matrix or without an as-shot white balance).
    """
    optional = []
    if xyz_to_cam is not None:
        matrix = np.asarray(xyz_to_cam, np.float64)
        if matrix.shape != (3, 3):
            raise ValueError(f"xyz_to_cam must be [3, 3], got shape {matrix.shape}")
        optional += [(_TAG_COLOR_MATRIX_1, "2i", 9, _rationals(matrix, signed=True), True),
                     (_TAG_CALIBRATION_ILLUMINANT_1, "H", 1, _ILLUMINANT_D65, True)]
    if as_shot_neutral is not None:
        neutral = np.asarray(as_shot_neutral, np.float64)
        if neutral.shape != (3,) or np.any(neutral <= 0):
            raise ValueError(
                f"as_shot_neutral must be 3 positive values, got {neutral.tolist()}")
        optional.append((_TAG_AS_SHOT_NEUTRAL, "2I", 3, _rationals(neutral, signed=False), True))
    if not 0 < int(white_level) <= 65535:
        raise ValueError(f"white_level must be in (0, 65535], got {white_level}")
    if np.max(black_level) >= white_level:
        raise ValueError(f"black_level {black_level} must be below white_level {white_level}")
    if not make or not model:
        raise ValueError("make and model must be non-empty strings")
    unique_model = model if model.startswith(make) else f"{make} {model}"
    return [
        (_TAG_ORIENTATION, "H", 1, 1, True),
        (_TAG_DNG_VERSION, "B", 4, _DNG_VERSION, True),
        (_TAG_DNG_BACKWARD_VERSION, "B", 4, _DNG_BACKWARD_VERSION, True),
        (_TAG_UNIQUE_CAMERA_MODEL, "s", 0, unique_model, True),
        *_black_level_tags(black_level),
        (_TAG_WHITE_LEVEL, "I", 1, int(white_level), True),
        *optional,
    ]


def _write_atomic(path: str | os.PathLike, data: np.ndarray, photometric: int,
                  extratags: list[tuple], make: str, model: str) -> str:
    """Write one uncompressed TIFF/DNG IFD to a temporary file, then move it to `path`."""
    with atomic.replacing(path) as temporary, \
            tifffile.TiffWriter(temporary, byteorder="<") as tif:
        tif.write(data, photometric=photometric, planarconfig="contig", subfiletype=0,
                  metadata=None, software=False, description=None,
                  extratags=[(271, "s", 0, make, True), (272, "s", 0, model, True), *extratags])
    return os.fspath(path)


def write_dng(path: str | os.PathLike, mosaic: np.ndarray, pattern: str,
              black_level: float | np.ndarray, white_level: int, xyz_to_cam: np.ndarray | None,
              as_shot_neutral: Sequence[float] | None, make: str = "deepisp_tf",
              model: str = "synthetic", default_scale: tuple[float, float] | None = None
              ) -> str:
    """Write a Bayer mosaic as an uncompressed DNG 1.4 file, atomically.

    Args:
      path: the .dng file to create (replaced if it exists).
      mosaic: [H, W] uint16 raw values, black level not subtracted.
      pattern: CFA pattern of the top-left 2x2 block, one of cfa.BAYER_PATTERNS.
      black_level: scalar, or [2, 2] per-site black level of the top-left 2x2 block.
      white_level: saturation value (at most 65535).
      xyz_to_cam: [3, 3] XYZ(D65) -> camera matrix, stored as ColorMatrix1 (illuminant D65);
        None writes no matrix.
      as_shot_neutral: [3] camera (R, G, B) response to a neutral, stored as AsShotNeutral;
        None writes no as-shot white balance.
      make: camera maker (TIFF Make).
      model: camera model (TIFF Model; UniqueCameraModel is "make model").
      default_scale: (horizontal, vertical) DefaultScale of non-square pixels (LibRaw's
        pixel aspect is horizontal / vertical); None writes square pixels.

    Returns:
      The path written.
    """
    mosaic = np.asarray(mosaic)
    if mosaic.ndim != 2 or mosaic.dtype != np.uint16:
        raise ValueError(f"mosaic must be a [H, W] uint16 array, got {mosaic.dtype} "
                         f"{mosaic.shape}")
    if min(mosaic.shape) < 2:
        raise ValueError(f"mosaic must be at least 2x2, got {mosaic.shape}")
    if int(mosaic.max()) > int(white_level):
        raise ValueError(f"mosaic maximum {int(mosaic.max())} exceeds white_level {white_level}")
    sites = tuple(int(c) for c in cfa.channel_map(pattern).ravel())  # 0=R, 1=G, 2=B
    tags = _common_tags(black_level, white_level, xyz_to_cam, as_shot_neutral, make, model)
    tags += [
        (_TAG_CFA_REPEAT_PATTERN_DIM, "H", 2, (2, 2), True),
        (_TAG_CFA_PATTERN, "B", 4, sites, True),
        (_TAG_CFA_PLANE_COLOR, "B", 3, (0, 1, 2), True),
        (_TAG_CFA_LAYOUT, "H", 1, 1, True),
    ]
    if default_scale is not None:
        scale = np.asarray(default_scale, np.float64)
        if scale.shape != (2,) or np.any(scale <= 0):
            raise ValueError(f"default_scale must be 2 positive values, got {scale.tolist()}")
        tags.append((_TAG_DEFAULT_SCALE, "2I", 2, _rationals(scale, signed=False), True))
    return _write_atomic(path, mosaic, _PHOTOMETRIC_CFA, tags, make, model)


def write_linear_dng(path: str | os.PathLike, rgb: np.ndarray, black_level: float,
                     white_level: int, xyz_to_cam: np.ndarray, as_shot_neutral: Sequence[float],
                     make: str = "deepisp_tf", model: str = "linear") -> str:
    """Write a demosaiced camera-RGB image as a LinearRaw DNG 1.4 file, atomically.

    Such files are valid DNGs but not Bayer mosaics; tests use them to prove that the readers
    reject non-Bayer data.

    Args:
      path: the .dng file to create (replaced if it exists).
      rgb: [H, W, 3] uint16 linear camera RGB, black level not subtracted.
      black_level: scalar black level.
      white_level: saturation value (at most 65535).
      xyz_to_cam: [3, 3] XYZ(D65) -> camera matrix (ColorMatrix1).
      as_shot_neutral: [3] camera response to a neutral (AsShotNeutral).
      make: camera maker.
      model: camera model.

    Returns:
      The path written.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint16:
        raise ValueError(f"rgb must be a [H, W, 3] uint16 array, got {rgb.dtype} {rgb.shape}")
    if np.ndim(black_level) != 0:
        raise ValueError("write_linear_dng takes a scalar black_level")
    tags = _common_tags(black_level, white_level, xyz_to_cam, as_shot_neutral, make, model)
    return _write_atomic(path, rgb, _PHOTOMETRIC_LINEAR_RAW, tags, make, model)
