"""Full-image inference: RAW record -> 16-bit sRGB in the reference render's exact geometry.

Per image: the mosaic is cut into overlapping tiles of its canonical RGGB form (DESIGN §2.2:
`cfa.canonicalize` pads one mirrored row/column for other patterns), each tile is normalized
(`color.normalize`) only when it is needed, run through the model, blended into a band of rows
(`tiling.StripStitcher`), and every finished band is cropped back to the mosaic's geometry
(`cfa.decanonicalize`) and written as uint16. Non-square-pixel cameras are then stretched to the
render size (`geometry.stretch`, in chunks). Memory: the uint16 mosaic, the uint16 output and a
few float32 bands; no full-frame float copy (`peak_bytes_estimate`).

`engine.Engine` runs these steps for many files with preprocessing threads.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Iterator, Protocol

import numpy as np

from deepisp_tf.raw import cfa, color, geometry
from deepisp_tf.raw.io import RawRecord
from deepisp_tf.runtime import tiling
from deepisp_tf.runtime.profiling import StageTimes


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


def square_tile(runner: TileRunner) -> int:
    """Return the side of the runner's square, even tile; ValueError otherwise."""
    height, width = runner.tile_shape
    if height != width or height % 2:
        raise ValueError(f"the model's tile must be square with an even side, got {height}x{width}")
    return height


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
    """Yield (grid row, grid col, model input tile [tile, tile] float32) in row-major order.

    The model's input is the normalized RGGB mosaic, gamma-encoded. A tile at canonical offset
    (y, x) reads mosaic rows y - top .. with reflection, which is exactly
    `cfa.canonicalize(normalize(mosaic))[y:y+tile, x:x+tile]` inside the canonical
    mosaic (and a CFA-preserving reflection past it), without a full-frame float copy.
    """
    record, (top, left, _, _), grid = plan.record, plan.padding, plan.grid
    black = cfa.roll_sites(record.black_levels, top, left)  # per site of the canonical 2x2
    for row, y in enumerate(grid.ys):
        for col, x in enumerate(grid.xs):
            window = tiling.extract_tile(record.mosaic, y - top, x - left, grid.tile)
            normalized = color.normalize(window, "RGGB", black, record.white_level,
                                         record.wb_gains)
            yield row, col, color.gamma_compression(normalized).astype(np.float32)


def to_uint16(values: np.ndarray) -> np.ndarray:
    """Quantize float values in [0, 1] (clipped) to uint16, rounding to nearest."""
    scaled = np.clip(values, 0.0, 1.0)
    scaled *= np.float32(65535)
    scaled += np.float32(0.5)
    return scaled.astype(np.uint16)  # truncation of non-negative values: floor


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
    for start in range(0, image.shape[1], chunk):  # heighten every column
        out[:, start:start + chunk] = geometry.stretch(image[:, start:start + chunk],
                                                       pixel_aspect)
    return out


class Assembler:
    """Blend one image's tile outputs and crop/stretch them to the reference geometry.

    Keeps only the plan's geometry, not the record, so the mosaic can be freed as soon as its
    last tile is cut.
    """

    def __init__(self, plan: ImagePlan):
        self.path = plan.record.path
        self.padding = plan.padding
        self.pixel_aspect = plan.record.pixel_aspect
        self.render_size = tuple(plan.record.render_size)
        self.cam_to_srgb = np.asarray(plan.record.cam_to_srgb, np.float32)
        self._stitcher = tiling.StripStitcher(plan.grid, 3)
        self._image = np.empty((plan.padding[2], plan.padding[3], 3), np.uint16)
        self.tiles = 0

    def _write(self, first: int, rows: np.ndarray) -> None:
        """Write canonical rows [first, first + n) into the mosaic-geometry uint16 image."""
        top, left, height, width = self.padding
        skip = max(top - first, 0)  # canonical padding rows above the mosaic
        start = first + skip - top  # first mosaic row of the band
        band = cfa.decanonicalize(rows, (skip, left, min(len(rows) - skip, height - start), width))
        self._image[start:start + len(band)] = to_uint16(color.camera_to_srgb(band,
                                                                              self.cam_to_srgb))

    def add(self, row: int, col: int, rgb: np.ndarray) -> None:
        """Add the model's output [tile, tile, 3] (camera RGB) for the tile at grid (row, col)."""
        self.tiles += 1
        for first, rows in self._stitcher.add(row, col, rgb):
            self._write(first, rows)

    def finish(self) -> np.ndarray:
        """Return the image [H', W', 3] uint16 in the reference render's geometry."""
        for first, rows in self._stitcher.finish():
            self._write(first, rows)
        image = stretch_chunked(self._image, self.pixel_aspect)
        self._image = None
        if tuple(image.shape[:2]) != self.render_size:
            raise RuntimeError(f"{self.path}: output {image.shape[:2]} is not the render size "
                               f"{self.render_size}")
        return image


