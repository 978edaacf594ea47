"""Tests of deepisp_tf.raw.synthetic: the download-free dataset is deterministic, resumable,
covers every CFA pattern, groups views of one scene, and renders like its source photos."""

import dataclasses
import os

import cv2
import numpy as np
import pytest

from deepisp_tf.config import SyntheticConfig
from deepisp_tf.raw import cfa, dng, synthetic
from deepisp_tf.raw import unprocess as up
from deepisp_tf.raw.io import read_raw

# Small frames keep every test fast; the default config is exercised by the timing in the report.
SMALL = SyntheticConfig(min_side=48, max_side=80)


def file_bytes(paths: list[str]) -> dict[str, bytes]:
    with_names = {}
    for path in paths:
        with open(path, "rb") as handle:
            with_names[os.path.basename(path)] = handle.read()
    return with_names


def test_source_images_are_packaged_photos_that_exist():
    sources = synthetic.source_images()
    names = [name for name, _ in sources]
    assert "astronaut" in names and "grace_hopper" in names  # scikit-image and matplotlib
    assert len(set(names)) == len(names)
    for _, path in sources:
        assert os.path.isfile(path)


def test_group_of_parses_names_and_rejects_others():
    assert synthetic.group_of("/data/motorcycle__v3.dng") == "motorcycle"
    assert synthetic.group_of("hubble_deep_field__v0.dng") == "hubble_deep_field"
    for bad in ("astronaut.dng", "astronaut__vx.dng", "__v1.dng"):
        with pytest.raises(ValueError, match="not a synthetic file name"):
            synthetic.group_of(bad)


def test_generate_names_files_by_scene_so_stereo_views_share_a_group(tmp_path):
    paths = synthetic.generate(tmp_path, SMALL)
    names = [os.path.basename(path) for path in paths]
    assert len(set(names)) == len(names) == len(synthetic.source_images()) * 2
    assert sorted(n for n in names if synthetic.group_of(n) == "motorcycle") == [
        f"motorcycle__v{k}.dng" for k in range(4)]
    assert sorted(os.listdir(tmp_path)) == sorted(names)  # no temporary files left


def test_generate_is_deterministic_under_seed(tmp_path):
    first = file_bytes(synthetic.generate(tmp_path / "a", SMALL, limit=3))
    second = file_bytes(synthetic.generate(tmp_path / "b", SMALL, limit=3))
    other = file_bytes(synthetic.generate(tmp_path / "c", dataclasses.replace(SMALL, seed=1),
                                          limit=3))
    assert first == second
    assert first.keys() == other.keys()
    assert all(first[name] != other[name] for name in first)


def test_generate_limit_and_resume_do_not_change_other_files(tmp_path):
    full = file_bytes(synthetic.generate(tmp_path / "full", SMALL, limit=5))
    partial_dir = tmp_path / "partial"
    partial = synthetic.generate(partial_dir, SMALL, limit=2)
    assert file_bytes(partial) == {name: full[name] for name in list(full)[:2]}
    with open(partial[0], "ab") as handle:  # mark an existing file: resuming must not rewrite it
        handle.write(b"kept")
    resumed = file_bytes(synthetic.generate(partial_dir, SMALL, limit=5))
    first = os.path.basename(partial[0])
    assert resumed[first] == full[first] + b"kept"
    assert {k: v for k, v in resumed.items() if k != first} == {
        k: v for k, v in full.items() if k != first}


def test_generate_covers_all_four_patterns(tmp_path):
    paths = synthetic.generate(tmp_path, SMALL, limit=4)
    assert sorted(read_raw(path).pattern for path in paths) == sorted(cfa.BAYER_PATTERNS)


def test_generate_frames_have_even_sides_within_bounds_and_metadata(tmp_path):
    for path in synthetic.generate(tmp_path, SMALL, limit=6):
        record = read_raw(path)
        height, width = record.mosaic.shape
        assert height % 2 == 0 and width % 2 == 0
        assert SMALL.min_side <= min(height, width) and max(height, width) <= SMALL.max_side
        assert record.wb_source == "as_shot" and record.camera == "deepisp_tf synthetic"
        assert SMALL.black_level_range[0] <= record.black_levels.min()
        assert record.black_levels.max() <= SMALL.black_level_range[1]


