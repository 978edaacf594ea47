"""Aligned training tiles from one RAW file, in numpy (no TensorFlow: runs in worker processes).

A training pair is the canonical RGGB mosaic and the reference render resampled to the mosaic's
geometry (`geometry.unstretch`, exact for pixel aspect 1/n), both cropped identically, so every
mosaic site lies under its own output pixel.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from deepisp_tf.raw import cfa, geometry
from deepisp_tf.raw.io import RawReadError, RawRecord, read_raw


@dataclasses.dataclass(frozen=True)
class AlignedPair:
    """A RAW record's canonical RGGB mosaic and its aligned reference.

    Attributes:
      mosaic: [H, W] uint16 RGGB mosaic (H, W even), black not subtracted.
      target: [H, W, 3] uint16 reference render in the mosaic's geometry.
      black_levels: [2, 2] float32 per RGGB site.
      record: the source record (its mosaic is the original, uncropped one).
    """

    mosaic: np.ndarray
    target: np.ndarray
    black_levels: np.ndarray
    record: RawRecord


def align(record: RawRecord, reference: np.ndarray) -> AlignedPair:
    """Crop mosaic and reference together so the mosaic is RGGB with even sides.

    Args:
      record: decoded RAW file.
      reference: [H', W', 3] uint16 reference render of it.

    Returns:
      The aligned pair in mosaic geometry.
    """
    target = geometry.unstretch(reference, record.pixel_aspect, record.raw_size)
    dy, dx = cfa.red_offset(record.pattern)
    height = (record.raw_size[0] - dy) // 2 * 2
    width = (record.raw_size[1] - dx) // 2 * 2
    return AlignedPair(
        mosaic=record.mosaic[dy:dy + height, dx:dx + width],
        target=target[dy:dy + height, dx:dx + width],
        black_levels=cfa.roll_sites(record.black_levels, dy, dx).astype(np.float32),
        record=record)


def tile_offsets(height: int, width: int, tile: int, stride: int, border: int,
                 limit: int) -> list[tuple[int, int]]:
    """Return even (row, col) offsets of tiles inside the border, at most `limit`, evenly spread.

    Args:
      height, width: image size.
      tile: tile side.
      stride: step between tiles (even).
      border: pixels skipped at every edge (even).
      limit: maximum number of tiles.

    Returns:
      Offsets in row-major order; empty when the image is smaller than a tile plus borders.
    """
    rows = range(border, height - border - tile + 1, stride)
    cols = range(border, width - border - tile + 1, stride)
    offsets = [(r, c) for r in rows for c in cols]
    if len(offsets) > limit:
        keep = np.linspace(0, len(offsets) - 1, limit).round().astype(int)
        offsets = [offsets[i] for i in sorted(set(keep.tolist()))]
    return offsets


@dataclasses.dataclass(frozen=True)
class FileTiles:
    """Tiles cut from one file, ready to be written as examples.

    Attributes:
      mosaics: [N, T, T] uint16.
      targets: [N, T, T, 3] uint16.
      offsets: [N, 2] int64 tile positions in the aligned mosaic.
      black_levels, white_level, wb_gains, cam_to_srgb: the file's metadata (RGGB-aligned).
      info: JSON-friendly description of the file for the manifest.
    """

    mosaics: np.ndarray
    targets: np.ndarray
    offsets: np.ndarray
    black_levels: np.ndarray
    white_level: float
    wb_gains: np.ndarray
    cam_to_srgb: np.ndarray
    info: dict
    site_gains: np.ndarray | None = None  # [2, 2] per RGGB site (LibRaw's four pre_mul)


def cut_tiles(path: str, tile: int, stride: int, border: int, limit: int) -> FileTiles:
    """Decode a RAW file, render its reference and cut aligned tiles.

    Raises:
      RawReadError: the file cannot be used (including: too small for one tile).
    """
    record, reference = read_raw(path, with_reference=True)
    pair = align(record, reference)
    offsets = tile_offsets(*pair.mosaic.shape, tile, stride, border, limit)
    if not offsets:
        raise RawReadError(path, f"image {record.raw_size} is smaller than one {tile}x{tile} "
                                 f"tile plus a {border}-pixel border")
    mosaics = np.stack([pair.mosaic[r:r + tile, c:c + tile] for r, c in offsets])
    targets = np.stack([pair.target[r:r + tile, c:c + tile] for r, c in offsets])
    info = {"name": os.path.basename(path), **record.metadata(), "tiles": len(offsets)}
    return FileTiles(mosaics=mosaics, targets=targets, offsets=np.array(offsets, np.int64),
                     black_levels=pair.black_levels, white_level=record.white_level,
                     wb_gains=record.wb_gains, cam_to_srgb=record.cam_to_srgb, info=info,
                     site_gains=cfa.roll_sites(record.gains_2x2, *cfa.red_offset(record.pattern)))
