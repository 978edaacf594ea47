"""Full-image inference: RAW record -> 16-bit sRGB in the reference render's exact geometry.

Per image: the mosaic is cut into overlapping tiles of its canonical RGGB form (DESIGN §2.2:
`cfa.canonicalize` pads one mirrored row/column for other patterns), each tile is normalized
(`color.normalize`) only when it is needed, run through the model, blended into a band of rows
(`tiling.StripStitcher`), and every finished band is cropped back to the mosaic's geometry
(`cfa.decanonicalize`) and written as uint16. Non-square-pixel cameras are then stretched to the
render size (`geometry.stretch`, in chunks). Memory: the uint16 mosaic, the uint16 output and a
few float32 bands; no full-frame float copy (a 100-MP frame stays well under 2 GB).

`Engine` runs many files: decoding (rawpy releases the GIL), normalization and tiling run in a
pool of threads concurrently with the interpreter (LiteRT's invoke releases the GIL too),
connected by one bounded queue; `serial=True` does the same work in one thread for comparison.
Both give identical outputs.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import queue
import threading
from typing import Iterator, Protocol, Sequence

import numpy as np

from deepisp_tf.raw import cfa, color, geometry
from deepisp_tf.raw.io import RawRecord, read_raw
from deepisp_tf.runtime import tiling


class TileRunner(Protocol):
    """What the pipeline needs from a model runner (see `interpreter.Runner`)."""

    tile_shape: tuple[int, int]
    has_metadata: bool

    def run(self, bayer_tile: np.ndarray, metadata: np.ndarray | None = None) -> np.ndarray:
        ...


def model_metadata(record: RawRecord) -> np.ndarray:
    """Return the model's metadata input [12] float32: cam_to_srgb row-major, then wb_gains."""
    return np.concatenate([np.asarray(record.cam_to_srgb, np.float32).reshape(9),
                           np.asarray(record.wb_gains, np.float32).reshape(3)])


def default_overlap(tile: int) -> int:
    """Return the default overlap of a tile side: tile / 8, rounded down to even (256 -> 32)."""
    return tile // 8 // 2 * 2


@dataclasses.dataclass(frozen=True)
class ImagePlan:
    """How one record is tiled.

    Attributes:
      record: the decoded RAW file.
      padding: (top, left, H, W) as returned by `cfa.canonicalize` for the record's mosaic.
      grid: tiles over the canonical [H + pad, W + pad] mosaic, at even offsets.
      metadata: [12] model metadata.
    """

    record: RawRecord
    padding: tuple[int, int, int, int]
    grid: tiling.TileGrid
    metadata: np.ndarray


def plan_record(record: RawRecord, tile: int, overlap: int) -> ImagePlan:
    """Return the tiling plan of a record (its canonical geometry and tile grid)."""
    height, width = record.mosaic.shape
    top, left = cfa.red_offset(record.pattern)
    canonical = (height + top + (height + top) % 2, width + left + (width + left) % 2)
    grid = tiling.tile_grid(canonical[0], canonical[1], tile, overlap)
    return ImagePlan(record, (top, left, height, width), grid, model_metadata(record))


