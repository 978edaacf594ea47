"""CFA canonicalization, mosaic/unmosaic and pack/unpack."""

import numpy as np
import pytest

from deepisp_tf.raw import cfa


def _coded_rgb(height: int, width: int) -> np.ndarray:
    """An image whose value says its channel (1, 2, 3) and position (x 1000)."""
    rows, cols = np.mgrid[:height, :width]
    position = (rows * width + cols) * 10
    return np.stack([position + 1, position + 2, position + 3], axis=-1).astype(np.int64)


@pytest.mark.parametrize("pattern", cfa.BAYER_PATTERNS)
@pytest.mark.parametrize("shape", [(6, 8), (7, 9), (5, 6)])
def test_canonicalize_any_pattern_gives_rggb_with_even_sides(pattern, shape):
    mosaic = cfa.mosaic(_coded_rgb(*shape), pattern)
    rggb, _ = cfa.canonicalize(mosaic, pattern)
    channel = rggb % 10
    assert rggb.shape[0] % 2 == 0 and rggb.shape[1] % 2 == 0
    assert np.all(channel[0::2, 0::2] == 1)
    assert np.all(channel[0::2, 1::2] == 2) and np.all(channel[1::2, 0::2] == 2)
    assert np.all(channel[1::2, 1::2] == 3)


@pytest.mark.parametrize("pattern", cfa.BAYER_PATTERNS)
def test_decanonicalize_round_trips_to_original_geometry(pattern):
    mosaic = cfa.mosaic(_coded_rgb(7, 10), pattern)
    rggb, padding = cfa.canonicalize(mosaic, pattern)
    np.testing.assert_array_equal(cfa.decanonicalize(rggb, padding), mosaic)


@pytest.mark.parametrize("pattern", cfa.BAYER_PATTERNS)
def test_mosaic_of_unmosaic_round_trips(pattern):
    mosaic = np.random.default_rng(0).integers(0, 4096, (6, 10)).astype(np.uint16)
    sparse = cfa.unmosaic(mosaic, pattern)
    np.testing.assert_array_equal(cfa.mosaic(sparse, pattern), mosaic)
    assert np.count_nonzero(sparse.sum(-1) != mosaic.astype(np.int64)) == 0


def test_unpack_of_pack_round_trips_and_orders_planes_r_g1_g2_b():
    rggb = cfa.mosaic(_coded_rgb(4, 6), "RGGB")
    planes = cfa.pack(rggb)
    assert planes.shape == (2, 3, 4)
    np.testing.assert_array_equal(planes[..., 0] % 10, 1)
    np.testing.assert_array_equal(planes[..., 3] % 10, 3)
    np.testing.assert_array_equal(cfa.unpack(planes), rggb)


def test_shift_pattern_and_red_offset_agree():
    for pattern in cfa.BAYER_PATTERNS:
        assert cfa.shift_pattern(pattern, *cfa.red_offset(pattern)) == "RGGB"


def test_invalid_pattern_raises_value_error():
    with pytest.raises(ValueError, match="not a Bayer pattern"):
        cfa.channel_map("RGBW")
    with pytest.raises(ValueError, match="even"):
        cfa.pack(np.zeros((3, 4)))
