"""The runtime's look-up tables against the reference colour functions (`deepisp_tf.raw.color`),
with stated tolerances, and the tensor quantization they fold in."""

import numpy as np
import pytest

from deepisp_tf.raw import color
from deepisp_tf.runtime import luts
from deepisp_tf.runtime.quantization import FLOAT32, Quantization

INT8 = Quantization(np.dtype(np.int8), 1 / 255, -128)    # the converter's [0, 1] int8 tensors
UINT8 = Quantization(np.dtype(np.uint8), 1 / 255, 0)
MATRICES = {
    "moderate": np.array([[1.6, -0.4, -0.2], [-0.3, 1.5, -0.2], [0.0, -0.5, 1.5]], np.float32),
    "strong": np.array([[2.2, -1.0, -0.2], [-0.4, 1.7, -0.3], [0.1, -0.9, 1.8]], np.float32),
}
LSB = 1 / 65535


@pytest.mark.parametrize("quantization", [FLOAT32, INT8, UINT8], ids=["float32", "int8", "uint8"])
@pytest.mark.parametrize("white_level", [1023.0, 4095.0, 16383.0, 65535.0, 900.5])
def test_input_table_encodes_every_raw_value_exactly_as_the_reference(quantization,
                                                                      white_level):
    """Every uint16 value at every RGGB site, below black and above white included."""
    black = np.array([[60, 64], [66, 70]], np.float32) * white_level / 4095
    gains = np.array([2.2, 1.0, 1.4], np.float32)
    table = luts.input_table(black, white_level, gains, quantization)
    window = np.arange(4 * 65536, dtype=np.int64).reshape(512, 512) % 65536
    window = window.astype(np.uint16)
    window[1::2] = window[0::2]                 # every value at the odd rows' sites too
    window[:, 1::2] = window[:, 0::2]
    expected = quantization.quantize(color.gamma_compression(
        color.normalize(window, "RGGB", black, white_level, gains)).astype(np.float32))
    got = luts.encode_tile(window, table)
    assert got.dtype == quantization.dtype
    np.testing.assert_array_equal(got, expected)


def test_encode_tile_rejects_windows_that_are_not_uint16():
    table = luts.input_table(np.zeros((2, 2)), 1023, np.ones(3), FLOAT32)
    with pytest.raises(ValueError, match="uint16"):
        luts.encode_tile(np.zeros((4, 4), np.int32), table)


def _outputs(seed: int) -> np.ndarray:
    """Random gamma camera RGB [64, 512, 3] in [0, 1], a quarter of it dark."""
    rgb = np.random.default_rng(seed).uniform(0, 1, (64, 512, 3)).astype(np.float32)
    rgb[:16] *= 0.1
    return rgb


@pytest.mark.parametrize("matrix", MATRICES, ids=list(MATRICES))
@pytest.mark.parametrize("quantization,max_steps", [(FLOAT32, 16), (INT8, 4), (UINT8, 4)],
                         ids=["float32", "int8", "uint8"])
def test_output_colour_matches_camera_to_srgb(matrix, quantization, max_steps):
    """16-bit sRGB within `max_steps` / 65535 of the float64 reference (float outputs lose a
    little more: they are quantized to 16 bits before the expansion table), 0.5 on average."""
    stored = quantization.quantize(_outputs(5))
    expected = luts.to_uint16(color.camera_to_srgb(quantization.dequantize(stored),
                                                   MATRICES[matrix])).astype(int)
    out = np.zeros(stored.shape, np.uint16)
    got = luts.OutputColour(quantization, MATRICES[matrix]).to_srgb(stored, out=out)
    assert got is out and got.dtype == np.uint16
    difference = np.abs(got.astype(int) - expected)
    assert difference.max() <= max_steps
    assert difference.mean() <= 0.5


def test_output_colour_clips_like_the_reference():
    """Saturated and negative linear values (a matrix with large off-diagonal terms) clip to
    0 and 65535, as `camera_to_srgb` clips to [0, 1]."""
    rgb = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]],
                   np.float32)
    got = luts.OutputColour(FLOAT32, MATRICES["strong"]).to_srgb(rgb).astype(int)
    expected = luts.to_uint16(color.camera_to_srgb(rgb, MATRICES["strong"])).astype(int)
    clipped = (expected == 0) | (expected == 65535)
    assert clipped.sum() == 11
    np.testing.assert_array_equal(got[clipped], expected[clipped])
    assert np.abs(got - expected).max() <= 4


@pytest.mark.parametrize("quantization", [FLOAT32, INT8, UINT8], ids=["float32", "int8", "uint8"])
def test_output_tables_are_monotonic_from_black_to_white(quantization):
    expansion = luts.expansion_table(quantization)
    if quantization.is_float:       # indexed by round(value * 65535)
        encoded = np.arange(len(expansion)) / 65535.0
    else:                           # indexed by the stored byte
        encoded = quantization.dequantize(np.arange(256, dtype=np.uint8).view(quantization.dtype))
    linear = expansion[np.argsort(encoded)]
    assert np.all(np.diff(linear) >= 0) and linear[0] == 0 and linear[-1] == 1
    compression = luts.compression_table()
    assert np.all(np.diff(compression.astype(int)) >= 0)
    assert compression[0] == 0 and compression[-1] == 65535


def test_quantization_round_trips_and_saturates():
    values = np.array([-0.5, 0.0, 0.25, 1.0, 1.5], np.float32)
    np.testing.assert_array_equal(INT8.quantize(values), [-128, -128, -64, 127, 127])
    np.testing.assert_allclose(INT8.dequantize(INT8.quantize(values)),
                               np.clip(values, 0, 1), atol=0.5 / 255)
    assert FLOAT32.quantize(values).dtype == np.float32 and FLOAT32.is_float
    with pytest.raises(ValueError, match="without quantization parameters"):
        Quantization.of({"name": "rgb", "dtype": np.int8, "quantization": (0.0, 0)})
