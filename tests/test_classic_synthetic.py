"""The classic pipeline matches LibRaw's LINEAR render on synthetic DNGs, one per LibRaw case.

Each test writes a small Bayer DNG (`deepisp_tf.raw.dng.write_dng`) exercising one thing LibRaw
does outside the demosaic: automatic white balance, unity balance, no colour matrix, non-square
pixels (both directions), `adjust_maximum()`, per-site black levels, the four CFA patterns and
highlight clipping; the record read back must render to >= 50 dB of rawpy's LINEAR render
(DESIGN §2.3 metric). Figures in the comments were measured when the tests were written.
"""

import numpy as np
import pytest
import rawpy

from deepisp_tf import metrics
from deepisp_tf.config import CAMERA_XYZ_MATRICES
from deepisp_tf.raw import cfa, classic, color, dng, io

LINEAR = {"demosaic_algorithm": rawpy.DemosaicAlgorithm.LINEAR}
XYZ_TO_CAM = np.array(CAMERA_XYZ_MATRICES["canon_eos_5d_mark_iii"]).reshape(3, 3)
WHITE = 4095
BLACK = 200


def _scene(height: int = 96, width: int = 128, peak: float = 0.8, seed: int = 0) -> np.ndarray:
    """Return a [H, W] uint16 mosaic: smooth colour gradients, blocks and a saturated patch."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width], np.float64)[:, None, None]
    planes = 0.3 + 0.25 * np.sin(9 * x + 4 * y)[..., None] * np.array([1.0, 0.6, 0.3])
    planes += 0.25 * rng.random((height // 8, width // 8, 3)).repeat(8, 0).repeat(8, 1)
    rows, cols = np.mgrid[0:height, 0:width]
    site = planes[rows, cols, (rows % 2) + (cols % 2)]  # any fixed site -> channel assignment
    mosaic = BLACK + np.clip(site * peak, 0, 1) * (WHITE - BLACK)
    mosaic[8:24, 8:24] = WHITE  # a clipped highlight (auto-WB skips its blocks)
    return np.round(mosaic).astype(np.uint16)


def _render_psnr(tmp_path, mosaic=None, name="case", **kwargs) -> tuple[io.RawRecord, float]:
    """Write a DNG, read it, and return (record, PSNR of classic vs LibRaw LINEAR)."""
    args = {"pattern": "RGGB", "black_level": BLACK, "white_level": WHITE,
            "xyz_to_cam": XYZ_TO_CAM, "as_shot_neutral": (0.5, 1.0, 0.7), **kwargs}
    path = dng.write_dng(tmp_path / f"{name}.dng", _scene() if mosaic is None else mosaic,
                         **args)
    record, linear = io.read_raw(path, with_reference=True, render_settings=LINEAR)
    return record, metrics.psnr(linear, classic.render(record))


def test_classic_no_as_shot_white_balance_uses_libraw_auto_wb_above_50db(tmp_path):
    record, psnr = _render_psnr(tmp_path, as_shot_neutral=None)
    assert record.wb_source == "auto"
    assert psnr >= 50.0, f"{psnr:.2f} dB"  # measured 90.1 dB


def test_classic_auto_wb_balances_the_two_greens_separately(tmp_path):
    """LibRaw's scale_colors() keeps one pre_mul per CFA colour, the two greens apart."""
    mosaic = _scene().astype(np.float64)
    mosaic[0::2, 1::2] = BLACK + (mosaic[0::2, 1::2] - BLACK) * 0.8  # G1 sites 20 % weaker
    record, psnr = _render_psnr(tmp_path, np.round(mosaic).astype(np.uint16),
                                as_shot_neutral=None)
    gains = record.gains_2x2
    assert gains[0, 1] / gains[1, 0] == pytest.approx(1.25, rel=0.02)
    assert psnr >= 50.0, f"{psnr:.2f} dB"  # measured 90.2 dB


def test_classic_unity_white_balance_above_50db(tmp_path):
    record, psnr = _render_psnr(tmp_path, as_shot_neutral=(1.0, 1.0, 1.0))
    np.testing.assert_allclose(record.gains_2x2, 1.0)
    assert psnr >= 50.0, f"{psnr:.2f} dB"  # measured 90.1 dB


