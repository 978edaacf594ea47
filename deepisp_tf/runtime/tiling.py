"""Overlapping tiles of a mosaic and their blending back into one image, in pure numpy.

Tiles start at EVEN offsets, so every tile of an RGGB mosaic is itself RGGB. Tiles that reach
past the image (an image smaller than a tile, or an odd remainder) read reflected pixels
(numpy 'reflect': row -k is row k), which keeps the CFA phase because a reflection maps every
row to one of the same parity.

Blending: each tile gets a separable weight window (`blend_weights`) that is flat in the middle
and ramps with a raised cosine across the overlap, after a dead zone of `overlap // 4` pixels
where the weight is 0: the pixels nearest a tile's edge, where a convolutional network sees the
tile's zero padding instead of the image, are never used when a neighbour covers them. The ramps
of two neighbours sum to 1; at the image border a side is flat. Stitching divides by the summed
weights, so irregular last tiles blend correctly too.

`StripStitcher` accumulates tiles in row-major order and hands back finished rows as soon as
no later tile can touch them, so a whole frame never needs a float accumulator.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np


@dataclasses.dataclass(frozen=True)
class TileGrid:
    """Tile offsets covering a [height, width] image.

    Attributes:
      height, width: size of the image covered.
      tile: tile side (even).
      overlap: overlap between neighbouring tiles (even, <= tile / 2).
      ys, xs: even top/left offsets of the tile rows and columns, ascending.
    """

    height: int
    width: int
    tile: int
    overlap: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]

    @property
    def positions(self) -> list[tuple[int, int]]:
        """(y, x) of every tile in row-major order."""
        return [(y, x) for y in self.ys for x in self.xs]

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)

    @property
    def extent(self) -> tuple[int, int]:
        """(height, width) of the area the tiles cover (>= the image)."""
        return self.ys[-1] + self.tile, self.xs[-1] + self.tile

    def weights(self, row: int, col: int) -> np.ndarray:
        """Blend weights [tile, tile] of the tile at grid (row, col); flat at image borders."""
        return blend_weights(self.tile, self.overlap, sides=(
            row > 0, row < len(self.ys) - 1, col > 0, col < len(self.xs) - 1))


def check_tile(tile: int, overlap: int) -> None:
    """Raise ValueError unless the tile is even and positive and the overlap even, <= tile / 2."""
    if tile <= 0 or tile % 2 or overlap < 0 or overlap % 2 or 2 * overlap > tile:
        raise ValueError(f"need an even tile > 0 and an even overlap <= tile / 2, got tile "
                         f"{tile}, overlap {overlap}")


def _axis_offsets(length: int, tile: int, overlap: int) -> tuple[int, ...]:
    """Even offsets along one axis: a stride of tile - overlap, the last one flush with the end
    (rounded up to even, so it may pass the end by one pixel)."""
    if length <= tile:
        return (0,)
    last = length - tile + (length - tile) % 2
    offsets = list(range(0, last, tile - overlap))
    return tuple(offsets + [last])


def tile_grid(height: int, width: int, tile: int, overlap: int) -> TileGrid:
    """Return the tiles covering a [height, width] image, at even offsets.

    Args:
      height, width: image size (any, >= 1).
      tile: tile side, even.
      overlap: overlap between neighbours, even, at most tile / 2.

    Returns:
      The TileGrid; consecutive tiles overlap by at least `overlap`.
    """
    check_tile(tile, overlap)
    if height < 1 or width < 1:
        raise ValueError(f"empty image: {height}x{width}")
    return TileGrid(height, width, tile, overlap, _axis_offsets(height, tile, overlap),
                    _axis_offsets(width, tile, overlap))


def ramp(overlap: int) -> np.ndarray:
    """Rising edge [overlap] float32: 0 for the first overlap // 4 pixels, then a raised cosine
    to 1; `ramp(n) + ramp(n)[::-1] == 1`."""
    dead = overlap // 4
    width = overlap - 2 * dead
    position = (np.arange(width, dtype=np.float64) + 0.5) / max(width, 1)
    rising = 0.5 - 0.5 * np.cos(np.pi * position)
    return np.concatenate([np.zeros(dead), rising, np.ones(dead)]).astype(np.float32)


def blend_weights(tile: int, overlap: int,
                  sides: tuple[bool, bool, bool, bool] = (True, True, True, True)
                  ) -> np.ndarray:
    """Return a tile's blend window [tile, tile] float32.

    Args:
      tile: tile side.
      overlap: overlap between neighbouring tiles.
      sides: whether the (top, bottom, left, right) side ramps (False: flat, an image border).

    Returns:
      The outer product of a vertical and a horizontal profile; across an overlap of exactly
      `overlap` the windows of two neighbours sum to 1.
    """
    check_tile(tile, overlap)
    edge = ramp(overlap)

    def profile(start: bool, end: bool) -> np.ndarray:
        values = np.ones(tile, np.float32)
        if overlap:
            if start:
                values[:overlap] = edge
            if end:
                values[tile - overlap:] = edge[::-1]
        return values

    top, bottom, left, right = sides
    return np.outer(profile(top, bottom), profile(left, right))


def reflect_indices(start: int, size: int, length: int) -> np.ndarray:
    """Indices [size] of positions start..start+size-1 reflected into [0, length).

    numpy's 'reflect' padding, any distance: parity is kept, so a Bayer phase is too.
    """
    positions = np.arange(start, start + size)
    if length == 1:
        return np.zeros(size, np.int64)
    period = 2 * (length - 1)
    positions = np.mod(positions, period)
    return np.where(positions < length, positions, period - positions).astype(np.int64)


def extract_tile(image: np.ndarray, y: int, x: int, tile: int) -> np.ndarray:
    """Return image[y:y+tile, x:x+tile] with reflected pixels past the borders [tile, tile, ...]."""
    rows = reflect_indices(y, tile, image.shape[0])
    cols = reflect_indices(x, tile, image.shape[1])
    if rows[-1] == y + tile - 1 and cols[-1] == x + tile - 1 and y >= 0 and x >= 0:
        return image[y:y + tile, x:x + tile]
    return image[np.ix_(rows, cols)]


def tile_image(image: np.ndarray, tile: int, overlap: int) -> tuple[np.ndarray, TileGrid]:
    """Cut an image into overlapping tiles at even offsets.

    Args:
      image: [H, W] or [H, W, C] array (e.g. a canonical RGGB mosaic).
      tile: tile side, even.
      overlap: overlap, even, <= tile / 2.

    Returns:
      (tiles, grid): tiles [N, tile, tile(, C)] in `grid.positions` order.
    """
    grid = tile_grid(image.shape[0], image.shape[1], tile, overlap)
    tiles = np.stack([extract_tile(image, y, x, tile) for y, x in grid.positions])
    return tiles, grid


class StripStitcher:
    """Blend tiles arriving in row-major order; yield rows as soon as they are final.

    Memory: one band of `tile` rows x the grid's width x channels, float32.
    """

    def __init__(self, grid: TileGrid, channels: int):
        self.grid = grid
        width = grid.extent[1]
        self._values = np.zeros((grid.tile, width, channels), np.float32)
        self._weights = np.zeros((grid.tile, width, 1), np.float32)
        self._top = 0  # image row of the band's first row; rows above it were handed out
        self._windows: dict[tuple[bool, ...], np.ndarray] = {}

    def _window(self, row: int, col: int) -> np.ndarray:
        key = (row > 0, row < len(self.grid.ys) - 1, col > 0, col < len(self.grid.xs) - 1)
        if key not in self._windows:
            self._windows[key] = self.grid.weights(row, col)[..., None]
        return self._windows[key]

    def _flush(self, until: int) -> tuple[int, np.ndarray] | None:
        """Hand out image rows [top, until) and slide the band down to start at `until`."""
        until = min(until, self.grid.height)
        count = until - self._top
        if count <= 0:
            return None
        width = self.grid.width
        out = (self._top, self._values[:count, :width] / self._weights[:count, :width])
        keep = self.grid.tile - count  # rows still open: slide them to the top of the band
        for array in (self._values, self._weights):
            array[:keep] = array[count:count + keep]
            array[keep:] = 0
        self._top = until
        return out

    def add(self, row: int, col: int, values: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """Add the tile at grid (row, col); yield (first_row, rows [n, W, C]) now final."""
        y, x = self.grid.ys[row], self.grid.xs[col]
        if y > self._top:
            flushed = self._flush(y)
            if flushed is not None:
                yield flushed
        weights = self._window(row, col)
        band = slice(y - self._top, y - self._top + self.grid.tile)
        self._values[band, x:x + self.grid.tile] += values * weights
        self._weights[band, x:x + self.grid.tile] += weights

    def finish(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield the remaining rows once every tile was added."""
        flushed = self._flush(self.grid.height)
        if flushed is not None:
            yield flushed


def stitch_tiles(tiles: np.ndarray, grid: TileGrid) -> np.ndarray:
    """Blend tiles [N, tile, tile(, C)] (in `grid.positions` order) into [H, W(, C)] float32.

    The inverse of `tile_image` for identical overlapping content.
    """
    squeeze = tiles.ndim == 3
    values = tiles[..., None] if squeeze else tiles
    stitcher = StripStitcher(grid, values.shape[-1])
    out = np.empty((grid.height, grid.width, values.shape[-1]), np.float32)
    columns = len(grid.xs)
    for index, tile_values in enumerate(values):
        for first, rows in stitcher.add(index // columns, index % columns, tile_values):
            out[first:first + len(rows)] = rows
    for first, rows in stitcher.finish():
        out[first:first + len(rows)] = rows
    return out[..., 0] if squeeze else out
