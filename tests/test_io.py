"""Reading real RAW files: metadata, reference render, alignment, and bad-file handling."""

import os

import numpy as np
import pytest
import rawpy

from conftest import sample
from deepisp_tf.data import tiles
from deepisp_tf.raw import color, geometry, io


def test_read_raw_every_sample_gives_consistent_record(raw_samples):
    for path in raw_samples:
        record = io.read_raw(path)
        assert record.mosaic.dtype == np.uint16 and record.mosaic.ndim == 2
        assert record.pattern in ("RGGB", "BGGR", "GRBG", "GBRG")
        assert record.white_level > record.black_levels.max()
        assert record.gains_2x2.min() == pytest.approx(1.0)  # LibRaw: min of four pre_mul
        assert record.cam_to_srgb.shape == (3, 3)
        # Rows of camera->sRGB map camera white to sRGB white (LibRaw's normalization).
        np.testing.assert_allclose(record.cam_to_srgb.sum(axis=1), 1.0, atol=0.02)


def test_read_raw_covers_all_four_patterns_and_non_square_pixels(raw_samples):
    records = {os.path.basename(p): io.read_raw(p) for p in raw_samples}
    assert {r.pattern for r in records.values()} == {"RGGB", "BGGR", "GRBG", "GBRG"}
    nikon = next(r for n, r in records.items() if "NIKON" in n)
    assert nikon.pixel_aspect == 0.5 and nikon.render_size == (2648, 4024)
    kodak = next(r for n, r in records.items() if "DC120" in n)
    assert kodak.render_size == (976, 1301)


def test_reference_render_uses_pinned_settings_and_render_size(raw_samples):
    path = raw_samples[0]
    record, reference = io.read_raw(path, with_reference=True)
    with rawpy.imread(path) as raw:
        expected = raw.postprocess(use_camera_wb=True, no_auto_bright=True, output_bps=16,
                                   user_flip=0)
    np.testing.assert_array_equal(reference, expected)
    assert reference.dtype == np.uint16 and reference.shape[:2] == record.render_size


def test_libraw_stretch_repeats_lines_on_real_non_square_files():
    """What geometry.stretch reproduces: rawpy's render repeats D1X rows and DC120 columns."""
    nikon = io.reference_render(sample("NIKON_UB20_O35"))
    np.testing.assert_array_equal(nikon[0::2], nikon[1::2])
    record, kodak = io.read_raw(sample("DC120_P003908"), with_reference=True)
    sources = geometry.stretch_sources(kodak.shape[1], record.pixel_aspect)
    repeated = np.flatnonzero(np.diff(sources) == 0) + 1  # output columns copying the previous
    np.testing.assert_array_equal(kodak[:, repeated], kodak[:, repeated - 1])


def test_kodak_dc120_colour_matrix_is_tag_37400_rgb_cam():
    """LibRaw's parse_tiff_ifd() reads Kodak tag 37400 into rgb_cam; rawpy shows zeros."""
    record = io.read_raw(sample("DC120_P003908"))
    np.testing.assert_allclose(record.cam_to_srgb[0], [1.4815, -0.321, -0.1605], atol=1e-4)
    np.testing.assert_allclose(record.cam_to_srgb.sum(axis=1), 1.0, atol=1e-3)


def _best_shift(mosaic_plane: np.ndarray, reference_plane: np.ndarray, radius: int = 2):
    """Return the (dy, dx) shift of the reference that best correlates with the mosaic."""
    def highpass(image):
        return image - (np.roll(image, 1, 0) + np.roll(image, -1, 0)
                        + np.roll(image, 1, 1) + np.roll(image, -1, 1)) / 4

    a = highpass(mosaic_plane)[radius + 2:-radius - 2, radius + 2:-radius - 2]
    scores = {}
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            b = highpass(np.roll(reference_plane, (dy, dx), (0, 1)))
            b = b[radius + 2:-radius - 2, radius + 2:-radius - 2]
            scores[(dy, dx)] = np.corrcoef(a.ravel(), b.ravel())[0, 1]
    return max(scores, key=scores.get)


def test_training_pairs_are_pixel_aligned_on_real_files(raw_samples):
    """At every file, the green sites of the mosaic correlate best with the reference at offset 0.

    Uses the aligned pair of `tiles.align` (CFA canonicalized, non-square pixels unstretched).
    """
    for path in raw_samples:
        record, reference = io.read_raw(path, with_reference=True)
        pair = tiles.align(record, reference)
        height, width = pair.mosaic.shape
        size = min(512, height - 16, width - 16) // 2 * 2
        top, left = (height - size) // 4 * 2, (width - size) // 4 * 2
        mosaic = pair.mosaic[top:top + size, left:left + size].astype(np.float64)
        target = pair.target[top:top + size, left:left + size].astype(np.float64)
        green = color.gamma_expansion(target[..., 1] / 65535)
        # Interpolate the mosaic's green sites (RGGB: (0, 1) and (1, 0)) to a full plane.
        plane = mosaic.copy()
        plane[0::2, 0::2] = (np.roll(mosaic, 1, 1) + np.roll(mosaic, -1, 1))[0::2, 0::2] / 2
        plane[1::2, 1::2] = (np.roll(mosaic, 1, 1) + np.roll(mosaic, -1, 1))[1::2, 1::2] / 2
        # unstretch inverts LibRaw's line-repeating stretch exactly, so every file aligns at 0.
        assert _best_shift(plane, green) == (0, 0), os.path.basename(path)


def _write(path, data: bytes):
    with open(path, "wb") as handle:
        handle.write(data)
    return str(path)


def test_truncated_file_raises_raw_read_error_naming_file(tmp_path):
    source = sample("PowerShotS40_CRW_0101")
    with open(source, "rb") as handle:
        head = handle.read(60000)
    path = _write(tmp_path / "cut.CRW", head)
    with pytest.raises(io.RawReadError) as error:
        io.read_raw(path, with_reference=True)
    assert error.value.path == path and "cut.CRW" in str(error.value)


def test_text_file_renamed_dng_raises_unsupported_format(tmp_path):
    path = _write(tmp_path / "notes.dng", b"this is not a raw file\n" * 100)
    with pytest.raises(io.RawReadError, match="notes.dng: unsupported or unknown file format"):
        io.read_raw(path)


def test_missing_file_raises_raw_read_error(tmp_path):
    with pytest.raises(io.RawReadError, match="no such file"):
        io.read_raw(tmp_path / "absent.NEF")


def test_effective_white_level_equals_libraws_rule_over_the_black_subtracted_frame():
    """The per-site maximum equals adjust_maximum() on the whole black-subtracted mosaic."""
    rng = np.random.default_rng(3)
    black = np.array([[128.0, 130.5], [127.0, 129.0]])
    for shape in ((6, 8), (5, 7), (1, 9), (9, 1)):
        for top in (3000.0, 3900.0, 4095.0):  # below, inside and at the 0.75 threshold span
            mosaic = rng.integers(0, int(top) + 1, shape).astype(np.uint16)
            expected_max = float(np.max(mosaic - np.tile(black, (5, 5))[:shape[0], :shape[1]]))
            span = 4095.0 - 127.0
            expected = (127.0 + expected_max if 0.75 * span < expected_max < span else 4095.0)
            assert io.effective_white_level(mosaic, 4095.0, black_levels=black) == expected