def iter_tiles(plan: ImagePlan) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (grid row, grid col, normalized RGGB tile [tile, tile] float32) in row-major order.

    A tile at canonical offset (y, x) reads mosaic rows y - top .. with reflection, which is
    exactly `cfa.canonicalize(normalize(mosaic))[y:y+tile, x:x+tile]` inside the canonical
    mosaic (and a CFA-preserving reflection past it), without a full-frame float copy.
    """
    record, (top, left, height, width), grid = plan.record, plan.padding, plan.grid
    black = cfa.roll_sites(record.black_levels, top, left)  # per site of the canonical 2x2
    for row, y in enumerate(grid.ys):
        rows = tiling.reflect_indices(y - top, grid.tile, height)
        for col, x in enumerate(grid.xs):
            cols = tiling.reflect_indices(x - left, grid.tile, width)
            window = record.mosaic[np.ix_(rows, cols)]
            yield row, col, color.normalize(window, "RGGB", black, record.white_level,
                                            record.wb_gains)


def to_uint16(values: np.ndarray) -> np.ndarray:
    """Quantize float values in [0, 1] (clipped) to uint16, rounding to nearest."""
    return np.floor(np.clip(values, 0.0, 1.0) * np.float32(65535) + np.float32(0.5)
                    ).astype(np.uint16)


def stretch_chunked(image: np.ndarray, pixel_aspect: float, chunk: int = 256) -> np.ndarray:
    """`geometry.stretch` an [H, W, C] image a chunk of independent rows/columns at a time.

    LibRaw's stretch resamples one axis; the other axis' lines are independent, so the result
    equals `geometry.stretch(image, pixel_aspect)` with float64 temporaries of one chunk only.
    """
    if pixel_aspect == 1:
        return image
    out_h, out_w = geometry.render_size(image.shape[:2], pixel_aspect)
    out = np.empty((out_h, out_w) + image.shape[2:], image.dtype)
    if pixel_aspect > 1:  # widen every row
        for start in range(0, image.shape[0], chunk):
            out[start:start + chunk] = geometry.stretch(image[start:start + chunk], pixel_aspect)
        return out
    inverse = 1.0 / pixel_aspect  # heighten every column: widen the transposed columns
    if 1.0 / inverse != pixel_aspect or int(image.shape[0] * inverse + 0.5) != out_h:
        return geometry.stretch(image, pixel_aspect)  # keep LibRaw's exact float positions
    for start in range(0, image.shape[1], chunk):
        columns = image[:, start:start + chunk].swapaxes(0, 1)
        out[:, start:start + chunk] = geometry.stretch(columns, inverse).swapaxes(0, 1)
    return out


class Assembler:
    """Blend one image's tile outputs and crop/stretch them to the reference geometry."""

    def __init__(self, plan: ImagePlan):
        self.plan = plan
        top, left, height, width = plan.padding
        self._stitcher = tiling.StripStitcher(plan.grid, 3)
        self._image = np.empty((height, width, 3), np.uint16)
        self.tiles = 0

    def _write(self, first: int, rows: np.ndarray) -> None:
        """Write canonical rows [first, first + n) into the mosaic-geometry uint16 image."""
        top, left, height, width = self.plan.padding
        skip = max(top - first, 0)  # canonical padding rows above the mosaic
        start = first + skip - top  # first mosaic row of the band
        band = cfa.decanonicalize(rows, (skip, left, min(len(rows) - skip, height - start), width))
        self._image[start:start + len(band)] = to_uint16(band)

    def add(self, row: int, col: int, srgb: np.ndarray) -> None:
        """Add the model's output [tile, tile, 3] for the tile at grid (row, col)."""
        self.tiles += 1
        for first, rows in self._stitcher.add(row, col, srgb):
            self._write(first, rows)

    def finish(self) -> np.ndarray:
        """Return the image [H', W', 3] uint16 in the reference render's geometry."""
        for first, rows in self._stitcher.finish():
            self._write(first, rows)
        image = stretch_chunked(self._image, self.plan.record.pixel_aspect)
        if tuple(image.shape[:2]) != tuple(self.plan.record.render_size):
            raise AssertionError(f"{self.plan.record.path}: output {image.shape[:2]} is not the "
                                 f"render size {self.plan.record.render_size}")
        return image


def _square_tile(runner: TileRunner) -> int:
    height, width = runner.tile_shape
    if height != width or height % 2:
        raise ValueError(f"the model's tile must be square with an even side, got {height}x{width}")
    return height


def infer_record(record: RawRecord, runner: TileRunner, overlap: int | None = None
                 ) -> np.ndarray:
    """Render a RAW record with the model, tile by tile.

    Args:
      record: from `read_raw`.
      runner: an opened model (`interpreter.Runner`).
      overlap: overlap between tiles (even, <= tile / 2); None: `default_overlap(tile)`.

    Returns:
      [H', W', 3] uint16 sRGB with (H', W') == record.render_size.
    """
    tile = _square_tile(runner)
    plan = plan_record(record, tile, default_overlap(tile) if overlap is None else overlap)
    assembler = Assembler(plan)
    metadata = plan.metadata if runner.has_metadata else None
    for row, col, bayer in iter_tiles(plan):
        assembler.add(row, col, runner.run(bayer, metadata))
    return assembler.finish()


