"""Overlapping tiles of a mosaic and their stitching back into one image, in pure numpy.

Tiles start at EVEN offsets, so every tile of an RGGB mosaic is itself RGGB. Tiles that reach
past the image (an image smaller than a tile, or an odd remainder) read reflected pixels
(numpy 'reflect': row -k is row k), which keeps the CFA phase because a reflection maps every
row to one of the same parity.

Stitching: two neighbours meet at a cut in the middle of their overlap. Each tile's pixels are
copied as they are up to a narrow seam around the cut, and only across the seam (`seam` pixels,
half the overlap) are the two tiles blended, with a raised cosine. Every pixel used therefore
lies at least `overlap // 4` pixels inside its tile (or on an image border, where tile and whole
image pad alike): the pixels nearest a tile's edge, where a convolutional network sees the
tile's zero padding instead of the image, are never used. The weights of the scheme
(`TileGrid.weights`, separable, summing to 1) are what `StripStitcher` computes with copies and
seam blends only, in the tiles' own dtype (int8 model outputs stay int8).

`StripStitcher` takes tiles in row-major order and hands back finished rows as soon as a row of
tiles is complete, so a whole frame never needs a float accumulator.
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

    @property
    def seam(self) -> int:
        """Width of the blended seam around each cut: half the overlap, rounded down to even."""
        return seam_width(self.overlap)

    def weights(self, row: int, col: int) -> np.ndarray:
        """Stitching weights [tile, tile] of the tile at grid (row, col) (see the module doc)."""
        return np.outer(axis_weights(self.ys, row, self.tile, self.seam),
                        axis_weights(self.xs, col, self.tile, self.seam))


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


def seam_width(overlap: int) -> int:
    """Return the seam width of an overlap: overlap / 2 rounded down to even (32 -> 16), so a
    seam centred in the overlap keeps overlap / 4 pixels away from both tiles' edges."""
    return overlap // 4 * 2


