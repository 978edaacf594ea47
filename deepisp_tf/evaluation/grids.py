"""The per-image grid of a report: input preview | classic | ours | reference | error map."""

from __future__ import annotations

import re

import cv2
import numpy as np

from deepisp_tf import atomic
from deepisp_tf.raw import cfa, color
from deepisp_tf.raw.io import RawRecord
from deepisp_tf.visualization import ERROR_GAIN, error_map, packed_preview  # noqa: F401

GRID_MAX_WIDTH = 1600    # pixels, whole grid
GRID_MAX_HEIGHT = 480    # pixels, one cell
GRID_GAP, GRID_HEADER = 4, 22


def cell_size(render_size: tuple[int, int], cells: int = 5) -> tuple[int, int]:
    """Return (h, w) of one grid cell: the image scaled so `cells` fit in GRID_MAX_WIDTH."""
    height, width = render_size
    scale = min(1.0, (GRID_MAX_WIDTH - GRID_GAP * (cells - 1)) / cells / width,
                GRID_MAX_HEIGHT / height)
    return max(1, round(height * scale)), max(1, int(width * scale))


def downscale(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-downscale an [H, W, 3] uint16 image to `size` (h, w) as uint8."""
    small = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return np.round(small.astype(np.float32) / 257).astype(np.uint8)


def input_preview(record: RawRecord, size: tuple[int, int]) -> np.ndarray:
    """Return what the model sees, small: the white-balanced mosaic as camera RGB, gamma-coded.

    Samples one 2x2 CFA block per output pixel or so (no full-frame float copy), packs it to
    (R, mean G, B), gamma-compresses it and resizes it to `size` (the render geometry).
    """
    height, width = record.mosaic.shape
    step = max(2, int(min(height / size[0], width / size[1])) // 2 * 2)
    rows, cols = (np.stack([s, s + 1], 1).ravel() for s in (np.arange(0, height - 1, step),
                                                             np.arange(0, width - 1, step)))
    small = color.normalize(record.mosaic[np.ix_(rows, cols)], record.pattern,
                            record.black_levels, record.white_level, record.gains_2x2)
    preview = packed_preview(color.gamma_compression(cfa.canonicalize(small, record.pattern)[0]))
    rgb = cv2.resize(preview.astype(np.float32), (size[1], size[0]),
                     interpolation=cv2.INTER_AREA)
    return np.round(rgb * 255).astype(np.uint8)


def compose_grid(cells: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """Place labelled [h, w, 3] uint8 cells side by side: [GRID_HEADER + h, W, 3] uint8 RGB."""
    height, width = cells[0][1].shape[:2]
    grid = np.zeros((GRID_HEADER + height, len(cells) * (width + GRID_GAP) - GRID_GAP, 3),
                    np.uint8)
    for index, (label, cell) in enumerate(cells):
        x = index * (width + GRID_GAP)
        grid[GRID_HEADER:, x:x + width] = cell
        cv2.putText(grid, label, (x + 3, GRID_HEADER - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return grid


def write_png(path: str, rgb: np.ndarray) -> str:
    """Write an [H, W, 3] uint8 RGB image as PNG, atomically."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"{path}: PNG encoding failed")
    return atomic.write_bytes(path, encoded.tobytes())


def grid_name(index: int, name: str) -> str:
    """Return a unique, file-system-safe grid file name for the `index`-th image."""
    return f"{index:04d}_" + re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") + ".png"
