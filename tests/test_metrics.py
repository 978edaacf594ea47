"""Metrics of DESIGN §2.3 (and PyNET's protocol) against hand-computed values and skimage."""

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from deepisp_tf import metrics


def _random_pair(shape=(41, 37, 3), noise=3000, seed=0):
    rng = np.random.default_rng(seed)
    reference = rng.integers(0, 65536, shape).astype(np.uint16)
    image = np.clip(reference.astype(np.int64) + rng.integers(-noise, noise, shape), 0, 65535)
    return reference, image.astype(np.uint16)


def test_psnr_constant_error_gives_10_log10_of_inverse_mse():
    reference = np.full((32, 32, 3), 0.5)
    assert metrics.psnr(reference, reference + 0.01) == pytest.approx(40.0, abs=1e-9)
    assert metrics.psnr(reference, reference - 0.1) == pytest.approx(20.0, abs=1e-9)


def test_psnr_of_uint16_scales_by_65535():
    reference = np.full((20, 20, 3), 1000, np.uint16)
    image = reference + np.uint16(6553)
    expected = 10 * math.log10(1 / (6553 / 65535) ** 2)
    assert metrics.psnr(reference, image) == pytest.approx(expected, abs=1e-9)
    assert metrics.to_unit(np.array([65535], np.uint16))[0] == 1.0
    assert metrics.to_unit(np.array([255], np.uint8))[0] == 1.0


def test_identical_images_give_infinite_psnr_and_unit_ssim():
    reference, _ = _random_pair()
    assert metrics.psnr(reference, reference) == math.inf
    assert metrics.ssim(reference, reference) == pytest.approx(1.0)
    assert metrics.mean_score([metrics.ImageScore(math.inf, 1.0),
                               metrics.ImageScore(30.0, 0.9)]).psnr == math.inf


def test_border_crop_ignores_errors_in_the_8_pixel_border():
    reference = np.full((40, 40, 3), 0.5)
    image = reference.copy()
    image[:8] = image[-8:] = image[:, :8] = image[:, -8:] = 0.0
    assert metrics.psnr(reference, image) == math.inf
    assert metrics.ssim(reference, image) == pytest.approx(1.0)
    assert metrics.psnr(reference, image, border=0) < 10


def test_border_crop_counts_the_first_pixel_inside():
    reference = np.zeros((40, 30, 3))
    image = reference.copy()
    image[8, 8, 0] = 0.5   # one value inside the crop: MSE = 0.25 / (24 * 14 * 3)
    expected = 10 * math.log10(24 * 14 * 3 / 0.25)
    assert metrics.psnr(reference, image) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("band_rows", [1, 5, 256])
def test_banded_ssim_equals_skimage_on_the_cropped_images(band_rows):
    reference, image = _random_pair()
    expected = structural_similarity(reference[8:-8, 8:-8] / 65535, image[8:-8, 8:-8] / 65535,
                                     channel_axis=2, data_range=1.0)
    assert metrics.ssim(reference, image, band_rows=band_rows) == pytest.approx(expected,
                                                                                abs=1e-12)


def test_banded_psnr_equals_whole_image_psnr():
    reference, image = _random_pair()
    whole = 10 * math.log10(1 / np.mean((reference[8:-8, 8:-8] / 65535.0
                                         - image[8:-8, 8:-8] / 65535.0) ** 2))
    assert metrics.psnr(reference, image, band_rows=3) == pytest.approx(whole, abs=1e-9)


def test_pynet_protocol_scores_the_whole_patch():
    reference = np.full((448, 448, 3), 0.5)
    image = reference.copy()
    image[:4] = 0.6   # an error only in the rows the DESIGN protocol would crop
    pynet = metrics.score(reference, image, metrics.PYNET)
    design = metrics.score(reference, image, metrics.DESIGN)
    assert metrics.PYNET.border == 0 and design.psnr == math.inf
    assert pynet.psnr == pytest.approx(10 * math.log10(1 / (0.01 * 4 / 448)), abs=1e-9)
    assert pynet.ssim < 1.0


def test_set_figure_is_the_mean_over_images_not_the_pooled_mse():
    scores = [metrics.ImageScore(30.0, 0.8), metrics.ImageScore(40.0, 0.9)]
    mean = metrics.mean_score(scores)
    assert (mean.psnr, mean.ssim) == (pytest.approx(35.0), pytest.approx(0.85))
    assert math.isnan(metrics.mean_score([]).psnr)


def test_mismatched_or_too_small_images_raise_value_error():
    with pytest.raises(ValueError, match="differs"):
        metrics.psnr(np.zeros((30, 30, 3)), np.zeros((30, 31, 3)))
    with pytest.raises(ValueError, match="too small"):
        metrics.psnr(np.zeros((16, 30, 3)), np.zeros((16, 30, 3)))
    with pytest.raises(ValueError, match="at least 7x7"):
        metrics.ssim(np.zeros((22, 30, 3)), np.zeros((22, 30, 3)))
    with pytest.raises(ValueError, match="uint16"):
        metrics.to_unit(np.zeros(3, np.int32))
