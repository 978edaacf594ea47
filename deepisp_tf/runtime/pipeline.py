"""Full-image inference: RAW record -> 16-bit sRGB in the reference render's exact geometry.

Per image: the mosaic is cut into overlapping tiles of its canonical RGGB form (DESIGN §2.2:
`cfa.canonicalize` pads one mirrored row/column for other patterns); each tile is turned into
the model's input (normalized, white-balanced, gamma-encoded, quantized: one table look-up per
pixel, `luts.encode_tile`) only when it is needed, run through the model, and its output is
stitched into a strip of rows (`tiling.StripStitcher`, in the output's own dtype). Every
finished strip is cropped back to the mosaic's geometry (`cfa.decanonicalize`) and mapped from
gamma camera RGB to 16-bit sRGB with the file's colour matrix (`luts.OutputColour`, the
`color.camera_to_srgb` of the model contract). Non-square-pixel cameras are then stretched to
the render size (`stretch_lines`). Memory: the uint16 mosaic, the uint16 output and one strip
of tile rows; no full-frame float copy (`peak_bytes_estimate`).

`engine.Engine` runs these steps for many files with preprocessing threads.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Iterator, Protocol, runtime_checkable

import numpy as np

from deepisp_tf.raw import cfa, geometry
from deepisp_tf.raw.io import RawRecord
from deepisp_tf.runtime import luts, tiling
from deepisp_tf.runtime.quantization import FLOAT32, Quantization
from deepisp_tf.runtime.profiling import StageTimes

COLOUR_CHUNK_PIXELS = 1 << 16  # pixels mapped to sRGB at a time (float32 temporaries: 768 KB)


class TileRunner(Protocol):
    """What the pipeline needs from a model runner (see `interpreter.Runner`): float32 tiles
    in, float32 gamma camera RGB out."""

    tile_shape: tuple[int, int]
    has_metadata: bool

    def run(self, bayer_tile: np.ndarray, metadata: np.ndarray | None = None) -> np.ndarray:
        ...


@runtime_checkable
class StoredTileRunner(Protocol):
    """A runner that also takes and returns tensors as its model stores them (`Runner`)."""

    input_quantization: Quantization
    output_quantization: Quantization

    def invoke(self, bayer_tile: np.ndarray, metadata: np.ndarray | None = None) -> np.ndarray:
        ...


def runner_quantization(runner: TileRunner) -> tuple[Quantization, Quantization]:
    """Return how the runner's model stores its (input, output); float32 for `run`-only ones."""
    if isinstance(runner, StoredTileRunner):
        return runner.input_quantization, runner.output_quantization
    return FLOAT32, FLOAT32


def model_metadata(record: RawRecord) -> np.ndarray:
    """Return the model's metadata input [12] float32: cam_to_srgb row-major, then wb_gains."""
    return np.concatenate([np.asarray(record.cam_to_srgb, np.float32).reshape(9),
                           np.asarray(record.wb_gains, np.float32).reshape(3)])


