"""Fine-tuning for one camera: the shipped Keras model is the network the shipped `.tflite`
files were converted from, `--init_from` starts a run from it (or from a workdir) and refuses
another architecture, a one-file dataset trains with held-back validation tiles, and an export
writes `recommended.tflite`, which the runtime renders with."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

import deepisp_tf
import test_optimize as tiny
from conftest import REPO
from deepisp_tf import config as config_lib
from deepisp_tf import export
from deepisp_tf import training as train
from deepisp_tf.data import pipeline, prepare
from deepisp_tf.model import io
from deepisp_tf.model.unet import build_model
from deepisp_tf.raw import synthetic
from deepisp_tf.runtime import frames, models
from deepisp_tf.runtime.interpreter import Runner
from deepisp_tf.tf_env import keras
from test_train import TINY, tiny_data  # noqa: F401 (a fixture)

# float32 LiteRT vs the Keras model it was converted from, outputs in [0, 1].
FLOAT32_MAX_ABS_DIFF = 1e-4


def _shipped_config() -> config_lib.ExperimentConfig:
    return io.load_config(models.DEFAULT_MODEL_DIR)


@pytest.fixture(scope="module")
def shipped_network():
    return io.load_model(train.SHIPPED_KERAS_MODEL)


def test_shipped_keras_model_is_the_network_of_the_shipped_float32_tflite(shipped_network):
    network = shipped_network
    runner = Runner(models.default_model_path(precision="float32"), threads=1)
    height, width = runner.tile_shape
    rng = np.random.default_rng(0)
    # A smooth mosaic-like tile: what the network sees (gamma-encoded, white-balanced, [0, 1]).
    tile = np.clip(rng.uniform(0.2, 0.8) + 0.05 * rng.standard_normal((height, width)), 0, 1
                   ).astype(np.float32)
    expected = network(tile[None, ..., None], training=False).numpy()[0]
    got = runner.run(tile)
    assert got.shape == expected.shape == (height, width, 3)
    assert np.max(np.abs(got - expected)) <= FLOAT32_MAX_ABS_DIFF


def test_shipped_config_is_the_finetune_presets_architecture():
    shipped, finetune = _shipped_config(), config_lib.get_preset("finetune")
    assert shipped.model == finetune.model
    assert shipped.data.tile_size == finetune.data.tile_size
    assert shipped.data.crop_size == finetune.data.crop_size


def test_init_from_default_copies_the_shipped_weights_exactly(shipped_network):
    config = config_lib.get_preset("finetune")
    network = build_model(config.model, config.data.crop_size)
    train.initialize(network, train.resolve(train.DEFAULT_INIT), config.name)
    source = shipped_network
    assert len(network.weights) == len(source.weights) > 0
    for mine, theirs in zip(network.get_weights(), source.get_weights()):
        assert np.array_equal(mine, theirs)


def test_init_from_another_architecture_is_refused_naming_the_file_and_the_config():
    network = build_model(TINY.model, TINY.data.crop_size)
    with pytest.raises(train.InitModelError) as error:
        train.initialize(network, train.SHIPPED_KERAS_MODEL, TINY.name)
    assert train.SHIPPED_KERAS_MODEL in str(error.value) and "'tiny'" in str(error.value)


def test_resolve_takes_a_workdir_or_a_keras_file_and_refuses_anything_else(tmp_path):
    workdir = tmp_path / "run"
    path = io.save_trained(build_model(TINY.model, TINY.data.crop_size), TINY, workdir)
    assert train.resolve(str(workdir)) == path
    assert train.resolve(path) == path
    empty = tmp_path / "empty"
    empty.mkdir()
    for junk in (str(empty), str(tmp_path / "missing.keras"), str(tmp_path)):
        with pytest.raises(train.InitModelError, match="--init_from|no final"):
            train.resolve(junk)


@pytest.fixture(scope="module")
def one_file_data(tmp_path_factory) -> str:
    """One synthetic DNG prepared into 32x32 tiles, all in the train split (no val file)."""
    root = tmp_path_factory.mktemp("one_file")
    config = dataclasses.replace(TINY.data, tile_stride=8, max_tiles_per_file=14)
    (path,) = synthetic.generate(root / "raw", TINY.synthetic, limit=1)
    output = str(root / "data")
    prepare.prepare_files([path], output, config, source="synthetic",
                          splits={os.path.basename(path): "train"}, workers=1, progress=False)
    return output


def _tile_bytes(data_dir: str, split: str) -> list[bytes]:
    paths, held_back = pipeline.split_sources(data_dir, split)
    return [record.numpy() for path in paths for record in pipeline.read_shard(path, held_back)]


def test_one_file_dataset_holds_back_every_seventh_tile_for_validation_and_no_tile_twice(
        one_file_data):
    assert pipeline.holds_back_val(one_file_data)
    train_tiles, val_tiles = _tile_bytes(one_file_data, "train"), _tile_bytes(one_file_data, "val")
    assert len(train_tiles) + len(val_tiles) == 14
    assert len(val_tiles) == 2 and len(train_tiles) == 12   # tiles 0 and 7 of the one shard
    assert not set(train_tiles) & set(val_tiles)


def test_finetune_from_a_workdir_starts_from_its_weights_and_trains_a_one_file_dataset(
        one_file_data, tmp_path):
    source = str(tmp_path / "source")
    keras.utils.set_random_seed(1)
    io.save_trained(build_model(TINY.model, TINY.data.crop_size), TINY, source)
    source_weights = io.load_model(io.model_path(source)).get_weights()

    class FirstWeights(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.weights = self.model.get_weights()

    first = FirstWeights()
    with pytest.warns(train.HeldBackValidationWarning, match="no validation file"):
        summary = train.train(TINY, one_file_data, str(tmp_path / "tuned"), verbose=0,
                              init_from=source, callbacks=[first])
    network_weights = first.weights[:len(source_weights)]
    assert all(np.array_equal(a, b) for a, b in zip(network_weights, source_weights))
    assert summary.complete and np.isfinite(summary.best_val_psnr)
    assert summary.init_from == io.model_path(source)
    assert "started from" in train.format_summary(summary)


def test_train_cli_with_a_bad_init_from_exits_with_the_reason_and_no_traceback(tiny_data,
                                                                                tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tools.train", "--config=finetune", f"--data={tiny_data}",
         f"--workdir={tmp_path / 'w'}", f"--init_from={tmp_path / 'nothing.keras'}"],
        cwd=REPO, capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": REPO})
    assert done.returncode != 0
    assert "nothing.keras" in done.stderr and "Traceback" not in done.stderr


def test_export_writes_recommended_tflite_that_the_runtime_renders_with(tmp_path):
    data_dir = tiny.write_dataset(tmp_path / "data", {"train": 16, "val": 4})
    workdir = tmp_path / "workdir"
    io.save_trained(tiny.train_tiny(data_dir, steps=20), tiny.TINY, workdir)
    output = str(tmp_path / "tflite")
    # The deploy form of the finetune preset: packed IO, int8 IO, a float-head int8 variant.
    config = config_lib.ExportConfig(variants=("float32", "int8_per_tensor_float_head"),
                                     extra_shapes=((64, 64),), int8_io="int8", packed_io=True,
                                     representative_samples=4, eval_tiles=4, latency_runs=2,
                                     max_psnr_drop_db=1.0)
    report = export.export_workdir(str(workdir), output, config, data_dir=data_dir)
    assert not report["errors"], report["errors"]
    deployed = report["recommendation"]["deployed"]
    assert deployed["file"] == export.RECOMMENDED_FILE and deployed["shape"] == [64, 64]
    assert report["recommendation"]["variant"] in deployed["from"]
    recommended = os.path.join(output, export.RECOMMENDED_FILE)
    with open(recommended, "rb") as mine, open(os.path.join(output, deployed["from"]), "rb") as src:
        assert mine.read() == src.read()
    assert io.load_config(output) == dataclasses.replace(tiny.TINY, export=config)
    runner = Runner(recommended)
    assert runner.tile_shape == (64, 64) and runner.packed_io
    frame = tmp_path / "frame.dng"
    frames.write_synthetic_dng(str(frame), 0.05)
    image = deepisp_tf.render(frame, model=recommended)
    assert image.dtype == np.uint16 and image.ndim == 3 and image.shape[2] == 3
