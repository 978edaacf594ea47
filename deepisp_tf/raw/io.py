"""Read Bayer RAW files (anything LibRaw decodes) and render the reference image.

`read_raw` returns one `RawRecord` with everything the model and the classic pipelines need: the
visible mosaic, its CFA pattern, black and white levels, the white balance and camera->sRGB
matrix that rawpy's reference render applies, the pixel aspect, and the render's size. Every
failure (unknown format, truncated or corrupt file, non-Bayer sensor) is a `RawReadError` that
names the file and the reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any

import numpy as np

from deepisp_tf.config import REFERENCE_RENDER_SETTINGS
from deepisp_tf.raw import cfa, color, geometry

# sRGB (D65) -> XYZ, as LibRaw's `xyz_rgb`: used to turn a camera's XYZ->camera matrix into the
# camera->sRGB matrix LibRaw applies.
XYZ_FROM_SRGB = np.array([[0.412453, 0.357580, 0.180423],
                          [0.212671, 0.715160, 0.072169],
                          [0.019334, 0.119193, 0.950227]])


class RawReadError(Exception):
    """A RAW file could not be used; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # crosses process boundaries (prepare's worker pool) intact
        return type(self), (self.path, self.reason)


@dataclasses.dataclass(frozen=True)
class RawRecord:
    """One decoded RAW file.

    Attributes:
      path: the file read.
      mosaic: [H, W] uint16 visible mosaic, black level not subtracted.
      pattern: CFA pattern of the mosaic's top-left 2x2 block, e.g. "GRBG".
      black_levels: [2, 2] float32 black level of each site of the top-left 2x2 block.
      white_level: the saturation value LibRaw scales by (see `effective_white_level`).
      wb_gains: [3] float32 (R, G, B) white-balance gains of the reference render, min = 1:
        linear camera RGB = clip((mosaic - black) / (white - black) * gain, 0, 1).
      wb_source: "as_shot" (the file's) or "auto" (LibRaw's grey world, for files without).
      cam_to_srgb: [3, 3] float32 matrix from white-balanced camera RGB to linear sRGB.
      pixel_aspect: LibRaw's pixel aspect (1 for square pixels).
      render_size: (height, width) of the reference render.
      camera: camera name when the file says it, else a sensor signature.
      site_gains: [2, 2] float32 white-balance gain of each site of the top-left 2x2 block
        (LibRaw balances its two greens separately: `scale_colors()` keeps four `pre_mul`);
        None means `wb_gains` spread over the pattern (both greens `wb_gains[1]`).
    """

    path: str
    mosaic: np.ndarray
    pattern: str
    black_levels: np.ndarray
    white_level: float
    wb_gains: np.ndarray
    wb_source: str
    cam_to_srgb: np.ndarray
    pixel_aspect: float
    render_size: tuple[int, int]
    camera: str
    site_gains: np.ndarray | None = None

    @property
    def gains_2x2(self) -> np.ndarray:
        """[2, 2] float32 gain of each site of the top-left block (`site_gains` or wb_gains)."""
        if self.site_gains is not None:
            return np.asarray(self.site_gains, np.float32)
        return np.asarray(self.wb_gains, np.float32)[cfa.channel_map(self.pattern)]

    @property
    def raw_size(self) -> tuple[int, int]:
        return tuple(self.mosaic.shape[:2])

    def metadata(self) -> dict[str, Any]:
        """Return the JSON-friendly metadata (everything except the mosaic)."""
        return {
            "pattern": self.pattern,
            "black_levels": self.black_levels.tolist(),
            "white_level": float(self.white_level),
            "wb_gains": self.wb_gains.tolist(),
            "wb_source": self.wb_source,
            "site_gains": self.gains_2x2.tolist(),
            "cam_to_srgb": self.cam_to_srgb.tolist(),
            "pixel_aspect": float(self.pixel_aspect),
            "raw_size": list(self.raw_size),
            "render_size": list(self.render_size),
            "camera": self.camera,
        }


