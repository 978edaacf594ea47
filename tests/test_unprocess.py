"""Tests of deepisp_tf.raw.unprocess: every inverse pair round-trips, random draws respect the
config, and process(unprocess(x)) gives x back without noise."""

import dataclasses

import numpy as np
import pytest

from deepisp_tf.config import CAMERA_XYZ_MATRICES, SyntheticConfig
from deepisp_tf.raw import cfa, color
from deepisp_tf.raw import unprocess as up
from deepisp_tf.raw.io import XYZ_FROM_SRGB, cam_to_srgb_from_xyz

# Exposure gain exactly 1, so the forward ISP (which has no exposure stage) can undo everything.
UNIT_EXPOSURE = dataclasses.replace(SyntheticConfig(), exposure_gain_mean=1.0,
                                    exposure_gain_std=0.0)


def smooth_image(height: int = 48, width: int = 64) -> np.ndarray:
    """Return a smooth, moderately saturated [H, W, 3] sRGB image (easy to demosaic)."""
    y, x = np.mgrid[0:height, 0:width] / float(width)
    return np.stack([0.25 + 0.5 * x, 0.3 + 0.4 * y[::-1], 0.5 + 0.2 * np.sin(3 * x + 2 * y)], -1)


def test_invert_smoothstep_round_trips():
    values = np.linspace(0.0, 1.0, 1001)
    np.testing.assert_allclose(up.smoothstep(up.invert_smoothstep(values)), values, atol=1e-12)
    np.testing.assert_allclose(up.invert_smoothstep(up.smoothstep(values)), values, atol=1e-9)
    assert up.smoothstep(np.array(0.25)) == pytest.approx(3 * 0.25 ** 2 - 2 * 0.25 ** 3)


def test_gamma_expansion_inverts_compression_and_is_libraws_curve():
    values = np.linspace(0.0, 1.0, 1001)
    np.testing.assert_allclose(up.gamma_compression(up.gamma_expansion(values)), values,
                               atol=1e-9)
    np.testing.assert_array_equal(up.gamma_compression(values), color.gamma_compression(values))
    assert up.gamma_compression(np.array(0.001)) == pytest.approx(0.0045)  # BT.709 toe slope


def test_rgb_to_cam_is_inverse_of_libraw_cam_to_srgb_with_unit_row_sums():
    for matrix in CAMERA_XYZ_MATRICES.values():
        xyz_to_cam = np.reshape(matrix, (3, 3))
        forward = up.rgb_to_cam(xyz_to_cam)
        np.testing.assert_allclose(forward.sum(axis=1), 1.0, atol=1e-12)
        np.testing.assert_allclose(cam_to_srgb_from_xyz(xyz_to_cam) @ forward, np.eye(3),
                                   atol=1e-9)


def test_random_xyz_to_cam_is_a_convex_combination_of_config_matrices():
    rng = np.random.default_rng(0)
    single = up.random_xyz_to_cam(rng, ["nikon_d700"])
    np.testing.assert_allclose(single.ravel(), CAMERA_XYZ_MATRICES["nikon_d700"], atol=1e-12)
    stacked = np.array(list(CAMERA_XYZ_MATRICES.values()))
    draws = [up.random_xyz_to_cam(rng, list(CAMERA_XYZ_MATRICES)).ravel() for _ in range(20)]
    assert np.all(np.array(draws) >= stacked.min(axis=0) - 1e-12)
    assert np.all(np.array(draws) <= stacked.max(axis=0) + 1e-12)
    assert np.ptp(np.array(draws), axis=0).max() > 0.01  # really random
    with pytest.raises(ValueError, match="unknown cameras"):
        up.random_xyz_to_cam(rng, ["no_such_camera"])
    with pytest.raises(ValueError, match="at least one"):
        up.random_xyz_to_cam(rng, [])


def test_dng_color_matrix_maps_d65_white_to_neutral_without_changing_rgb_to_cam():
    xyz_to_cam = np.reshape(CAMERA_XYZ_MATRICES["sony_a7"], (3, 3))
    neutral = np.array([0.45, 1.0, 0.6])
    scaled = up.dng_color_matrix(xyz_to_cam, neutral)
    np.testing.assert_allclose(scaled @ XYZ_FROM_SRGB.sum(axis=1), neutral, atol=1e-12)
    np.testing.assert_allclose(up.rgb_to_cam(scaled), up.rgb_to_cam(xyz_to_cam), atol=1e-12)


def test_random_gains_lie_in_config_ranges():
    config = SyntheticConfig()
    rng = np.random.default_rng(1)
    for _ in range(50):
        brightness, gains = up.random_gains(rng, config)
        assert config.red_gain_range[0] <= gains[0] <= config.red_gain_range[1]
        assert gains[1] == 1.0
        assert config.blue_gain_range[0] <= gains[2] <= config.blue_gain_range[1]
        assert 0 < brightness <= 10
    with pytest.raises(ValueError, match="red_gain_range"):
        up.random_gains(rng, dataclasses.replace(config, red_gain_range=(0.5, 2.0)))