def cuts(offsets: tuple[int, ...], tile: int) -> tuple[int, ...]:
    """Return the cut between each pair of consecutive tiles: the middle of their overlap."""
    return tuple((offsets[k + 1] + offsets[k] + tile) // 2 for k in range(len(offsets) - 1))


def ramp(width: int) -> np.ndarray:
    """Rising raised cosine [width] float32, the later tile's weight across a seam;
    `ramp(n) + ramp(n)[::-1] == 1`."""
    position = (np.arange(width, dtype=np.float64) + 0.5) / max(width, 1)
    return (0.5 - 0.5 * np.cos(np.pi * position)).astype(np.float32)


def axis_weights(offsets: tuple[int, ...], index: int, tile: int, seam: int) -> np.ndarray:
    """Return the weights [tile] float32 of tile `index` along one axis of a grid.

    0 before the seam at its previous cut, rising across that seam, 1 up to the seam at its next
    cut, falling across it, 0 after; a side without a neighbour is flat. The weights of all the
    tiles of an axis sum to 1 at every position.
    """
    half = seam // 2
    edge = ramp(2 * half)
    positions = offsets[index] + np.arange(tile)
    weights = np.ones(tile, np.float32)
    between = cuts(offsets, tile)
    if index > 0:
        start = between[index - 1] - half
        weights[positions < start] = 0
        inside = (positions >= start) & (positions < start + 2 * half)
        weights[inside] = edge[positions[inside] - start]
    if index < len(offsets) - 1:
        start = between[index] - half
        weights[positions >= start + 2 * half] = 0
        inside = (positions >= start) & (positions < start + 2 * half)
        weights[inside] = 1 - edge[positions[inside] - start]
    return weights


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


@dataclasses.dataclass(frozen=True)
class _Span:
    """Where one tile's pixels go along an axis (image coordinates).

    The tile is blended over [start, core) with what lies there, copied over [core, end), and
    its part [stop, end) (the next seam) is blended over again by the next tile.
    """

    start: int
    core: int
    stop: int
    end: int


def _spans(offsets: tuple[int, ...], tile: int, seam: int, length: int) -> list[_Span]:
    """Return the _Span of every tile of an axis of `length` pixels."""
    half = seam // 2
    between = cuts(offsets, tile)
    spans = []
    for index in range(len(offsets)):
        start = between[index - 1] - half if index > 0 else 0
        stop = between[index] - half if index < len(between) else length
        end = between[index] + half if index < len(between) else length
        spans.append(_Span(start, start + 2 * half if index > 0 else 0, stop, end))
    return spans


def _blend(first: np.ndarray, second: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Return first * (1 - weights) + second * weights in the dtype of `first` (rounded)."""
    mixed = first + (second.astype(np.float32) - first) * weights
    if np.issubdtype(first.dtype, np.integer):
        return np.rint(mixed).astype(first.dtype)
    return mixed.astype(first.dtype)


class StripStitcher:
    """Stitch tiles arriving in row-major order; yield rows as soon as they are final.

    Memory: one strip of `tile` rows x the image width x channels in the tiles' dtype, and the
    seam rows of the previous strip. The rows yielded are a view of the strip, valid until the
    next `add`.
    """

    def __init__(self, grid: TileGrid, channels: int, dtype: np.dtype | type = np.float32):
        self.grid = grid
        self._strip = np.empty((grid.tile, grid.width, channels), dtype)
        self._pending: np.ndarray | None = None  # the previous strip's bottom seam rows
        self._rows = _spans(grid.ys, grid.tile, grid.seam, grid.height)
        self._cols = _spans(grid.xs, grid.tile, grid.seam, grid.width)
        self._ramp = ramp(2 * (grid.seam // 2))
        self._done = False

    def add(self, row: int, col: int, values: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """Add the tile [tile, tile, C] at grid (row, col); yield (first_row, rows [n, W, C])
        once its row of tiles is complete."""
        values = values.reshape(self.grid.tile, self.grid.tile, -1)
        span, x = self._cols[col], self.grid.xs[col]
        strip = self._strip
        if span.start < span.core:
            strip[:, span.start:span.core] = _blend(strip[:, span.start:span.core],
                                                    values[:, span.start - x:span.core - x],
                                                    self._ramp[:, None])
        strip[:, span.core:span.end] = values[:, span.core - x:span.end - x]
        if col == len(self.grid.xs) - 1:
            yield self._complete(row)

    def _complete(self, row: int) -> tuple[int, np.ndarray]:
        """Blend the strip's top seam with the previous strip, keep its bottom seam, hand out
        its final rows."""
        span, y = self._rows[row], self.grid.ys[row]
        strip = self._strip
        if span.start < span.core:
            strip[span.start - y:span.core - y] = _blend(
                self._pending, strip[span.start - y:span.core - y], self._ramp[:, None, None])
        self._pending = strip[span.stop - y:span.end - y].copy() if span.end > span.stop else None
        self._done = row == len(self.grid.ys) - 1
        return span.start, strip[span.start - y:span.stop - y]

    @property
    def done(self) -> bool:
        """Whether every row was handed out (the last tile yields the last rows)."""
        return self._done


def stitch_tiles(tiles: np.ndarray, grid: TileGrid) -> np.ndarray:
    """Stitch tiles [N, tile, tile(, C)] (in `grid.positions` order) into [H, W(, C)], in the
    tiles' dtype.

    The inverse of `tile_image` for identical overlapping content.
    """
    squeeze = tiles.ndim == 3
    values = tiles[..., None] if squeeze else tiles
    stitcher = StripStitcher(grid, values.shape[-1], values.dtype)
    out = np.empty((grid.height, grid.width, values.shape[-1]), values.dtype)
    columns = len(grid.xs)
    for index, tile_values in enumerate(values):
        for first, rows in stitcher.add(index // columns, index % columns, tile_values):
            out[first:first + len(rows)] = rows
    return out[..., 0] if squeeze else out