def test_classic_no_colour_matrix_applies_identity_above_50db(tmp_path):
    record, psnr = _render_psnr(tmp_path, xyz_to_cam=None)
    np.testing.assert_array_equal(record.cam_to_srgb, np.eye(3))
    assert psnr >= 50.0, f"{psnr:.2f} dB"  # measured 96.3 dB


def test_classic_no_matrix_and_no_white_balance_above_50db(tmp_path):
    record, psnr = _render_psnr(tmp_path, xyz_to_cam=None, as_shot_neutral=None)
    assert record.wb_source == "auto"
    assert psnr >= 50.0, f"{psnr:.2f} dB"  # measured 94.7 dB


@pytest.mark.parametrize("scale, aspect, size", [
    ((2.0, 1.0), 2.0, (96, 256)),   # wide pixels: columns repeated
    ((1.5, 1.0), 1.5, (96, 192)),   # a non-integer ratio, as the Kodak DC120's 1.53
    ((1.0, 2.0), 0.5, (192, 128)),  # tall pixels: rows repeated, as the Nikon D1X
])
def test_classic_non_square_pixels_stretch_as_libraw_above_50db(tmp_path, scale, aspect, size):
    record, psnr = _render_psnr(tmp_path, default_scale=scale)
    assert record.pixel_aspect == pytest.approx(aspect) and record.render_size == size
    assert psnr >= 50.0, f"{psnr:.2f} dB"  # measured 90.5 dB (each)


def test_classic_adjust_maximum_lowers_white_level_above_50db(tmp_path):
    """adjust_maximum(): the brightest black-subtracted value, above 0.75 of the range, wins."""
    mosaic = np.minimum(_scene(), 3400)
    record, psnr = _render_psnr(tmp_path, mosaic)
    assert record.white_level == 3400.0
    assert psnr >= 50.0, f"{psnr:.2f} dB"  # measured 91.6 dB


def test_classic_adjust_maximum_keeps_white_level_below_threshold(tmp_path):
    mosaic = np.minimum(_scene(), 2900)  # 2700 of a 3895 range: below 0.75
    record, psnr = _render_psnr(tmp_path, mosaic)
    assert record.white_level == WHITE
    assert psnr >= 50.0, f"{psnr:.2f} dB"  # measured 90.6 dB


def test_classic_per_site_black_levels_above_50db(tmp_path):
    """LibRaw divides every site by white - min(black) (adjust_bl + scale_colors)."""
    black = np.array([[180, 200], [230, 210]])
    record, psnr = _render_psnr(tmp_path, black_level=black)
    np.testing.assert_array_equal(record.black_levels, black)
    assert psnr >= 50.0, f"{psnr:.2f} dB"  # measured 90.7 dB (below 50 dB with white - black[site])


def test_classic_per_site_black_levels_with_auto_wb_above_50db(tmp_path):
    black = np.array([[180, 200], [230, 210]])
    record, psnr = _render_psnr(tmp_path, black_level=black, as_shot_neutral=None)
    assert record.wb_source == "auto"
    assert psnr >= 50.0, f"{psnr:.2f} dB"  # measured 90.1 dB


@pytest.mark.parametrize("pattern", cfa.BAYER_PATTERNS)
def test_classic_every_cfa_pattern_above_50db(tmp_path, pattern):
    record, psnr = _render_psnr(tmp_path, pattern=pattern)
    assert record.pattern == pattern
    assert psnr >= 50.0, f"{pattern}: {psnr:.2f} dB"  # measured 90.4-91.3 dB (each)


def test_classic_highlight_clipping_above_50db(tmp_path):
    mosaic = _scene(peak=1.6)  # about half of the sites at the white level
    record, psnr = _render_psnr(tmp_path, mosaic)
    normalized = color.normalize(record.mosaic, record.pattern, record.black_levels,
                                 record.white_level, record.gains_2x2)
    assert (normalized == 1.0).mean() > 0.3
    assert psnr >= 50.0, f"{psnr:.2f} dB"  # measured 94.4 dB