def psnr(first: np.ndarray, second: np.ndarray, border: int = 8) -> float:
    """PSNR (DESIGN §2.3) of two [H, W, 3] images in [0, 1], `border` pixels cropped."""
    crop = (slice(border, -border), slice(border, -border))
    return float(-10 * np.log10(np.mean((first[crop] - second[crop]) ** 2)))


def test_reference_render_of_synthetic_dng_resembles_source(tmp_path):
    name_to_path = dict(synthetic.source_images())
    photo = cv2.cvtColor(cv2.imread(name_to_path["coffee"]), cv2.COLOR_BGR2RGB)
    source = cv2.resize(photo, (300, 200), interpolation=cv2.INTER_AREA) / 255.0
    for seed, pattern in enumerate(cfa.BAYER_PATTERNS):
        mosaic, meta = up.unprocess(source, np.random.default_rng(seed), SyntheticConfig(),
                                    pattern)
        path = dng.write_dng(tmp_path / f"{pattern}.dng", mosaic, pattern, meta["black_level"],
                             meta["white_level"], meta["xyz_to_cam"], meta["as_shot_neutral"])
        record, reference = read_raw(path, with_reference=True)
        render = reference / 65535.0
        # What rawpy should show: the source without its tone curve (rawpy applies none), darker
        # by the exposure gain (rawpy does not know it) and rescaled when LibRaw lowers the white
        # level to the data maximum. Noise and AHD demosaicing are the only other differences.
        black = meta["black_level"]
        rescale = (meta["white_level"] - black) / (record.white_level - black)
        linear = up.gamma_expansion(up.invert_smoothstep(source))
        expected = up.gamma_compression(
            np.clip(linear / meta["brightness_gain"] * rescale, 0.0, 1.0))
        assert psnr(render, expected) > 25.0  # measured 28-32 dB
        # Colours are right: swapping red and blue costs more than 10 dB.
        assert psnr(render, expected) > psnr(render, expected[..., ::-1]) + 10.0
        for channel in range(3):
            correlation = np.corrcoef(render[..., channel].ravel(),
                                      expected[..., channel].ravel())[0, 1]
            assert correlation > 0.95


def test_photo_dirs_add_their_photos_after_the_packaged_ones_each_its_own_scene(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("b_lake.png", "a_hill.jpg"):
        cv2.imwrite(str(photos / name), rng.integers(0, 255, (SMALL.min_side + 8,
                                                              SMALL.min_side + 40, 3), np.uint8))
    (photos / "notes.txt").write_text("not a photo")
    config = dataclasses.replace(SMALL, photo_dirs=(str(photos),))
    packaged = synthetic.source_images()
    assert synthetic.source_images(config.photo_dirs) == packaged + [
        ("a_hill", str(photos / "a_hill.jpg")), ("b_lake", str(photos / "b_lake.png"))]
    paths = synthetic.generate(tmp_path / "out", config)
    names = [os.path.basename(path) for path in paths]
    assert names[-4:] == ["a_hill__v0.dng", "a_hill__v1.dng", "b_lake__v0.dng", "b_lake__v1.dng"]
    # The packaged photos' files are the same with or without the extra folder.
    plain = synthetic.generate(tmp_path / "plain", SMALL, limit=2)
    assert file_bytes(plain) == file_bytes(paths[:2])


def test_photo_dirs_that_is_missing_or_empty_is_an_error_naming_it(tmp_path):
    for folder in (tmp_path / "missing", tmp_path):
        config = dataclasses.replace(SMALL, photo_dirs=(str(folder),))
        with pytest.raises(ValueError, match=str(folder)):
            synthetic.generate(tmp_path / "out", config, limit=1)