@dataclasses.dataclass(frozen=True)
class InferenceResult:
    """One rendered file: its index in the input list, path, image [H', W', 3] uint16, tiles."""

    index: int
    path: str
    image: np.ndarray
    tiles: int


@dataclasses.dataclass(frozen=True)
class _Start:
    index: int
    path: str
    plan: ImagePlan


@dataclasses.dataclass(frozen=True)
class _Tile:
    index: int
    row: int
    col: int
    bayer: np.ndarray


@dataclasses.dataclass(frozen=True)
class _End:
    index: int
    error: BaseException | None = None


class Engine:
    """Render many RAW files with one model: preprocessing threads || interpreter.

    The calling thread runs the interpreter; `workers` threads decode, normalize and tile,
    feeding a queue of at most `queue_size` tiles. With `serial=True` everything runs in the
    calling thread, one file after another.
    """

    def __init__(self, runner: TileRunner, *, overlap: int | None = None, workers: int = 2,
                 queue_size: int = 16, serial: bool = False):
        self.runner = runner
        self.tile = _square_tile(runner)
        self.overlap = default_overlap(self.tile) if overlap is None else overlap
        if workers < 1 or queue_size < 1:
            raise ValueError(f"workers and queue_size must be >= 1, got {workers}, {queue_size}")
        self.workers, self.queue_size, self.serial = workers, queue_size, serial

    def run(self, paths: Sequence[str | os.PathLike]) -> Iterator[InferenceResult]:
        """Yield one InferenceResult per file, in completion order (serial: input order).

        Raises:
          RawReadError: a file cannot be decoded (the first failure stops the run).
        """
        paths = [os.fspath(path) for path in paths]
        if self.serial:
            yield from self._run_serial(paths)
        else:
            yield from self._run_concurrent(paths)

    def _run_serial(self, paths: list[str]) -> Iterator[InferenceResult]:
        for index, path in enumerate(paths):
            plan = plan_record(read_raw(path), self.tile, self.overlap)
            assembler = Assembler(plan)
            metadata = plan.metadata if self.runner.has_metadata else None
            for row, col, bayer in iter_tiles(plan):
                assembler.add(row, col, self.runner.run(bayer, metadata))
            yield InferenceResult(index, path, assembler.finish(), assembler.tiles)

    def _produce(self, index: int, path: str, out: queue.Queue,
                 stop: threading.Event) -> None:
        """Decode and tile one file into `out` (a worker thread); always ends with _End."""

        def put(item: object) -> bool:
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            plan = plan_record(read_raw(path), self.tile, self.overlap)
            if not put(_Start(index, path, plan)):
                return
            for row, col, bayer in iter_tiles(plan):
                if not put(_Tile(index, row, col, bayer)):
                    return
            put(_End(index))
        except Exception as error:  # pylint: disable=broad-except  # re-raised by the consumer
            put(_End(index, error))

    def _run_concurrent(self, paths: list[str]) -> Iterator[InferenceResult]:
        tiles: queue.Queue = queue.Queue(maxsize=self.queue_size)
        stop = threading.Event()
        pool = concurrent.futures.ThreadPoolExecutor(self.workers, "deepisp-preprocess")
        try:
            for index, path in enumerate(paths):
                pool.submit(self._produce, index, path, tiles, stop)
            open_images: dict[int, tuple[str, Assembler, np.ndarray | None]] = {}
            remaining = len(paths)
            while remaining:
                item = tiles.get()
                if isinstance(item, _Start):
                    metadata = item.plan.metadata if self.runner.has_metadata else None
                    open_images[item.index] = (item.path, Assembler(item.plan), metadata)
                elif isinstance(item, _Tile):
                    _, assembler, metadata = open_images[item.index]
                    assembler.add(item.row, item.col, self.runner.run(item.bayer, metadata))
                else:
                    remaining -= 1
                    if item.error is not None:
                        raise item.error
                    path, assembler, _ = open_images.pop(item.index)
                    yield InferenceResult(item.index, path, assembler.finish(), assembler.tiles)
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
