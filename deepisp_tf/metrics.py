"""Image quality metrics, exactly as DESIGN.md §2.3 (and PyNET's protocol for Zurich RAW-to-RGB).

DESIGN §2.3: images as float in [0, 1] (16-bit values / 65535), an 8-pixel border cropped on
every side; PSNR = 10·log10(1 / MSE) over all pixels and channels of one image; SSIM =
`skimage.metrics.structural_similarity` with its defaults, `channel_axis=2`, `data_range=1.0`;
a set's figure is the mean over its images. PyNET's protocol (ZRR) is the same on whole 448x448
patches: no border crop, max value 1.0.

Both metrics run over bands of rows, so a 100-MP frame never needs a full-frame float64 copy;
the banded SSIM equals skimage's whole-image value (the 7x7 window never reaches past a band's
halo, and skimage averages only pixels at least 3 from the edges). Numpy and skimage only: no
TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Iterator

import numpy as np
from skimage.metrics import structural_similarity

BORDER = 8
SSIM_WINDOW = 7          # skimage's default win_size (uniform window, gaussian_weights=False)
BAND_ROWS = 256          # rows per band: memory ~ BAND_ROWS x W x C x 8 bytes x ~12 arrays


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How images are compared.

    Attributes:
      name: label written in reports.
      border: pixels cropped on every side before scoring.
      description: what the protocol is, for reports.
    """

    name: str
    border: int
    description: str


DESIGN = Protocol(
    name="design_2.3", border=BORDER,
    description=("DESIGN.md §2.3: 16-bit values / 65535 in [0, 1], 8-pixel border cropped; "
                 "PSNR = 10·log10(1 / MSE) per image; SSIM = skimage structural_similarity "
                 "defaults, channel_axis=2, data_range=1.0; set figure = mean over images"))
PYNET = Protocol(
    name="pynet_zrr", border=0,
    description=("PyNET's Zurich RAW-to-RGB protocol: whole 448x448 patches (no crop), max "
                 "value 1.0, against the Canon 5D Mark IV JPEG / 255; PSNR and SSIM (skimage, "
                 "as §2.3) per patch, set figure = mean over patches. PyNET's papers report "
                 "MS-SSIM, which is not computed here."))


@dataclasses.dataclass(frozen=True)
class ImageScore:
    """PSNR (dB, inf for identical images) and SSIM of one image against its reference."""

    psnr: float
    ssim: float


def to_unit(image: np.ndarray) -> np.ndarray:
    """Return an image as float64 in [0, 1]: uint16 / 65535, uint8 / 255, floats unchanged."""
    image = np.asarray(image)
    if image.dtype == np.uint16:
        return image.astype(np.float64) / 65535.0
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    if image.dtype.kind == "f":
        return image.astype(np.float64)
    raise ValueError(f"images must be uint16, uint8 or float in [0, 1], got {image.dtype}")


def crop_border(image: np.ndarray, border: int = BORDER) -> np.ndarray:
    """Return the view of an [H, W(, C)] image without `border` pixels on every side."""
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    height, width = image.shape[:2]
    if height <= 2 * border or width <= 2 * border:
        raise ValueError(f"image {height}x{width} is too small for a {border}-pixel border crop")
    return image[border:height - border, border:width - border]


def _cropped_pair(reference: np.ndarray, image: np.ndarray,
                  border: int) -> tuple[np.ndarray, np.ndarray]:
    """Check two images have the same shape and return both cropped by `border`."""
    if reference.shape != image.shape:
        raise ValueError(f"image shape {image.shape} differs from the reference's "
                         f"{reference.shape}")
    if reference.ndim not in (2, 3):
        raise ValueError(f"images must be [H, W] or [H, W, C], got {reference.shape}")
    return crop_border(reference, border), crop_border(image, border)


def _bands(start: int, stop: int, rows: int) -> Iterator[tuple[int, int]]:
    """Yield [first, last) row ranges of at most `rows` rows covering [start, stop)."""
    for first in range(start, stop, rows):
        yield first, min(first + rows, stop)


def mse(reference: np.ndarray, image: np.ndarray, border: int = BORDER,
        band_rows: int = BAND_ROWS) -> float:
    """Return the mean squared error over all pixels and channels, in [0, 1] units.

    Args:
      reference: [H, W(, C)] uint16 / uint8 / float image.
      image: same shape as `reference`.
      border: pixels cropped on every side first.
      band_rows: rows converted to float64 at a time.
    """
    ref, img = _cropped_pair(reference, image, border)
    total = 0.0
    for first, last in _bands(0, ref.shape[0], band_rows):
        total += float(np.sum(np.square(to_unit(ref[first:last]) - to_unit(img[first:last]))))
    return total / ref.size


def psnr(reference: np.ndarray, image: np.ndarray, border: int = BORDER,
         band_rows: int = BAND_ROWS) -> float:
    """Return 10·log10(1 / MSE) in dB (max value 1.0); inf when the images are identical."""
    error = mse(reference, image, border, band_rows)
    return math.inf if error == 0 else 10.0 * math.log10(1.0 / error)


def ssim(reference: np.ndarray, image: np.ndarray, border: int = BORDER,
         band_rows: int = BAND_ROWS) -> float:
    """Return skimage's SSIM (defaults, data_range=1.0, channel_axis=2 for colour images).

    Computed over bands of rows with a halo of half a window; equal to
    `structural_similarity(ref, img, channel_axis=2, data_range=1.0)` on the cropped images.

    Args:
      reference: [H, W(, C)] uint16 / uint8 / float image.
      image: same shape as `reference`.
      border: pixels cropped on every side first.
      band_rows: output rows per band (>= 1).
    """
    ref, img = _cropped_pair(reference, image, border)
    height, width = ref.shape[:2]
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after the "
                         f"border crop, got {height}x{width}")
    pad = (SSIM_WINDOW - 1) // 2
    channel_axis = 2 if ref.ndim == 3 else None
    total, count = 0.0, 0
    for first, last in _bands(pad, height - pad, max(1, band_rows)):
        _, ssim_map = structural_similarity(
            to_unit(ref[first - pad:last + pad]), to_unit(img[first - pad:last + pad]),
            channel_axis=channel_axis, data_range=1.0, full=True)
        inner = ssim_map[pad:pad + last - first, pad:width - pad]
        total += float(np.sum(inner, dtype=np.float64))
        count += inner.size
    return total / count


def score(reference: np.ndarray, image: np.ndarray, protocol: Protocol = DESIGN) -> ImageScore:
    """Return the PSNR and SSIM of `image` against `reference` under `protocol`."""
    return ImageScore(psnr=psnr(reference, image, protocol.border),
                      ssim=ssim(reference, image, protocol.border))


def mean_score(scores: Iterable[ImageScore]) -> ImageScore:
    """Return the set figure: the mean PSNR and mean SSIM over images (nan for no images)."""
    scores = list(scores)
    if not scores:
        return ImageScore(math.nan, math.nan)
    return ImageScore(psnr=float(np.mean([s.psnr for s in scores])),
                      ssim=float(np.mean([s.ssim for s in scores])))
