"""tfmot fine-tunes: pruning reaches its sparsity and strips cleanly; QAT wraps the whole model.

Also home of the tiny prepared dataset and tiny trained model that tests/test_export.py reuses
(`import test_optimize`): 34 px tiles of smooth random colour images and their RGGB mosaics,
and a 2-stage MobileNetV2-UNet trained for a few steps on them.
"""

import os

import numpy as np
import pytest

from deepisp_tf import optimize
from deepisp_tf.config import (DataConfig, ExperimentConfig, ModelConfig, OptimizeConfig,
                               TrainConfig)
from deepisp_tf.data import tfrecord
import dataclasses

from deepisp_tf.config import get_preset
from deepisp_tf.model import build_model, layers
from deepisp_tf.model.layers import PACK_LAYER_NAME, space_to_depth_kernel
from deepisp_tf.raw import cfa
from deepisp_tf.tf_env import keras, tf

STORED_TILE = 34
CROP = 32
TINY = ExperimentConfig(
    name="tiny", description="test model", command="pytest",
    data=DataConfig(tile_size=STORED_TILE, tile_stride=STORED_TILE, crop_size=CROP,
                    shuffle_buffer=8, border=0),
    model=ModelConfig(alpha=0.35, encoder_stages=2, stem_filters=8, decoder_filters=(16, 8),
                      metadata_units=8),
    train=TrainConfig(batch_size=4))
FAST_OPTIMIZE = OptimizeConfig(target_sparsity=0.5, prune_steps=8, pruning_frequency=2,
                               qat_steps=3, batch_size=4)


def smooth_image(rng: np.random.Generator, size: int = STORED_TILE) -> np.ndarray:
    """A [size, size, 3] uint16 image: random colours bilinearly spread from a 5x5 grid."""
    grid = rng.uniform(0.1, 0.9, (5, 5, 3))
    coords = np.linspace(0, 4, size)
    low, frac = np.minimum(coords.astype(int), 3), coords - np.minimum(coords.astype(int), 3)
    rows = grid[low] * (1 - frac)[:, None, None] + grid[low + 1] * frac[:, None, None]
    image = rows[:, low] * (1 - frac)[None, :, None] + rows[:, low + 1] * frac[None, :, None]
    return np.round(image * 65535).astype(np.uint16)


def write_dataset(root, counts: dict[str, int], seed: int = 0) -> str:
    """Write a prepared dataset (shards/<split>/*.tfrecord) with `counts[split]` tiles each."""
    rng = np.random.default_rng(seed)
    for split, count in counts.items():
        folder = os.path.join(root, "shards", split)
        os.makedirs(folder, exist_ok=True)
        with tf.io.TFRecordWriter(os.path.join(folder, "s0.tfrecord")) as writer:
            for index in range(count):
                target = smooth_image(rng)
                writer.write(tfrecord.encode_example(
                    cfa.mosaic(target, "RGGB"), target, np.zeros((2, 2), np.float32), 65535.0,
                    np.ones(3, np.float32), np.eye(3), f"{split}{index}.dng"))
    return str(root)


def train_tiny(data_dir: str, steps: int = 40) -> keras.Model:
    """Build the tiny model at the crop size and train it for `steps` L1 steps."""
    tf.keras.utils.set_random_seed(0)
    model = build_model(TINY.model, CROP)
    dataset = optimize.train_dataset(data_dir, TINY.data, FAST_OPTIMIZE)
    optimize.fine_tune(model, dataset, steps, 3e-3)
    return model


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("tiny_data"), {"train": 16, "val": 4})


@pytest.fixture(scope="module")
def trained(data_dir):
    return train_tiny(data_dir)


@pytest.fixture(scope="module")
def train_batches(data_dir):
    return optimize.train_dataset(data_dir, TINY.data, FAST_OPTIMIZE)


@pytest.fixture(scope="module")
def batch(train_batches):
    inputs, _ = next(iter(train_batches))
    return inputs


