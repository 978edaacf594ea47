"""Tiling and stitching: grids, seam weights, exact stitching, tiled == whole-image inference."""

import dataclasses

import numpy as np
import pytest

import tflite_fixtures
from conftest import sample
from deepisp_tf import metrics
from deepisp_tf.raw import cfa
from deepisp_tf.raw.io import read_raw
from deepisp_tf.runtime import luts, pipeline, tiling
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
@pytest.mark.parametrize("tile,overlap", [(64, 16), (48, 6), (32, 0)])
def test_stitching_weights_sum_to_one_everywhere(height, width, tile, overlap):
    grid = tiling.tile_grid(height, width, tile, overlap)
    total = np.zeros(grid.extent, np.float64)
    for row, y in enumerate(grid.ys):
        for col, x in enumerate(grid.xs):
            total[y:y + tile, x:x + tile] += grid.weights(row, col)
    np.testing.assert_allclose(total[:height, :width], 1.0, atol=1e-6)


@pytest.mark.parametrize("overlap", [4, 16, 32])
def test_seam_is_centred_in_the_overlap_away_from_tile_edges(overlap):
    offsets = (0, 64 - overlap, 128 - 2 * overlap)
    first, middle, last = (tiling.axis_weights(offsets, k, 64, tiling.seam_width(overlap))
                           for k in range(3))
    np.testing.assert_allclose(first[64 - overlap:] + middle[:overlap], 1.0, atol=1e-6)
    margin = overlap // 4
    assert np.all(first[64 - margin:] == 0) and np.all(middle[:margin] == 0)   # tile edges
    assert np.all(middle[-margin:] == 0) and np.all(last[:margin] == 0)
    assert np.all(first[:64 - overlap + margin] == 1) and np.all(last[overlap - margin:] == 1)
    assert 0 < first[64 - overlap // 2] < 1                       # blended at the cut only
    assert tiling.seam_width(overlap) == overlap // 2


@pytest.mark.parametrize("height,width", SIZES)
@pytest.mark.parametrize("channels", [None, 3])
def test_stitch_tiles_inverts_tile_image(height, width, channels):
    rng = np.random.default_rng(height * 1000 + width)
    shape = (height, width) if channels is None else (height, width, channels)
    image = rng.uniform(0, 1, shape).astype(np.float32)
    tiles, grid = tiling.tile_image(image, 32, 8)
    assert tiles.shape[:3] == (len(grid), 32, 32)
    np.testing.assert_allclose(tiling.stitch_tiles(tiles, grid), image, atol=1e-6)


def test_strip_stitcher_keeps_one_strip_and_yields_rows_in_order():
    grid = tiling.tile_grid(500, 300, 64, 16)
    stitcher = tiling.StripStitcher(grid, 3)
    assert stitcher._strip.shape == (64, 300, 3)   # pylint: disable=protected-access
    rows_seen = []
    for index, _ in enumerate(grid.positions):
        for first, rows in stitcher.add(index // len(grid.xs), index % len(grid.xs),
                                        np.full((64, 64, 3), 0.25, np.float32)):
            rows_seen.append((first, len(rows)))
        assert stitcher.done == (index == len(grid) - 1)
    assert len(rows_seen) == len(grid.ys)                    # one block per row of tiles
    assert [first for first, _ in rows_seen] == list(
        np.cumsum([0] + [count for _, count in rows_seen[:-1]]))   # contiguous, in order
    assert sum(count for _, count in rows_seen) == 500


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.uint8])
def test_strip_stitcher_equals_the_weighted_sum_of_tiles_in_their_dtype(dtype):
    """Copies plus seam blends compute sum(weights * tile); integer tiles are rounded once per
    seam, so within one step where a row seam crosses a column seam."""
    grid = tiling.tile_grid(150, 230, 64, 24)
    rng = np.random.default_rng(3)
    tiles = rng.uniform(0, 120, (len(grid), 64, 64, 3)).astype(dtype)
    expected = np.zeros(grid.extent + (3,), np.float64)
    for index, (y, x) in enumerate(grid.positions):
        weights = grid.weights(index // len(grid.xs), index % len(grid.xs))[..., None]
        expected[y:y + 64, x:x + 64] += tiles[index] * weights
    stitched = tiling.stitch_tiles(tiles, grid)
    assert stitched.dtype == dtype and stitched.shape == (150, 230, 3)
    tolerance = 1e-4 if dtype == np.float32 else 1.0
    assert np.abs(stitched - expected[:150, :230]).max() <= tolerance


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
    return {kind: tflite_fixtures.write_model(folder, (64, 64), kind=kind, with_metadata=False)
            for kind in ("conv", "packed")}


@pytest.mark.parametrize("kind", ["conv", "packed"])
@pytest.mark.parametrize("size", [(150, 230), (64, 200), (202, 66)])
def test_tiled_inference_equals_whole_image_inference(tile_models, kind, size):
    """Every output pixel comes from a tile where it is >= overlap / 4 from the tile edge (or
    at the image border, where tile and whole image pad alike), so with a receptive radius
    <= 3 tiles == whole image."""
    image = np.random.default_rng(7).uniform(0, 1, size).astype(np.float32)
    runner = Runner(tile_models[kind], delegate="none")
    tiles, grid = tiling.tile_image(image, 64, 24)
    tiled = tiling.stitch_tiles(np.stack([runner.run(tile) for tile in tiles]), grid)
    whole = tflite_fixtures.keras_predict(image, None, kind=kind)
    np.testing.assert_allclose(tiled, whole, atol=2e-5)
    assert np.abs(luts.to_uint16(tiled).astype(int)
                  - luts.to_uint16(whole).astype(int)).max() <= 2


def test_tiles_without_overlap_would_differ(tile_models):
    """Control: overlap 0 stitches tile borders, where zero padding changes the output."""
    image = np.random.default_rng(7).uniform(0, 1, (150, 230)).astype(np.float32)
    runner = Runner(tile_models["conv"], delegate="none")
    tiles, grid = tiling.tile_image(image, 64, 0)
    tiled = tiling.stitch_tiles(np.stack([runner.run(tile) for tile in tiles]), grid)
    whole = tflite_fixtures.keras_predict(image, None)
    assert np.abs(tiled - whole).max() > 1e-3


SEAM_CROP = 384


@pytest.fixture(scope="module")
def unet_models(tmp_path_factory):
    """The "unet" fixture (receptive field ~100 px) as a 64x64 tile model and a 384x384
    one-tile model, same weights."""
    folder = tmp_path_factory.mktemp("seam_models")
    return {size: tflite_fixtures.write_model(folder, (size, size), kind="unet",
                                              with_metadata=False)
            for size in (64, SEAM_CROP)}


def test_seams_on_a_real_file_are_negligible_against_one_whole_image_tile(unet_models):
    """A deep model's output changes near tile borders; with the default overlap (tile / 16)
    the stitched image of a real file equals one whole-image tile to > 50 dB (overlap 0, the
    control, does not)."""
    record = read_raw(sample("PowerShotS40_CRW_0101"))
    crop = np.ascontiguousarray(record.mosaic[600:600 + SEAM_CROP, 800:800 + SEAM_CROP])
    record = dataclasses.replace(record, mosaic=crop, render_size=crop.shape)
    whole = pipeline.infer_record(record, Runner(unet_models[SEAM_CROP]), 0)
    tiles = Runner(unet_models[64])
    tiled = pipeline.infer_record(record, tiles)               # default overlap: 4
    assert metrics.psnr(whole, tiled, border=0) > 50
    assert metrics.psnr(whole, pipeline.infer_record(record, tiles, 0), border=0) < 45
