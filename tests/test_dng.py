"""Tests of deepisp_tf.raw.dng: Bayer DNGs read back bit-exactly through rawpy and read_raw with
their metadata, LinearRaw DNGs are rejected, and writes are atomic."""

import os

import numpy as np
import pytest
import rawpy
import tifffile

from deepisp_tf.config import CAMERA_XYZ_MATRICES
from deepisp_tf.raw import cfa, dng
from deepisp_tf.raw.io import RawReadError, cam_to_srgb_from_xyz, read_raw

XYZ_TO_CAM = np.reshape(CAMERA_XYZ_MATRICES["canon_eos_550d"], (3, 3))
NEUTRAL = np.array([0.5, 1.0, 0.625])
WHITE = 4095


def random_mosaic(seed: int, shape=(34, 50)) -> np.ndarray:
    """Return a random 12-bit mosaic that reaches the white level (so LibRaw keeps it)."""
    mosaic = np.random.default_rng(seed).integers(0, WHITE + 1, shape).astype(np.uint16)
    mosaic[0, 0] = WHITE
    return mosaic


@pytest.mark.parametrize("pattern", cfa.BAYER_PATTERNS)
def test_write_dng_reads_back_bit_exact_for_every_pattern(tmp_path, pattern):
    mosaic = random_mosaic(cfa.BAYER_PATTERNS.index(pattern))
    path = dng.write_dng(tmp_path / "frame.dng", mosaic, pattern, 128, WHITE, XYZ_TO_CAM, NEUTRAL)
    with rawpy.imread(path) as raw:
        np.testing.assert_array_equal(raw.raw_image_visible, mosaic)
        assert raw.raw_type == rawpy.RawType.Flat
    record = read_raw(path)
    np.testing.assert_array_equal(record.mosaic, mosaic)
    assert record.pattern == pattern
    np.testing.assert_array_equal(record.black_levels, np.full((2, 2), 128.0))
    assert record.white_level == WHITE
    assert record.wb_source == "as_shot"
    np.testing.assert_allclose(record.wb_gains, [2.0, 1.0, 1.6], rtol=1e-6)
    assert record.camera == "deepisp_tf synthetic"


def test_write_dng_colour_matrix_gives_libraws_cam_to_srgb(tmp_path):
    path = dng.write_dng(tmp_path / "frame.dng", random_mosaic(0), "GRBG", 64, WHITE, XYZ_TO_CAM,
                         NEUTRAL)
    np.testing.assert_allclose(read_raw(path).cam_to_srgb, cam_to_srgb_from_xyz(XYZ_TO_CAM),
                               atol=1e-4)


def test_write_dng_per_site_black_levels_read_back(tmp_path):
    black = np.array([[60, 61], [62, 63]])
    path = dng.write_dng(tmp_path / "frame.dng", random_mosaic(1), "BGGR", black, WHITE,
                         XYZ_TO_CAM, NEUTRAL)
    np.testing.assert_array_equal(read_raw(path).black_levels, black)


def test_write_dng_writes_the_dng_tags(tmp_path):
    path = dng.write_dng(tmp_path / "frame.dng", random_mosaic(2), "GBRG", 100, WHITE,
                         XYZ_TO_CAM, NEUTRAL, make="Acme", model="Sensor 1")
    with tifffile.TiffFile(path) as tif:
        tags = {tag.code: tag.value for tag in tif.pages[0].tags}
    assert tags[262] == 32803                          # PhotometricInterpretation CFA
    assert tuple(tags[33421]) == (2, 2)                # CFARepeatPatternDim
    assert bytes(tags[33422]) == bytes([1, 2, 0, 1])   # CFAPattern GBRG
    assert bytes(tags[50706]) == bytes([1, 4, 0, 0])   # DNGVersion
    assert tags[50708] == "Acme Sensor 1"              # UniqueCameraModel
    assert (tags[271], tags[272]) == ("Acme", "Sensor 1")
    assert tags[50778] == 21                           # CalibrationIlluminant1 = D65
    assert tags[50717] == WHITE
    matrix = np.array(tags[50721], np.float64).reshape(9, 2)
    np.testing.assert_allclose(matrix[:, 0] / matrix[:, 1], XYZ_TO_CAM.ravel(), atol=1e-6)


