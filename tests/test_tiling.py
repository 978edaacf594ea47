"""Tiling and blending: grids, weights, exact stitching, and tiled == whole-image inference."""

import numpy as np
import pytest

import tflite_fixtures
from deepisp_tf.raw import cfa
from deepisp_tf.runtime import pipeline, tiling
from deepisp_tf.runtime.interpreter import Runner

SIZES = [(1, 1), (5, 7), (63, 64), (64, 64), (65, 200), (130, 131), (257, 99), (301, 302)]


@pytest.mark.parametrize("height,width", SIZES)
@pytest.mark.parametrize("tile,overlap", [(64, 16), (64, 32), (32, 0), (48, 6)])
def test_tile_grid_covers_image_at_even_offsets_with_overlap(height, width, tile, overlap):
    grid = tiling.tile_grid(height, width, tile, overlap)
    for offsets, length in ((grid.ys, height), (grid.xs, width)):
        assert all(offset % 2 == 0 for offset in offsets)
        assert offsets[0] == 0 and offsets[-1] + tile >= length
        assert offsets[-1] + tile <= max(length, tile) + 1       # at most one pixel past the end
        steps = np.diff(offsets)
        assert np.all(steps > 0) and np.all(tile - steps >= overlap)


@pytest.mark.parametrize("height,width", SIZES)
def test_blend_weights_sum_positive_everywhere(height, width):
    grid = tiling.tile_grid(height, width, 64, 16)
    total = np.zeros(grid.extent, np.float64)
    for row, y in enumerate(grid.ys):
        for col, x in enumerate(grid.xs):
            total[y:y + 64, x:x + 64] += grid.weights(row, col)
    assert total[:height, :width].min() > 0.05


@pytest.mark.parametrize("overlap", [4, 16, 32])
def test_blend_weights_of_neighbours_sum_to_one_across_overlap(overlap):
    tile = 64
    left = tiling.blend_weights(tile, overlap, sides=(False, False, False, True))
    right = tiling.blend_weights(tile, overlap, sides=(False, False, True, False))
    np.testing.assert_allclose(left[:, tile - overlap:] + right[:, :overlap], 1.0, atol=1e-6)
    assert np.all(left[:, :tile - overlap] == 1) and np.all(right[:, overlap:] == 1)
    dead = overlap // 4
    assert np.all(left[:, tile - dead:] == 0)                     # dead zone at the tile edge
    assert np.all(tiling.blend_weights(tile, overlap, sides=(False,) * 4) == 1)


@pytest.mark.parametrize("height,width", SIZES)
@pytest.mark.parametrize("channels", [None, 3])
def test_stitch_tiles_inverts_tile_image(height, width, channels):
    rng = np.random.default_rng(height * 1000 + width)
    shape = (height, width) if channels is None else (height, width, channels)
    image = rng.uniform(0, 1, shape).astype(np.float32)
    tiles, grid = tiling.tile_image(image, 32, 8)
    assert tiles.shape[:3] == (len(grid), 32, 32)
    np.testing.assert_allclose(tiling.stitch_tiles(tiles, grid), image, atol=1e-6)


def test_strip_stitcher_keeps_one_band_and_yields_rows_in_order():
    grid = tiling.tile_grid(500, 300, 64, 16)
    stitcher = tiling.StripStitcher(grid, 3)
    assert stitcher._values.shape == (64, grid.extent[1], 3)   # pylint: disable=protected-access
    rows_seen = []
    for index, (y, x) in enumerate(grid.positions):
        for first, rows in stitcher.add(index // len(grid.xs), index % len(grid.xs),
                                        np.full((64, 64, 3), 0.25, np.float32)):
            rows_seen.append((first, len(rows)))
    rows_seen += [(first, len(rows)) for first, rows in stitcher.finish()]
    starts = [first for first, _ in rows_seen]
    assert starts[0] == 0 and starts == sorted(starts)
    assert sum(count for _, count in rows_seen) == 500


@pytest.mark.parametrize("start,size,length", [(-5, 20, 7), (-1, 9, 3), (10, 40, 12), (0, 8, 1)])
def test_reflect_indices_keep_parity_and_stay_inside(start, size, length):
    indices = tiling.reflect_indices(start, size, length)
    assert indices.min() >= 0 and indices.max() < length
    if length > 1:
        assert np.all(indices % 2 == np.arange(start, start + size) % 2)


def test_extract_tile_past_border_keeps_cfa_phase():
    mosaic = cfa.mosaic(np.stack([np.full((10, 14), c, np.int64) for c in (0, 1, 2)], -1),
                        "RGGB")
    tile = tiling.extract_tile(mosaic, 6, 10, 16)
    np.testing.assert_array_equal(tile, cfa.mosaic(
        np.stack([np.full((16, 16), c, np.int64) for c in (0, 1, 2)], -1), "RGGB"))


@pytest.fixture(scope="module")
def tile_models(tmp_path_factory):
    """64x64 float tile models of the 'conv' and 'packed' kinds."""
    folder = tmp_path_factory.mktemp("tiling_models")
    return {kind: tflite_fixtures.write_model(folder, (64, 64), kind=kind)
            for kind in ("conv", "packed")}


@pytest.mark.parametrize("kind", ["conv", "packed"])
@pytest.mark.parametrize("size", [(150, 230), (64, 200), (202, 66)])
def test_tiled_inference_equals_whole_image_inference(tile_models, kind, size):
    """Every output pixel comes from a tile where it is >= overlap / 4 from the tile edge (or
    at the image border, where tile and whole image pad alike), so tiles == whole image."""
    rng = np.random.default_rng(7)
    image = rng.uniform(0, 1, size).astype(np.float32)
    metadata = rng.uniform(0.5, 1.5, 12).astype(np.float32)
    runner = Runner(tile_models[kind], delegate="none")
    tiles, grid = tiling.tile_image(image, 64, 24)
    tiled = tiling.stitch_tiles(np.stack([runner.run(tile, metadata) for tile in tiles]), grid)
    whole = tflite_fixtures.keras_predict(image, metadata, kind=kind)
    np.testing.assert_allclose(tiled, whole, atol=2e-5)
    assert np.abs(pipeline.to_uint16(tiled).astype(int)
                  - pipeline.to_uint16(whole).astype(int)).max() <= 2


def test_tiles_without_blending_dead_zone_would_differ(tile_models):
    """Control: overlap 0 stitches tile borders, where zero padding changes the output."""
    rng = np.random.default_rng(7)
    image = rng.uniform(0, 1, (150, 230)).astype(np.float32)
    metadata = rng.uniform(0.5, 1.5, 12).astype(np.float32)
    runner = Runner(tile_models["conv"], delegate="none")
    tiles, grid = tiling.tile_image(image, 64, 0)
    tiled = tiling.stitch_tiles(np.stack([runner.run(tile, metadata) for tile in tiles]), grid)
    whole = tflite_fixtures.keras_predict(image, metadata)
    assert np.abs(tiled - whole).max() > 1e-3