def cam_to_srgb_from_xyz(xyz_to_cam: np.ndarray) -> np.ndarray:
    """Return LibRaw's camera->sRGB matrix [3, 3] for an XYZ->camera matrix [3, 3].

    Rows of camera<-sRGB are normalized so sRGB white maps to camera white, then inverted.
    """
    cam_from_srgb = np.asarray(xyz_to_cam, np.float64) @ XYZ_FROM_SRGB
    cam_from_srgb = cam_from_srgb / cam_from_srgb.sum(axis=1, keepdims=True)
    return np.linalg.pinv(cam_from_srgb)


def effective_white_level(mosaic: np.ndarray, white_level: float, threshold: float = 0.75,
                          black_levels: np.ndarray | None = None) -> float:
    """Return the white level LibRaw scales by: its `adjust_maximum()` rule.

    LibRaw subtracts each site's black while copying the mosaic (`raw2image_ex()`, after
    `adjust_bl()` moved the smallest site black into the common `black`), records the largest
    result (`data_maximum`) and lowers `maximum - black` to it when it lies strictly between
    `threshold` times that range and the range (rawpy's default `adjust_maximum_thr` is 0.75).
    Returned in raw units: the common black plus the range used.

    Args:
      mosaic: [H, W] raw values.
      white_level: the file's saturation value.
      threshold: `adjust_maximum_thr` (0 disables the rule).
      black_levels: [2, 2] black per site (None: zero).

    Returns:
      The effective white level.
    """
    black = np.zeros((2, 2)) if black_levels is None else np.asarray(black_levels, np.float64)
    if not mosaic.size or threshold < 1e-5:
        return float(white_level)
    data_max = max(float(site.max()) - float(black[row, col])  # per site: no full-frame copy
                   for row in range(2) for col in range(2)
                   if (site := mosaic[row::2, col::2]).size)
    span = float(white_level) - float(black.min())
    if 0 < data_max < span and data_max > threshold * span:
        return float(black.min()) + data_max
    return float(white_level)