def test_pruning_schedule_reaches_target_on_an_update_step_before_the_last_step():
    schedule = optimize.pruning_schedule(FAST_OPTIMIZE)
    steps = [step for step in range(FAST_OPTIMIZE.prune_steps)
             if bool(schedule(tf.constant(step))[0])]
    assert steps[-1] < FAST_OPTIMIZE.prune_steps
    np.testing.assert_allclose(float(schedule(tf.constant(steps[-1]))[1]), 0.5, atol=1e-6)


@pytest.fixture(scope="module")
def pruning(trained, train_batches):
    """(wrapped model after a pruning fine-tune, its stripped model): what `optimize.prune` does."""
    import tensorflow_model_optimization as tfmot
    wrapped = optimize.prune_wrap(trained, FAST_OPTIMIZE)
    optimize.fine_tune(wrapped, train_batches, FAST_OPTIMIZE.prune_steps, 1e-3,
                       (tfmot.sparsity.keras.UpdatePruningStep(),))
    return wrapped, optimize.strip_pruning(wrapped)


def test_prune_reaches_target_sparsity_and_leaves_the_fixed_pack_layer_alone(trained, pruning):
    _, pruned = pruning
    assert optimize.weight_sparsity(trained) < 0.01
    assert abs(optimize.weight_sparsity(pruned) - 0.5) < 0.01
    per_layer = [np.mean(k == 0) for k in optimize.kernels(pruned).values() if k.size >= 64]
    assert min(per_layer) > 0.45            # every sizeable kernel pruned, not just a few
    assert PACK_LAYER_NAME not in optimize.kernels(pruned)
    np.testing.assert_array_equal(pruned.get_layer(PACK_LAYER_NAME).get_weights()[0],
                                  space_to_depth_kernel())
    assert not any(isinstance(layer, keras.layers.Wrapper) for layer in pruned.layers)


def test_strip_pruning_preserves_outputs_and_leaves_the_trained_model_untouched(
        trained, pruning, batch):
    wrapped, stripped = pruning
    np.testing.assert_allclose(stripped(batch, training=False), wrapped(batch, training=False),
                               atol=1e-6)
    assert not np.allclose(stripped(batch, training=False), trained(batch, training=False))
    assert optimize.weight_sparsity(trained) < 0.01


def test_quantize_aware_with_data_ranges_wraps_every_weighted_layer_and_matches_float(
        trained, batch):
    qat = optimize.quantize_aware(trained)
    weighted = [layer for layer in qat.layers if layer.weights]
    assert all(type(layer).__name__ in ("QuantizeWrapperV2", "QuantizeLayer")
               for layer in weighted)
    float_out = np.asarray(trained(batch, training=False))

    def psnr_vs_float() -> float:
        qat_out = np.asarray(qat(batch, training=False))
        return float(10 * np.log10(1 / np.mean(np.square(float_out - qat_out))))

    default_ranges = psnr_vs_float()            # tfmot's initial [-6, 6] activation ranges
    assert optimize.init_activation_ranges(qat, trained, [batch]) > 20
    # Fake quantization with the data's ranges: the same function plus 8-bit rounding noise.
    assert psnr_vs_float() > max(30.0, default_ranges + 5), (default_ranges, psnr_vs_float())


def test_quantize_aware_names_the_unsupported_layer():
    inputs = keras.Input((8, 8, 1), name="bayer")
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv")(inputs)
    x = keras.layers.Lambda(lambda t: t * 2.0, name="doubling_lambda")(x)
    with pytest.raises(optimize.UnsupportedLayerError, match="doubling_lambda"):
        optimize.quantize_aware(keras.Model(inputs, x))


def _fixed_weights(model: keras.Model) -> dict[str, list[np.ndarray]]:
    """{fixed layer name: its weights}, looking through tfmot wrappers."""
    return {name: [w.numpy().copy() for w in variables]
            for name, variables in _fixed_variables(model).items()}


