"""The packed-IO layout of a model: RGGB planes in, depth-to-space blocks out (strided copies).

A packed-IO model (`bayer` [1, h/2, w/2, 4] RGGB planes, `rgb` [1, h/2, w/2, 12] in
depth-to-space order; `tools.convert_tflite --packed_io`) keeps the tile contract of a plain one:
`Runner.invoke` packs the [h, w] tile and unpacks the output with these copies (~0.1 ms per
256x256 int8 tile), where XNNPACK spends ~0.8 ms on the in-model pack conv and depth-to-space.
"""

from __future__ import annotations

import numpy as np


def pack_planes(tile: np.ndarray) -> np.ndarray:
    """Return the [h/2, w/2, 4] planes (R, G1, G2, B) of an RGGB tile [h, w]: `cfa.pack`.

    Each horizontal pair of sites is viewed as one 2x wider unsigned integer, so the copy moves
    [h/2, w/2, 2] elements: ~14x faster than `cfa.pack`'s 4-D transpose (12 vs 170 us for a
    256x256 int8 tile), which would eat a fifth of what a packed model saves.
    """
    height, width = tile.shape
    tile = np.ascontiguousarray(tile)
    pairs = tile.view(np.dtype(f"u{2 * tile.itemsize}")).reshape(height // 2, 2, width // 2)
    planes = np.empty((height // 2, width // 2, 2), pairs.dtype)
    planes[..., 0] = pairs[:, 0]
    planes[..., 1] = pairs[:, 1]
    return planes.view(tile.dtype).reshape(height // 2, width // 2, 4)


def unpack_output(packed: np.ndarray, channels: int = 3) -> np.ndarray:
    """Return the [2h, 2w, C] image of a packed output [h, w, 4 * C] (depth-to-space: channel
    C * (2 * dy + dx) + c is colour c of pixel (dy, dx) of each 2x2 block).

    The 2 * C values of row dy of a block are contiguous, so each is moved as one opaque
    element: ~2x faster than the 5-D transpose (83 vs 160 us for a 128x128x12 int8 output).
    """
    height, width = packed.shape[:2]
    rows = np.ascontiguousarray(packed).view(np.dtype((np.void, 2 * channels * packed.itemsize)))
    blocks = np.ascontiguousarray(rows.reshape(height, width, 2).transpose(0, 2, 1))
    return blocks.view(packed.dtype).reshape(2 * height, 2 * width, channels)