def grey_world_gains(mosaic: np.ndarray, pattern: str, black_levels: np.ndarray,
                     white_level: float, block: int = 8) -> np.ndarray:
    """Return LibRaw's automatic white balance: a gain per site of the 2x2 block, min = 1.

    Follows LibRaw's `scale_colors()` (use_auto_wb, or use_camera_wb without an as-shot
    balance): over `block`x`block` blocks, skipping every block holding a raw value above
    `white_level - 25`, sum `max(value - black, 0)` and count the sites of each of the four
    CFA colours (the two greens are separate colours there), take `pre_mul = count / sum`, and
    divide by the smallest of the four (highlight mode "clip").

    Args:
      mosaic: [H, W] raw mosaic, black not subtracted.
      pattern: its CFA pattern (only validated: the statistic is per site).
      black_levels: [2, 2] black level per site.
      white_level: effective white level (LibRaw's `maximum`).
      block: block size of the statistic.

    Returns:
      [2, 2] float32 gains of the sites of the top-left block.
    """
    cfa.validate_pattern(pattern)
    height, width = mosaic.shape
    signed = mosaic - color.site_map(black_levels, mosaic.shape)
    values = np.maximum(signed, 0.0)
    blocks_y, blocks_x = -(-height // block), -(-width // block)
    pad = ((0, blocks_y * block - height), (0, blocks_x * block - width))
    span = float(white_level) - float(np.min(black_levels))
    saturated = np.pad(signed > span - 25, pad).reshape(
        blocks_y, block, blocks_x, block).any(axis=(1, 3))
    keep = np.repeat(np.repeat(~saturated, block, 0), block, 1)[:height, :width]
    gains = np.ones((2, 2))
    for row in range(2):
        for col in range(2):
            selected = keep[row::2, col::2]
            total = values[row::2, col::2][selected].sum()
            if total > 0:
                gains[row, col] = selected.sum() / total
    return (gains / gains.min()).astype(np.float32)


def _colour_gains(site_gains: np.ndarray, pattern: str) -> np.ndarray:
    """Return (R, G, B) gains [3] of per-site gains [2, 2]: G is the red row's green."""
    channels = cfa.channel_map(pattern)
    red_row = cfa.red_offset(pattern)[0]
    green = site_gains[red_row][channels[red_row] == 1][0]
    return np.array([site_gains[channels == 0][0], green, site_gains[channels == 2][0]],
                    np.float32)


def _white_balance(raw: Any, mosaic: np.ndarray, pattern: str, black: np.ndarray,
                   white: float) -> tuple[np.ndarray, str]:
    """Return the per-site gains [2, 2], min = 1, that rawpy's use_camera_wb render applies.

    LibRaw's `scale_colors()`: an as-shot `cam_mul` whose first value is positive becomes
    `pre_mul` (a missing fourth value copies the second, the other green); otherwise the
    automatic white balance (`grey_world_gains`). Gains are divided by the smallest of the four.
    """
    as_shot = np.asarray(raw.camera_whitebalance, np.float64)[:4].copy()
    if as_shot[0] > 1e-5 and as_shot[2] > 0:
        as_shot[1] = as_shot[1] or 1.0  # scale_colors(): `if (pre_mul[1] == 0) pre_mul[1] = 1`
        as_shot[3] = as_shot[3] or as_shot[1]
        site = as_shot[np.asarray(raw.raw_pattern)]
        return (site / site.min()).astype(np.float32), "as_shot"
    return grey_world_gains(mosaic, pattern, black, white), "auto"


# LibRaw's `parse_tiff_ifd()` reads this "old Kodak KDC tag" straight into `rgb_cam` (and sets
# `raw_color = 0`): 3 rows of 4 SRATIONALs, the first of each row skipped. rawpy does not show it.
KODAK_RGB_CAM_TAG = 37400


def _tiff_rgb_cam(path: str) -> np.ndarray | None:
    """Return the [3, 3] `rgb_cam` of a TIFF-based file's Kodak tag 37400, or None."""
    try:
        import tifffile  # pylint: disable=import-outside-toplevel
        with tifffile.TiffFile(path) as tif:
            for page in tif.pages:
                for ifd in [page] + list(page.pages or []):
                    if KODAK_RGB_CAM_TAG in ifd.tags:
                        values = np.asarray(ifd.tags[KODAK_RGB_CAM_TAG].value, np.float64)
                        if values.size == 24:  # rationals as (numerator, denominator) pairs
                            values = values[0::2] / np.where(values[1::2] == 0, 1, values[1::2])
                        if values.size == 12:
                            return values.reshape(3, 4)[:, 1:]
    except Exception:  # pylint: disable=broad-except  # not a TIFF container, or no such tag
        return None
    return None


def _colour_matrix(path: str, raw: Any) -> np.ndarray:
    """Return the camera->sRGB matrix LibRaw's `convert_to_rgb()` applies.

    In LibRaw's order: the XYZ->camera matrix (`cam_xyz_coeff()`, from the file or its
    `adobe_coeff()` table), else a camera->sRGB `cmatrix`, else Kodak's tag 37400 `rgb_cam`
    (which rawpy does not expose), else identity (`raw_color`: no conversion).
    """
    xyz_to_cam = np.asarray(raw.rgb_xyz_matrix, np.float64)[:3]
    if np.any(xyz_to_cam):
        return cam_to_srgb_from_xyz(xyz_to_cam).astype(np.float32)
    matrix = np.asarray(raw.color_matrix, np.float64)[:, :3]
    if np.any(matrix):
        return matrix.astype(np.float32)
    rgb_cam = _tiff_rgb_cam(path)
    if rgb_cam is not None and np.any(rgb_cam):
        return rgb_cam.astype(np.float32)
    return np.eye(3, dtype=np.float32)


def _camera_name(path: str, raw: Any) -> str:
    """Return 'Make Model' from TIFF tags when present, else a stable sensor signature."""
    try:
        import tifffile  # pylint: disable=import-outside-toplevel
        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            make = str(tags["Make"].value).strip() if "Make" in tags else ""
            model = str(tags["Model"].value).strip() if "Model" in tags else ""
        name = model if make and model.startswith(make) else f"{make} {model}".strip()
        if name:
            return name
    except Exception:  # pylint: disable=broad-except  # not a TIFF container: use the signature
        pass
    signature = hashlib.sha1(repr((
        raw.raw_image_visible.shape, bytes(raw.raw_pattern.tobytes()),
        tuple(raw.black_level_per_channel), raw.white_level,
        np.round(np.asarray(raw.rgb_xyz_matrix), 4).tobytes())).encode()).hexdigest()[:8]
    return f"sensor-{signature}"


def _record(path: str, raw: Any) -> RawRecord:
    """Build a RawRecord from an open rawpy object, rejecting non-Bayer sensors."""
    if raw.raw_type != _rawpy().RawType.Flat:
        raise RawReadError(path, "not a Bayer sensor (linear/demosaiced or layered raw data)")
    pattern_index = raw.raw_pattern
    desc = raw.color_desc.decode("ascii", "replace")
    if pattern_index is None or pattern_index.shape != (2, 2) or raw.num_colors != 3:
        shape = None if pattern_index is None else pattern_index.shape
        raise RawReadError(path, f"not a Bayer sensor (CFA pattern {shape}, colours {desc!r})")
    pattern = "".join(desc[i] for i in pattern_index.ravel()).upper()
    if sorted(pattern) != ["B", "G", "G", "R"]:
        raise RawReadError(path, f"unsupported CFA {pattern!r} (colours {desc!r})")
    mosaic = np.array(raw.raw_image_visible, dtype=np.uint16, copy=True)
    black = np.asarray(raw.black_level_per_channel, np.float32)[pattern_index]
    white = effective_white_level(mosaic, float(raw.white_level), black_levels=black)
    if white <= float(black.max()):
        raise RawReadError(path, f"white level {white} is not above black level {black.max()}")
    site_gains, wb_source = _white_balance(raw, mosaic, pattern, black, white)
    aspect = float(raw.sizes.pixel_aspect) or 1.0
    return RawRecord(
        path=path, mosaic=mosaic, pattern=cfa.validate_pattern(pattern), black_levels=black,
        white_level=white, wb_gains=_colour_gains(site_gains, pattern), wb_source=wb_source,
        cam_to_srgb=_colour_matrix(path, raw), pixel_aspect=aspect,
        render_size=geometry.render_size(mosaic.shape, aspect), camera=_camera_name(path, raw),
        site_gains=site_gains)


def _rawpy() -> Any:
    import rawpy  # pylint: disable=import-outside-toplevel  # keeps `import deepisp_tf` light
    return rawpy


def read_raw(path: str | os.PathLike, *, with_reference: bool = False,
             render_settings: dict[str, Any] | None = None
             ) -> RawRecord | tuple[RawRecord, np.ndarray]:
    """Decode a RAW file into a RawRecord, optionally with its reference render.

    Args:
      path: any RAW file LibRaw supports.
      with_reference: also return the reference render ([H', W', 3] uint16, DESIGN §2.1).
      render_settings: overrides of the reference settings (for baselines such as LINEAR).

    Returns:
      The record, or (record, reference) when `with_reference`.

    Raises:
      RawReadError: the file is missing, not a RAW file, corrupt, truncated, or not Bayer.
    """
    path = os.fspath(path)
    rawpy = _rawpy()
    if not os.path.isfile(path):
        raise RawReadError(path, "no such file")
    try:
        with rawpy.imread(path) as raw:
            record = _record(path, raw)
            if not with_reference:
                return record
            reference = raw.postprocess(**{**REFERENCE_RENDER_SETTINGS, **(render_settings or {})})
    except RawReadError:
        raise
    except rawpy.LibRawFileUnsupportedError as error:
        raise RawReadError(path, f"unsupported or unknown file format ({error})") from None
    except (rawpy.LibRawError, OSError, ValueError, MemoryError) as error:
        raise RawReadError(path, f"corrupt or truncated file ({type(error).__name__}: {error})"
                           ) from None
    if tuple(reference.shape[:2]) != record.render_size:
        raise RawReadError(path, f"reference render is {reference.shape[:2]}, expected "
                                 f"{record.render_size} from the pixel aspect")
    return record, reference


def reference_render(path: str | os.PathLike, **overrides: Any) -> np.ndarray:
    """Return the reference render [H', W', 3] uint16 of a RAW file (DESIGN §2.1)."""
    return read_raw(path, with_reference=True, render_settings=overrides)[1]


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