def default_overlap(tile: int) -> int:
    """Return the default overlap of a tile side: tile / 16 rounded down to even, at least 2
    (256 -> 16).

    With seams centred in the overlap, the trained default model's 256-pixel tiles stitched
    with overlap 16 are within 75 dB PSNR of one whole-image tile on a real file (78.7 dB at
    32, 52 dB at 0); tests/test_tiling.py states the same for a deep fixture model.
    """
    return max(2, tile // 16 // 2 * 2)


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
      table: `luts.input_table` of the record for the model's input.
    """

    record: RawRecord
    padding: tuple[int, int, int, int]
    grid: tiling.TileGrid
    metadata: np.ndarray
    table: np.ndarray


def plan_record(record: RawRecord, tile: int, overlap: int,
                quantization: Quantization = FLOAT32) -> ImagePlan:
    """Return the tiling plan of a record (its canonical geometry, tile grid and input table).

    Args:
      record: from `read_raw`, with a uint16 mosaic.
      tile: the model's tile side.
      overlap: overlap between tiles.
      quantization: how the model stores its input.
    """
    if record.mosaic.dtype != np.uint16:
        raise ValueError(f"{record.path}: the mosaic must be uint16, got {record.mosaic.dtype}")
    height, width = record.mosaic.shape
    top, left = cfa.red_offset(record.pattern)
    canonical = (height + top + (height + top) % 2, width + left + (width + left) % 2)
    grid = tiling.tile_grid(canonical[0], canonical[1], tile, overlap)
    black = cfa.roll_sites(record.black_levels, top, left)  # per site of the canonical 2x2
    gains = cfa.roll_sites(record.gains_2x2, top, left)  # LibRaw's per-site pre_mul
    table = luts.input_table(black, record.white_level, gains, quantization)
    return ImagePlan(record, (top, left, height, width), grid, model_metadata(record), table)


def iter_tiles(plan: ImagePlan) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (grid row, grid col, model input tile [tile, tile]) in row-major order.

    The model's input is the normalized RGGB mosaic, gamma-encoded, as the model stores it. A
    tile at canonical offset (y, x) reads mosaic rows y - top .. with reflection, which is
    exactly `cfa.canonicalize(gamma_compression(normalize(mosaic)))[y:y+tile, x:x+tile]`
    inside the canonical mosaic (and a CFA-preserving reflection past it), without a
    full-frame float copy.
    """
    record, (top, left, _, _), grid = plan.record, plan.padding, plan.grid
    for row, y in enumerate(grid.ys):
        for col, x in enumerate(grid.xs):
            window = tiling.extract_tile(record.mosaic, y - top, x - left, grid.tile)
            yield row, col, luts.encode_tile(window, plan.table)


def stretch_lines(image: np.ndarray, pixel_aspect: float) -> np.ndarray:
    """`geometry.stretch` an [H, W, C] image with one line copy per output line.

    LibRaw's stretch makes every output row (pixel aspect < 1) or column (> 1) a copy of one
    input line (`geometry.stretch_sources`), so this equals `geometry.stretch` exactly.
    No temporaries beyond one line: rows are copied one by one (faster than `np.take` for
    them), columns by one unbuffered `np.take` (~4x faster than strided column copies).
    """
    if pixel_aspect == 1:
        return image
    out_h, out_w = geometry.render_size(image.shape[:2], pixel_aspect)
    out = np.empty((out_h, out_w) + image.shape[2:], image.dtype)
    axis = 0 if pixel_aspect < 1 else 1
    index = geometry.stretch_sources(out.shape[axis], pixel_aspect)  # LibRaw repeats lines
    lines = np.minimum(index, image.shape[axis] - 1)
    if axis == 1:  # mode="clip": unbuffered into `out` (the indices are in range already)
        np.take(image, lines, axis=1, out=out, mode="clip")
        return out
    for line, lower in enumerate(lines):
        out[line] = image[lower]
    return out


class Assembler:
    """Stitch one image's tile outputs, map them to sRGB and crop/stretch them to the reference
    geometry.

    Keeps only the plan's geometry and colour, not the record, so the mosaic can be freed as
    soon as its last tile is cut.
    """

    def __init__(self, plan: ImagePlan, quantization: Quantization = FLOAT32):
        """Prepare the image of a plan whose tile outputs are stored as `quantization` says."""
        self.path = plan.record.path
        self.padding = plan.padding
        self.pixel_aspect = plan.record.pixel_aspect
        self.render_size = tuple(plan.record.render_size)
        self._colour = luts.OutputColour(quantization, plan.record.cam_to_srgb)
        self._stitcher = tiling.StripStitcher(plan.grid, 3, quantization.dtype)
        self._image = np.empty((plan.padding[2], plan.padding[3], 3), np.uint16)
        self.tiles = 0

    def _write(self, first: int, rows: np.ndarray) -> None:
        """Write canonical rows [first, first + n) into the mosaic-geometry uint16 image."""
        top, left, height, width = self.padding
        skip = max(top - first, 0)  # canonical padding rows above the mosaic
        start = first + skip - top  # first mosaic row of the band
        band = cfa.decanonicalize(rows, (skip, left, min(len(rows) - skip, height - start), width))
        step = max(1, COLOUR_CHUNK_PIXELS // width)  # rows per chunk: temporaries stay in cache
        for first_row in range(0, len(band), step):
            chunk = band[first_row:first_row + step]
            self._colour.to_srgb(chunk, out=self._image[start + first_row:
                                                        start + first_row + len(chunk)])

    def add(self, row: int, col: int, rgb: np.ndarray) -> None:
        """Add the model's output [tile, tile, 3] (gamma camera RGB, as the model stores it) for
        the tile at grid (row, col)."""
        self.tiles += 1
        for first, rows in self._stitcher.add(row, col, rgb):
            self._write(first, rows)

    def finish(self) -> np.ndarray:
        """Return the image [H', W', 3] uint16 in the reference render's geometry."""
        if not self._stitcher.done:
            raise RuntimeError(f"{self.path}: finished after {self.tiles} of "
                               f"{len(self._stitcher.grid)} tiles")
        image = stretch_lines(self._image, self.pixel_aspect)
        self._image = None
        if tuple(image.shape[:2]) != self.render_size:
            raise RuntimeError(f"{self.path}: output {image.shape[:2]} is not the render size "
                               f"{self.render_size}")
        return image


def timed_tiles(plan: ImagePlan, times: StageTimes | None
                ) -> Iterator[tuple[int, int, np.ndarray]]:
    """`iter_tiles`, adding the time spent cutting and encoding each tile to stage "tile"."""
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
    """Run one model input tile [tile, tile] (as the model stores it: `runner_quantization`)
    through the model, timing it as stage "invoke"; return its output as stored."""
    start = time.perf_counter()
    if isinstance(runner, StoredTileRunner):
        rgb = runner.invoke(bayer, metadata)
    else:
        rgb = runner.run(bayer, metadata)
    if times is not None:
        times.add("invoke", time.perf_counter() - start)
    return rgb


def add_tile(assembler: Assembler, row: int, col: int, rgb: np.ndarray,
             times: StageTimes | None) -> None:
    """Stitch one tile output into its image (and colour its finished rows), timing it as stage
    "blend"."""
    start = time.perf_counter()
    assembler.add(row, col, rgb)
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
    assembler = Assembler(plan, runner_quantization(runner)[1])
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
    plan = plan_record(record, tile, default_overlap(tile) if overlap is None else overlap,
                       runner_quantization(runner)[0])
    return infer_plan(plan, runner, times)[0]


def peak_bytes_estimate(raw_size: tuple[int, int], pixel_aspect: float, tile: int) -> int:
    """Return the bytes `infer_record` allocates at most for one image, beyond the model.

    The uint16 mosaic [H, W], the uint16 output [H, W, 3] (and its stretched copy
    [H', W', 3] for non-square pixels), the stitcher's strip of `tile` rows and its seam rows
    (float32 at most), the colour temporaries of one chunk of pixels, the input table and a
    few tile-sized temporaries.
    """
    height, width = raw_size
    out_h, out_w = geometry.render_size(raw_size, pixel_aspect)
    canonical_width = width + 2
    mosaic = 2 * height * width
    output = 6 * height * width + (6 * out_h * out_w if pixel_aspect != 1 else 0)
    strip = 12 * (tile + tile // 4) * canonical_width
    colour = 36 * max(COLOUR_CHUNK_PIXELS, canonical_width)  # 3 x (u16, f32, f32, u16) per px
    table = 4 * 4 * luts.LEVELS
    tiles = 64 * tile * tile * 4 * 3
    return mosaic + output + strip + colour + table + tiles
