"""The default model shipped in the package: it loads, renders a held-out real file in the
reference render's geometry at the quality the README states, and its output on a fixed input is
pinned so an accidental change to the model or the runtime is caught.

When the shipped model is replaced on purpose, regenerate the golden file with
`PYTHONPATH=. python tests/test_shipped_model.py` and say so in the commit.
"""

import json
import os

import numpy as np
import pytest
import skimage.data

from conftest import sample
from deepisp_tf import metrics
from deepisp_tf.raw import cfa
from deepisp_tf.raw.io import read_raw
from deepisp_tf.runtime import models, pipeline
from deepisp_tf.runtime.interpreter import Runner

GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "default_model_tile.npz")
GOLDEN_FLOAT32 = os.path.join(os.path.dirname(__file__), "golden", "default_model_tile_float32.npz")
# The model card's held-out figure for this file (docs/model_card.md), float32 and int8.
CARD_PSNR = {"float32": 41.52, "int8": 41.68}
CARD_TOLERANCE_DB = 0.3
CROP = slice(96, 160)  # the golden keeps the centre 64 x 64 of the tile output
# int8 LiteRT kernels may round differently on another CPU: one output step (1/255) apart.
MAX_STEP_DIFF = 2.0 / 255
MEAN_DIFF = 0.25 / 255


def golden_input(tile: int) -> np.ndarray:
    """Return the fixed model input [tile, tile]: skimage's astronaut as a gamma RGGB mosaic."""
    rgb = skimage.data.astronaut()[:tile, 100:100 + tile].astype(np.float32) / 255.0
    return cfa.mosaic(rgb, "RGGB").astype(np.float32)


def shipped_runner(precision: str = "auto") -> Runner:
    return Runner(models.default_model_path(precision=precision), threads=1)


def test_the_package_ships_the_default_model_with_its_training_config():
    path = models.default_model_path()
    folder = os.path.dirname(path)
    with open(os.path.join(folder, models.MODEL_CONFIG_FILE), encoding="utf-8") as handle:
        config = json.load(handle)
    assert config["name"] == "default"
    runner = shipped_runner()
    assert not runner.has_metadata and runner.tile_shape[0] == runner.tile_shape[1]
    assert os.path.isfile(os.path.join(folder, "tile_float32.tflite"))


def test_shipped_model_output_on_a_fixed_tile_matches_the_golden_file():
    runner = shipped_runner("int8")  # the golden file holds the int8 model's output
    output = runner.run(golden_input(runner.tile_shape[0]))[CROP, CROP]
    expected = np.load(GOLDEN)["output"].astype(np.float32)
    difference = np.abs(output - expected)
    assert difference.max() <= MAX_STEP_DIFF and difference.mean() <= MEAN_DIFF


def test_shipped_float32_model_output_on_a_fixed_tile_matches_its_golden_file():
    runner = shipped_runner("float32")
    output = runner.run(golden_input(runner.tile_shape[0]))[CROP, CROP]
    expected = np.load(GOLDEN_FLOAT32)["output"].astype(np.float32)
    assert np.abs(output - expected).max() <= 1e-3  # float16 storage of the golden, ~5e-4


@pytest.mark.parametrize("precision", sorted(CARD_PSNR))
def test_shipped_model_renders_a_held_out_camera_at_the_model_card_figure(precision):
    # Canon PowerShot G2: one of the cameras held out of training (model card). The full chain:
    # input tables, tiles, seams, colour finish, geometry.
    record, reference = read_raw(sample("PowerShotG2_CRW_0304"), with_reference=True)
    image = pipeline.infer_record(record, shipped_runner(precision))
    assert image.dtype == np.uint16 and image.shape == reference.shape
    assert image.shape[:2] == tuple(record.render_size)
    psnr = metrics.score(reference / 65535.0, image / 65535.0).psnr
    assert abs(psnr - CARD_PSNR[precision]) <= CARD_TOLERANCE_DB, psnr


if __name__ == "__main__":
    for PRECISION, PATH in (("int8", GOLDEN), ("float32", GOLDEN_FLOAT32)):
        RUNNER = shipped_runner(PRECISION)
        OUTPUT = RUNNER.run(golden_input(RUNNER.tile_shape[0]))[CROP, CROP]
        os.makedirs(os.path.dirname(PATH), exist_ok=True)
        np.savez_compressed(PATH, output=OUTPUT.astype(np.float16))
        print(f"wrote {PATH}: {OUTPUT.shape}, mean {OUTPUT.mean():.4f}")