def test_write_dng_without_matrix_and_white_balance_leaves_tags_out(tmp_path):
    path = dng.write_dng(tmp_path / "bare.dng", random_mosaic(3), "RGGB", 0, WHITE, None, None)
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        assert 50721 not in tags and 50728 not in tags and 50718 not in tags
    record = read_raw(path)
    assert record.wb_source == "auto"
    np.testing.assert_array_equal(record.cam_to_srgb, np.eye(3))


@pytest.mark.parametrize("scale, aspect", [((2.0, 1.0), 2.0), ((1.0, 2.0), 0.5)])
def test_write_dng_default_scale_gives_libraws_pixel_aspect(tmp_path, scale, aspect):
    path = dng.write_dng(tmp_path / "wide.dng", random_mosaic(4), "RGGB", 0, WHITE,
                         XYZ_TO_CAM, NEUTRAL, default_scale=scale)
    record = read_raw(path)
    assert record.pixel_aspect == aspect
    with pytest.raises(ValueError, match="default_scale"):
        dng.write_dng(tmp_path / "bad.dng", random_mosaic(4), "RGGB", 0, WHITE, XYZ_TO_CAM,
                      NEUTRAL, default_scale=(1.0, 0.0))


def test_linear_dng_is_rejected_as_non_bayer(tmp_path):
    rgb = np.random.default_rng(3).integers(0, WHITE, (32, 48, 3)).astype(np.uint16)
    path = dng.write_linear_dng(tmp_path / "linear.dng", rgb, 64, WHITE, XYZ_TO_CAM, NEUTRAL)
    with rawpy.imread(path) as raw:  # a valid DNG that LibRaw decodes...
        assert raw.raw_type != rawpy.RawType.Flat
    with pytest.raises(RawReadError, match="not a Bayer sensor"):  # ...but not a Bayer mosaic
        read_raw(path)


def test_failed_write_keeps_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "frame.dng"
    dng.write_dng(path, random_mosaic(4), "RGGB", 64, WHITE, XYZ_TO_CAM, NEUTRAL)
    before = path.read_bytes()

    def broken_write(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tifffile.TiffWriter, "write", broken_write)
    with pytest.raises(OSError, match="disk full"):
        dng.write_dng(path, random_mosaic(5), "RGGB", 64, WHITE, XYZ_TO_CAM, NEUTRAL)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["frame.dng"]


def test_write_dng_rejects_bad_arguments(tmp_path):
    path = tmp_path / "bad.dng"
    good = random_mosaic(6)
    with pytest.raises(ValueError, match="uint16"):
        dng.write_dng(path, good.astype(np.float32), "RGGB", 64, WHITE, XYZ_TO_CAM, NEUTRAL)
    with pytest.raises(ValueError, match="Bayer pattern"):
        dng.write_dng(path, good, "RGBG", 64, WHITE, XYZ_TO_CAM, NEUTRAL)
    with pytest.raises(ValueError, match="exceeds white_level"):
        dng.write_dng(path, good, "RGGB", 64, 1023, XYZ_TO_CAM, NEUTRAL)
    with pytest.raises(ValueError, match=r"\[3, 3\]"):
        dng.write_dng(path, good, "RGGB", 64, WHITE, np.eye(2), NEUTRAL)
    with pytest.raises(ValueError, match="positive"):
        dng.write_dng(path, good, "RGGB", 64, WHITE, XYZ_TO_CAM, [0.5, 0.0, 1.0])
    with pytest.raises(ValueError, match="below white_level"):
        dng.write_dng(path, good, "RGGB", WHITE, WHITE, XYZ_TO_CAM, NEUTRAL)
    assert not os.listdir(tmp_path)