def _fixed_variables(model: keras.Model) -> dict[str, list[tf.Variable]]:
    """{fixed layer name: its kernel variables}; a tfmot wrapper holds its layer's variables."""
    result = {}
    for layer in model.layers:
        inner = layer.layer if isinstance(layer, keras.layers.Wrapper) else layer
        if inner.name in layers.FIXED_LAYER_NAMES:
            prefix = (f"{inner.name}/kernel", f"{inner.name}/depthwise_kernel")
            result[inner.name] = [w for w in layer.weights if w.name.startswith(prefix)]
            assert result[inner.name], f"no kernel found for {inner.name}"
    return result


def _kernel(wrapper: keras.layers.Wrapper) -> tf.Variable:
    """The kernel variable of the layer inside a tfmot QuantizeWrapper."""
    return next(w for w in wrapper.weights if w.name.startswith(f"{wrapper.layer.name}/kernel"))


def test_prune_wrap_wraps_learned_kernels_of_the_default_model_but_never_a_fixed_layer():
    for upsampling in ("transpose", "depth_to_space"):
        config = dataclasses.replace(get_preset("default").model, upsampling=upsampling)
        wrapped = optimize.prune_wrap(build_model(config, 64), FAST_OPTIMIZE)
        names = {layer.layer.name for layer in wrapped.layers
                 if isinstance(layer, keras.layers.Wrapper)}
        upsampler = "decoder0_upconv" if upsampling == "transpose" else "decoder0_proj"
        assert {"stem_conv", "Conv1", upsampler, "rgb_conv", "decoder3_pw_conv"} <= names
        assert not names & set(layers.FIXED_LAYER_NAMES)
        assert not any(name.endswith("_dw") for name in names)   # depthwise stays dense


def test_pruning_fine_tune_leaves_every_fixed_kernel_exactly_as_built(trained, pruning):
    _, pruned = pruning
    before, after = _fixed_weights(trained), _fixed_weights(pruned)
    assert set(after) == set(layers.FIXED_LAYER_NAMES)
    for name, kernels in before.items():
        for old, new in zip(kernels, after[name]):
            np.testing.assert_array_equal(new, old, err_msg=name)


def test_qat_fine_tune_trains_learned_kernels_but_never_a_fixed_one(trained, train_batches):
    reference = optimize.quantize_aware(trained)
    before = _fixed_weights(reference)
    stem_before = _kernel(reference.get_layer("quant_stem_conv")).numpy().copy()
    with optimize.frozen_fixed_kernels(reference) as frozen:
        trainable = {id(w) for w in reference.trainable_weights}
        assert frozen == len(layers.FIXED_LAYER_NAMES)
        for name, variables in _fixed_variables(reference).items():
            assert not any(id(w) in trainable for w in variables), name
    # What export runs; a large learning rate so that everything learnable moves.
    config = dataclasses.replace(FAST_OPTIMIZE, learning_rate=1e-2)
    qat = optimize.quantization_aware_train(trained, train_batches, config)
    assert np.abs(_kernel(qat.get_layer("quant_stem_conv")).numpy() - stem_before).max() > 1e-4
    assert set(_fixed_weights(qat)) == set(layers.FIXED_LAYER_NAMES)
    for name, kernels in _fixed_weights(qat).items():
        for old, new in zip(before[name], kernels):
            np.testing.assert_array_equal(new, old, err_msg=name)
    # The weight order is tfmot's again: a clone takes the weights by position.
    with layers.quantize_scope():
        clone = keras.models.clone_model(qat)
    clone.set_weights(qat.get_weights())


def test_quantize_aware_accepts_depth_to_space_upsampling_and_keeps_its_function(batch):
    tf.keras.utils.set_random_seed(1)
    config = dataclasses.replace(TINY.model, upsampling="depth_to_space")
    model = build_model(config, CROP)
    qat = optimize.quantize_aware(model)
    assert "quant_decoder0_d2s" in {layer.name for layer in qat.layers}
    optimize.init_activation_ranges(qat, model, [batch])
    float_out = np.asarray(model(batch, training=False))
    qat_out = np.asarray(qat(batch, training=False))
    assert 10 * np.log10(1 / np.mean(np.square(float_out - qat_out))) > 30.0
