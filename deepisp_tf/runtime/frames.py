"""Synthetic RAW frames of any size, for benchmarks and memory probes (no file, or a DNG)."""

from __future__ import annotations

import numpy as np

from deepisp_tf.config import CAMERA_XYZ_MATRICES
from deepisp_tf.raw import dng, geometry
from deepisp_tf.raw.io import RawRecord


def synthetic_mosaic(height: int, width: int, white_level: int = 4095, black: int = 64,
                     seed: int = 0) -> np.ndarray:
    """Return a [height, width] uint16 test mosaic (gradients + noise), built a band at a time."""
    rng = np.random.default_rng(seed)
    mosaic = np.empty((height, width), np.uint16)
    columns = np.arange(width, dtype=np.float32)
    span = white_level - black
    for start in range(0, height, 512):
        rows = np.arange(start, min(start + 512, height), dtype=np.float32)[:, None]
        values = (0.5 + 0.4 * np.sin(rows / 97.0) * np.cos(columns / 131.0)) * span + black
        values += rng.normal(0, 8, values.shape).astype(np.float32)
        mosaic[start:start + len(rows)] = np.clip(values, 0, white_level).astype(np.uint16)
    return mosaic


def synthetic_record(height: int, width: int, pattern: str = "RGGB", seed: int = 0,
                     pixel_aspect: float = 1.0) -> RawRecord:
    """Return a RawRecord of a synthetic mosaic [height, width] (no file behind it)."""
    return RawRecord(
        path=f"<synthetic {height}x{width} {pattern}>",
        mosaic=synthetic_mosaic(height, width, seed=seed), pattern=pattern,
        black_levels=np.full((2, 2), 64, np.float32), white_level=4095.0,
        wb_gains=np.array([2.0, 1.0, 1.6], np.float32), wb_source="as_shot",
        cam_to_srgb=np.eye(3, dtype=np.float32), pixel_aspect=pixel_aspect,
        render_size=geometry.render_size((height, width), pixel_aspect), camera="synthetic")


def write_synthetic_dng(path: str, megapixels: float) -> tuple[int, int]:
    """Write an RGGB 12-bit DNG of about `megapixels` (4:3); return its (height, width)."""
    height = int(round((megapixels * 1e6 * 3 / 4) ** 0.5 / 2)) * 2
    width = int(round(megapixels * 1e6 / height / 2)) * 2
    dng.write_dng(path, synthetic_mosaic(height, width), "RGGB", 64, 4095,
                  np.reshape(CAMERA_XYZ_MATRICES["sony_a7"], (3, 3)), (0.5, 1.0, 0.625))
    return height, width