def test_safe_invert_gains_inverts_midtones_and_keeps_white_highlights():
    gains, brightness = np.array([2.0, 1.0, 1.6]), 1.25
    midtones = np.full((2, 2, 3), 0.4)
    inverted = up.safe_invert_gains(midtones, gains, brightness)
    np.testing.assert_allclose(up.apply_gains(inverted, gains) * brightness, midtones)
    white = up.safe_invert_gains(np.ones((1, 1, 3)), gains, brightness)
    np.testing.assert_allclose(white, 1.0)  # re-applying the WB clips it to white, not a tint


def test_random_noise_levels_follow_the_log_linear_read_model():
    config = dataclasses.replace(SyntheticConfig(), read_noise_std=0.0)
    rng = np.random.default_rng(2)
    for _ in range(20):
        shot, read = up.random_noise_levels(rng, config)
        low, high = config.log_shot_noise_range
        assert low <= np.log(shot) <= high
        assert np.log(read) == pytest.approx(
            config.read_noise_slope * np.log(shot) + config.read_noise_intercept)


def test_add_noise_has_shot_plus_read_variance():
    rng = np.random.default_rng(3)
    shot, read = 1e-3, 1e-5
    for level in (0.1, 0.8):
        clean = np.full(200_000, level)
        noisy = up.add_noise(rng, clean, shot, read)
        assert noisy.mean() == pytest.approx(level, abs=1e-3)
        assert noisy.var() == pytest.approx(level * shot + read, rel=0.03)
    with pytest.raises(ValueError, match="non-negative"):
        up.add_noise(rng, clean, -1.0, read)


@pytest.mark.parametrize("pattern", cfa.BAYER_PATTERNS)
def test_unprocess_grey_gives_inverse_white_balance_at_each_pattern_site(pattern):
    grey = np.full((8, 8, 3), 0.5)
    mosaic, meta = up.unprocess(grey, np.random.default_rng(4), SyntheticConfig(), pattern,
                                noise=False)
    signal = mosaic.astype(np.float64) - meta["black_level"]
    sites = np.tile(cfa.channel_map(pattern), (4, 4))
    per_channel = [signal[sites == c].mean() for c in range(3)]
    assert np.ptp(signal[sites == 1]) == 0  # a flat image gives flat sites
    assert per_channel[1] / per_channel[0] == pytest.approx(meta["wb_gains"][0], rel=0.01)
    assert per_channel[1] / per_channel[2] == pytest.approx(meta["wb_gains"][2], rel=0.01)
    np.testing.assert_allclose(meta["as_shot_neutral"], 1.0 / meta["wb_gains"])


def test_unprocess_returns_uint16_mosaic_within_levels_and_full_metadata():
    config = SyntheticConfig()
    mosaic, meta = up.unprocess(smooth_image(), np.random.default_rng(5), config, "gbrg")
    assert mosaic.dtype == np.uint16 and mosaic.shape == (48, 64)
    assert mosaic.max() <= config.white_level
    assert config.black_level_range[0] <= meta["black_level"] <= config.black_level_range[1]
    assert meta["pattern"] == "GBRG" and meta["white_level"] == config.white_level
    assert meta["xyz_to_cam"].shape == (3, 3) and meta["as_shot_neutral"].shape == (3,)
    assert meta["shot_noise"] > 0 and meta["read_noise"] > 0 and meta["brightness_gain"] > 0


def test_unprocess_is_deterministic_under_rng_and_noise_changes_values():
    image = smooth_image()
    first = up.unprocess(image, np.random.default_rng(6), SyntheticConfig(), "RGGB")[0]
    again = up.unprocess(image, np.random.default_rng(6), SyntheticConfig(), "RGGB")[0]
    clean = up.unprocess(image, np.random.default_rng(6), SyntheticConfig(), "RGGB",
                         noise=False)[0]
    np.testing.assert_array_equal(first, again)
    assert np.abs(first.astype(int) - clean.astype(int)).mean() > 0.5


@pytest.mark.parametrize("pattern", cfa.BAYER_PATTERNS)
def test_process_round_trips_unprocess_without_noise(pattern):
    image = smooth_image()
    for seed in range(2):
        mosaic, meta = up.unprocess(image, np.random.default_rng(seed), UNIT_EXPOSURE, pattern,
                                    noise=False)
        error = np.abs(up.process(mosaic, meta) - image)
        # 12-bit quantization and bilinear demosaicing of a smooth image: ~1e-3 inside; OpenCV's
        # border handling costs up to ~0.02 on the outermost pixels.
        assert error[2:-2, 2:-2].max() < 4e-3
        assert error.max() < 0.03


def test_unprocess_rejects_bad_arguments():
    rng = np.random.default_rng(7)
    with pytest.raises(ValueError, match="must lie in"):
        up.unprocess(smooth_image() * 2, rng, SyntheticConfig(), "RGGB")
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        up.unprocess(np.zeros((4, 4)), rng, SyntheticConfig(), "RGGB")
    with pytest.raises(ValueError, match="Bayer pattern"):
        up.unprocess(smooth_image(), rng, SyntheticConfig(), "RGBW")
    with pytest.raises(ValueError, match="black_level_range"):
        up.unprocess(smooth_image(), rng,
                     dataclasses.replace(SyntheticConfig(), black_level_range=(64, 5000)), "RGGB")
