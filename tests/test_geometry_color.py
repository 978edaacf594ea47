"""Pixel-aspect geometry (LibRaw stretch) and the colour stages: forward/inverse pairs."""

import numpy as np
import pytest

from deepisp_tf.raw import color, geometry


@pytest.mark.parametrize("aspect, raw, render", [(0.5, (10, 8), (20, 8)),
                                                 (848 * 1.5345911949685533 / 848, (12, 848),
                                                  (12, 1301)),
                                                 (1.0, (6, 4), (6, 4))])
def test_render_size_follows_libraw(aspect, raw, render):
    assert geometry.render_size(raw, aspect) == render


def test_unstretch_of_stretch_is_exact_for_half_aspect():
    image = np.random.default_rng(1).integers(0, 65535, (9, 5, 3)).astype(np.uint16)
    stretched = geometry.stretch(image, 0.5)
    assert stretched.shape == (18, 5, 3)
    np.testing.assert_array_equal(geometry.unstretch(stretched, 0.5, (9, 5)), image)


def test_unstretch_of_stretch_is_exact_for_wide_pixels():
    """DC120's aspect 1.5346: stretch repeats columns, unstretch picks each one back."""
    image = np.random.default_rng(1).random((6, 40, 3)).astype(np.float32)
    stretched = geometry.stretch(image, 1.5345911949685533)
    assert stretched.shape == (6, 61, 3)
    np.testing.assert_array_equal(
        geometry.unstretch(stretched, 1.5345911949685533, (6, 40)), image)


def test_stretch_sources_follow_libraws_running_sum():
    """LibRaw's stretch(): line j reads source (int) rc, rc += aspect (rows) or 1/aspect."""
    np.testing.assert_array_equal(geometry.stretch_sources(6, 0.5), [0, 0, 1, 1, 2, 2])
    sources = geometry.stretch_sources(1301, 1.5345911949685533)
    rc, expected = 0.0, []
    for _ in range(1301):
        expected.append(int(rc))
        rc += 1 / 1.5345911949685533
    np.testing.assert_array_equal(sources, expected)
    assert set(np.diff(sources)) == {0, 1}  # every source column appears, none skipped


def test_stretch_commutes_with_per_pixel_stages():
    image = np.random.default_rng(2).random((5, 7, 3))
    np.testing.assert_array_equal(
        geometry.stretch(color.gamma_compression(image), 0.5),
        color.gamma_compression(geometry.stretch(image, 0.5)))


def test_unstretch_rejects_mismatched_render():
    with pytest.raises(ValueError, match="does not match"):
        geometry.unstretch(np.zeros((10, 4, 3)), 0.5, (4, 4))


def test_gamma_expansion_inverts_compression():
    values = np.linspace(0, 1, 1001)
    np.testing.assert_allclose(color.gamma_expansion(color.gamma_compression(values)), values,
                               atol=1e-12)


def test_gamma_compression_matches_bt709_constants():
    # LibRaw's bisection finds the BT.709 junction: slope 4.5 below ~0.018, 1.099 x^0.45 - 0.099.
    assert color.gamma_compression(np.array(0.01)) == pytest.approx(0.045)
    assert color.gamma_compression(np.array(0.5)) == pytest.approx(
        1.099 * 0.5 ** (1 / 2.222) - 0.099, abs=2e-3)


def test_denormalize_inverts_normalize_below_saturation():
    rng = np.random.default_rng(2)
    black = np.array([[64.0, 66.0], [65.0, 64.0]])
    gains = np.array([1.8, 1.0, 1.4])
    mosaic = rng.integers(70, 1500, (8, 6)).astype(np.uint16)
    normalized = color.normalize(mosaic, "GRBG", black, 4095.0, gains)
    assert normalized.max() < 1.0
    np.testing.assert_allclose(color.denormalize(normalized, "GRBG", black, 4095.0, gains),
                               mosaic, rtol=1e-5)


def test_normalize_divides_every_site_by_white_minus_smallest_black():
    """LibRaw's adjust_bl() + scale_colors(): one range, each site's own black subtracted."""
    black = np.array([[10.0, 20.0], [30.0, 40.0]])
    mosaic = np.full((2, 2), 510, np.uint16)
    normalized = color.normalize(mosaic, "RGGB", black, 1010.0, np.ones(3))
    np.testing.assert_allclose(normalized, (510 - black) / 1000.0, rtol=1e-6)


def test_normalize_takes_per_site_gains():
    gains = np.array([[2.0, 1.0], [1.5, 1.2]])
    normalized = color.normalize(np.full((4, 4), 100, np.uint16), "GRBG", np.zeros((2, 2)),
                                 1000.0, gains)
    np.testing.assert_allclose(normalized[:2, :2], 0.1 * gains, rtol=1e-6)
    np.testing.assert_allclose(
        color.denormalize(normalized, "GRBG", np.zeros((2, 2)), 1000.0, gains), 100, rtol=1e-5)
    with pytest.raises(ValueError, match="white-balance gains"):
        color.normalize(np.zeros((2, 2), np.uint16), "RGGB", np.zeros((2, 2)), 1.0, np.ones(4))


def test_normalize_applies_gain_of_each_site_colour_and_clips():
    mosaic = np.full((2, 2), 1000, np.uint16)
    out = color.normalize(mosaic, "BGGR", np.zeros((2, 2)), 2000.0, np.array([3.0, 1.0, 1.5]))
    np.testing.assert_allclose(out, [[0.75, 0.5], [0.5, 1.0]])  # B, G / G, R(clipped)