def timed_tiles(plan: ImagePlan, times: StageTimes | None
                ) -> Iterator[tuple[int, int, np.ndarray]]:
    """`iter_tiles`, adding the time spent cutting and normalizing each tile to stage "tile"."""
    tiles = iter_tiles(plan)
    while True:
        start = time.perf_counter()
        try:
            item = next(tiles)
        except StopIteration:
            return
        if times is not None:
            times.add("tile", time.perf_counter() - start)
        yield item


def run_tile(runner: TileRunner, bayer: np.ndarray, metadata: np.ndarray | None,
             times: StageTimes | None) -> np.ndarray:
    """Run one tile [tile, tile] through the model, timing it as stage "invoke"."""
    start = time.perf_counter()
    srgb = runner.run(bayer, metadata)
    if times is not None:
        times.add("invoke", time.perf_counter() - start)
    return srgb


def add_tile(assembler: Assembler, row: int, col: int, srgb: np.ndarray,
             times: StageTimes | None) -> None:
    """Blend one tile output into its image, timing it as stage "blend"."""
    start = time.perf_counter()
    assembler.add(row, col, srgb)
    if times is not None:
        times.add("blend", time.perf_counter() - start)


def finish_image(assembler: Assembler, times: StageTimes | None) -> np.ndarray:
    """Finish an image (last rows, crop, stretch), timing it as stage "finish"."""
    start = time.perf_counter()
    image = assembler.finish()
    if times is not None:
        times.add("finish", time.perf_counter() - start)
    return image


def infer_plan(plan: ImagePlan, runner: TileRunner, times: StageTimes | None = None
               ) -> tuple[np.ndarray, int]:
    """Render a planned record in the calling thread; return (image [H', W', 3] uint16, tiles)."""
    assembler = Assembler(plan)
    metadata = plan.metadata if runner.has_metadata else None
    for row, col, bayer in timed_tiles(plan, times):
        add_tile(assembler, row, col, run_tile(runner, bayer, metadata, times), times)
    return finish_image(assembler, times), assembler.tiles


def infer_record(record: RawRecord, runner: TileRunner, overlap: int | None = None,
                 times: StageTimes | None = None) -> np.ndarray:
    """Render a RAW record with the model, tile by tile.

    Args:
      record: from `read_raw`.
      runner: an opened model (`interpreter.Runner`).
      overlap: overlap between tiles (even, <= tile / 2); None: `default_overlap(tile)`.
      times: optional accumulator of the time per stage.

    Returns:
      [H', W', 3] uint16 sRGB with (H', W') == record.render_size.
    """
    tile = square_tile(runner)
    plan = plan_record(record, tile, default_overlap(tile) if overlap is None else overlap)
    return infer_plan(plan, runner, times)[0]


def peak_bytes_estimate(raw_size: tuple[int, int], pixel_aspect: float, tile: int) -> int:
    """Return the bytes `infer_record` allocates at most for one image, beyond the model.

    The uint16 mosaic [H, W], the uint16 output [H, W, 3] (and its stretched copy
    [H', W', 3] for non-square pixels, with one float64 chunk of lines), the stitcher's float32
    band of `tile` rows (values and weights), the float32 rows handed out and their uint16
    conversion, and a few tile-sized temporaries.
    """
    height, width = raw_size
    out_h, out_w = geometry.render_size(raw_size, pixel_aspect)
    canonical_width = width + 2 + tile
    mosaic = 2 * height * width
    output = 6 * height * width + (6 * out_h * out_w if pixel_aspect != 1 else 0)
    stretch_chunk = 8 * 3 * 256 * 2 * max(out_h, out_w) if pixel_aspect != 1 else 0
    band = 64 * tile * canonical_width  # float32 band state, rows handed out, uint16 cast
    tiles = 64 * tile * tile * 4 * 3
    return mosaic + output + stretch_chunk + band + tiles
