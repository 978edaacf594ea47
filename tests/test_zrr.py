"""Zurich RAW-to-RGB: a fixture in exactly the dataset's layout, read in pure TF."""

import json
import os

import cv2
import numpy as np
import pytest

from deepisp_tf.config import DataConfig
from deepisp_tf.data import pipeline, zrr
from deepisp_tf.raw import color

SIZE = zrr.PATCH_SIZE


@pytest.fixture(scope="module")
def zrr_root(tmp_path_factory):
    """train/ with 3 pairs, test/ with 2, as 16-bit PNG mosaics (10-bit values) + Canon JPEGs."""
    root = tmp_path_factory.mktemp("zrr")
    rng = np.random.default_rng(0)
    for split, count in (("train", 3), ("test", 2)):
        os.makedirs(root / split / "huawei_raw")
        os.makedirs(root / split / "canon")
        for index in range(count):
            mosaic = rng.integers(0, 1024, (SIZE, SIZE)).astype(np.uint16)
            cv2.imwrite(str(root / split / "huawei_raw" / f"{index}.png"), mosaic)
            rgb = np.full((SIZE, SIZE, 3), (10 * index + 40, 128, 200), np.uint8)
            cv2.imwrite(str(root / split / "canon" / f"{index}.jpg"), rgb[..., ::-1])
    (root / "train" / "huawei_raw" / "7.png").write_bytes(b"")  # unpaired: ignored
    return str(root)


def test_patch_indices_lists_pairs_only(zrr_root):
    assert zrr.patch_indices(zrr_root, "train") == [0, 1, 2]
    assert zrr.patch_indices(zrr_root, "test") == [0, 1]


def test_dataset_decodes_16_bit_mosaic_and_jpeg_target(zrr_root):
    index, mosaic, target = next(iter(zrr.dataset(zrr_root, "train")))
    expected = cv2.imread(os.path.join(zrr_root, "train", "huawei_raw", "0.png"),
                          cv2.IMREAD_UNCHANGED)
    assert int(index) == 0
    np.testing.assert_array_equal(mosaic.numpy(), expected)
    assert target.shape == (SIZE, SIZE, 3) and target.dtype.name == "uint8"
    np.testing.assert_allclose(target.numpy().reshape(-1, 3).mean(0), (40, 128, 200), atol=2)


def test_prepare_writes_train_val_test_with_pynet_normalization(zrr_root, tmp_path):
    config = DataConfig(tile_size=SIZE, tile_stride=SIZE, crop_size=256, val_fraction=0,
                        test_fraction=0)
    manifest = zrr.prepare(zrr_root, str(tmp_path), config, shard_size=2, progress=False)
    assert json.load(open(tmp_path / "manifest.json")) == manifest
    assert {s: manifest["splits"][s]["tiles"] for s in ("train", "val", "test")} == {
        "train": 3, "val": 2, "test": 2}
    inputs, target = next(iter(pipeline.make_dataset(str(tmp_path), "test", config, 1,
                                                     training=False)))
    raw = cv2.imread(os.path.join(zrr_root, "test", "huawei_raw", "0.png"), cv2.IMREAD_UNCHANGED)
    crop = raw[96:352, 96:352] / 1020.0  # PyNET: raw / (4 * 255); centre crop of 256
    np.testing.assert_allclose(inputs["bayer"].numpy()[0, ..., 0],  # then the input gamma
                               color.gamma_compression(np.clip(crop, 0, 1)), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(target.numpy()[0].reshape(-1, 3).mean(0) * 255,
                               (40, 128, 200), atol=2)


def test_missing_layout_raises_clear_error(tmp_path):
    with pytest.raises(ValueError, match="not a Zurich RAW-to-RGB split"):
        zrr.patch_indices(str(tmp_path), "train")
