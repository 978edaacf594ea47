"""The ISP network: every preset builds flat and trains, fixed layers stay fixed, tfmot and the
int8 converter accept it, and the cost report counts what it claims."""

import collections
import dataclasses

import numpy as np
import pytest

from deepisp_tf import config as config_lib
from deepisp_tf.model import build_model, cost, layers, pixel_shuffle, spatial_multiple, unet
from deepisp_tf.model import io as model_io
from deepisp_tf.raw import cfa, classic
from deepisp_tf.tf_env import keras, tf

TINY = config_lib.ModelConfig(encoder_stages=2, stem_filters=8, decoder_filters=(8, 8),
                              metadata_units=8, use_metadata=True)
PRESETS = sorted(config_lib.PRESETS)


def _inputs(config: config_lib.ModelConfig, size: int, batch: int = 2, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    inputs = {"bayer": rng.random((batch, size, size, 1), np.float32)}
    if config.use_metadata:
        inputs["metadata"] = rng.normal(size=(batch, config.metadata_size)).astype(np.float32)
    return inputs


def _smooth_target(batch: int, size: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Return (mosaic [B, S, S, 1], smooth RGB image [B, S, S, 3]) the mosaic was sampled from."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((batch, size // 8, size // 8, 3)).astype(np.float32)
    rgb = tf.image.resize(coarse, (size, size), method="bilinear").numpy()
    mosaic = np.stack([cfa.mosaic(image, "RGGB") for image in rgb])[..., np.newaxis]
    return mosaic.astype(np.float32), rgb


def _as_trained(model: keras.Model) -> None:
    """Give the head's zero-initialised residual conv small random weights, as training does."""
    residual = model.get_layer(f"{layers.OUTPUT_LAYER_NAME}_conv")
    kernel, bias = residual.get_weights()
    residual.set_weights([np.random.default_rng(5).normal(0, 0.1, kernel.shape), bias])


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_builds_flat_and_every_weight_gets_a_finite_nonzero_gradient(name):
    preset = config_lib.get_preset(name)
    size = spatial_multiple(preset.model)
    model = build_model(preset.model, size)
    assert not [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    assert [t.name.split(":")[0] for t in model.inputs] == (
        ["bayer", "metadata"] if preset.model.use_metadata else ["bayer"])
    inputs = _inputs(preset.model, size)
    output = model(inputs, training=True).numpy()
    assert output.shape == (2, size, size, 3) and np.isfinite(output).all()
    # Inference mode: in training mode the batch statistics of the next BatchNormalization
    # cancel any constant shift, so a few MobileNetV2 betas (block_13..15_project_BN, whose
    # only consumers are convs + BN) get an exactly zero gradient there by construction.
    # The head's residual conv starts at zero (a fresh model is the bilinear demosaic), which
    # blocks every gradient upstream of it; give it weights to check the graph is connected.
    _as_trained(model)
    target = np.random.default_rng(2).random((2, size, size, 3)).astype(np.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.abs(model(inputs, training=False) - target))
    gradients = tape.gradient(loss, model.trainable_weights)
    silent = [w.name for w, g in zip(model.trainable_weights, gradients)
              if g is None or not np.isfinite(g.numpy()).all() or not np.any(g.numpy())]
    assert not silent
    assert len(gradients) == len(model.trainable_weights) > 50


def test_a_model_built_for_any_size_runs_on_tiles_of_several_sizes():
    model = build_model(TINY)
    for height, width in ((16, 16), (32, 48)):
        output = model(_inputs(TINY, 16, batch=1) | {
            "bayer": np.zeros((1, height, width, 1), np.float32)})
        assert output.shape == (1, height, width, 3)


def test_fixed_layers_pack_the_mosaic_and_unpack_the_output_exactly_and_never_train():
    model = build_model(TINY, 16)
    bayer = np.random.default_rng(3).random((1, 16, 16, 1)).astype(np.float32)
    pack = model.get_layer(layers.PACK_LAYER_NAME)
    np.testing.assert_array_equal(pack(bayer).numpy()[0], cfa.pack(bayer[0, ..., 0]))
    head = model.get_layer(layers.OUTPUT_LAYER_NAME)
    planes = np.random.default_rng(4).random((1, 8, 8, 12)).astype(np.float32)
    np.testing.assert_allclose(head(planes).numpy(),
                               tf.nn.depth_to_space(planes, 2).numpy() / layers.OUTPUT_RANGE,
                               rtol=1e-6)
    trainable = {id(w) for w in model.trainable_weights}
    for name in layers.FIXED_LAYER_NAMES:
        assert not any(id(w) in trainable for w in model.get_layer(name).weights)


def test_bilinear_kernel_is_opencvs_bilinear_demosaic_in_packed_form():
    mosaic = np.random.default_rng(6).random((16, 16)).astype(np.float32)
    packed = tf.nn.conv2d(cfa.pack(mosaic)[None], layers.bilinear_demosaic_kernel(), 1, "SAME")
    rgb = tf.nn.depth_to_space(packed, 2).numpy()[0]
    np.testing.assert_allclose(rgb[2:-2, 2:-2], classic.demosaic(mosaic)[2:-2, 2:-2], atol=2e-5)


@pytest.mark.parametrize("name", PRESETS)
def test_a_fresh_model_is_the_bilinear_demosaic_of_its_input(name):
    preset = config_lib.get_preset(name)
    size = spatial_multiple(preset.model)
    model = build_model(preset.model, size)
    inputs = _inputs(preset.model, size, batch=1)
    output = model(inputs, training=False).numpy()[0]
    expected = classic.demosaic(inputs["bayer"][0, ..., 0])
    np.testing.assert_allclose(output[2:-2, 2:-2], expected[2:-2, 2:-2], atol=2e-5)


def test_output_stays_in_the_unit_range_for_extreme_inputs():
    model = build_model(TINY, 16)
    inputs = _inputs(TINY, 16)
    for scale in (-50.0, 50.0):
        output = model({**inputs, "bayer": inputs["bayer"] * scale}).numpy()
        assert output.min() >= 0.0 and output.max() <= 1.0


def test_batch_norm_momentum_comes_from_the_config_for_every_layer_mobilenet_included():
    model = build_model(dataclasses.replace(TINY, bn_momentum=0.9), 16)
    momenta = {layer.momentum for layer in model.layers
               if isinstance(layer, keras.layers.BatchNormalization)}
    assert momenta == {0.9}


def test_tiny_model_overfits_one_batch():
    keras.utils.set_random_seed(0)
    model = build_model(TINY, 32)
    mosaic, rgb = _smooth_target(4, 32)
    target = np.sqrt(rgb)[..., ::-1]  # far from the bilinear demosaic the model starts as
    inputs = {"bayer": mosaic, "metadata": _inputs(TINY, 32, batch=4)["metadata"]}
    model.compile(keras.optimizers.Adam(1e-2), loss="mae")
    losses = [float(model.train_on_batch(inputs, target)) for _ in range(120)]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.25 * losses[0]


@pytest.mark.parametrize("upsampling", ["transpose", "depth_to_space"])
def test_int8_tflite_of_the_model_runs_as_one_xnnpack_partition(tmp_path, upsampling):
    from ai_edge_litert.interpreter import Interpreter

    model = build_model(dataclasses.replace(TINY, upsampling=upsampling), 32)
    _as_trained(model)  # an all-zero residual has an empty int8 range XNNPACK's ADD rejects
    unet.set_batch_norm_momentum(model, 0.0)  # BN statistics of the data: realistic ranges
    calibration = _inputs(TINY, 32, batch=4)
    model(calibration, training=True)
    signature = [tf.TensorSpec((1, 32, 32, 1), tf.float32),
                 tf.TensorSpec((1, TINY.metadata_size), tf.float32)]
    function = tf.function(lambda bayer, metadata: model([bayer, metadata]),
                           input_signature=signature)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [function.get_concrete_function()], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([calibration["bayer"][i:i + 1],
                                                 calibration["metadata"][i:i + 1]]
                                                for i in range(4))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    path = tmp_path / "tiny_int8.tflite"
    path.write_bytes(converter.convert())
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    # After the default XNNPACK delegate is applied, the op list gains one DELEGATE node per
    # partition it took over; RELU, MINIMUM or RESIZE_NEAREST_NEIGHBOR would split the graph.
    ops = collections.Counter(op["op_name"] for op in interpreter._get_ops_details())
    assert ops["DELEGATE"] == 1, ops
    assert not {"RELU", "MINIMUM", "RESIZE_NEAREST_NEIGHBOR"} & set(ops)
    if upsampling == "depth_to_space":
        operators = _tflite_op_names(path.read_bytes())
        assert operators["DEPTH_TO_SPACE"] == len(TINY.decoder_filters)
        assert operators["TRANSPOSE_CONV"] == 1  # only the head's fixed full-resolution unpack


def _tflite_op_names(content: bytes) -> collections.Counter:
    """Count the builtin ops of a .tflite model as converted (before delegation)."""
    from deepisp_tf.runtime import op_profile

    return collections.Counter(name for _, name, _, _ in op_profile.single_op_models(content))


def test_depth_to_space_layer_is_tf_depth_to_space_for_any_spatial_size():
    layer = pixel_shuffle.DepthToSpace()
    planes = np.random.default_rng(7).random((2, 3, 5, 12)).astype(np.float32)
    np.testing.assert_array_equal(layer(planes).numpy(), tf.nn.depth_to_space(planes, 2).numpy())
    assert layer.compute_output_shape((None, None, 4, 8)).as_list() == [None, None, 8, 2]
    with pytest.raises(ValueError, match="divisible by 4"):
        layer.compute_output_shape((1, 4, 4, 6))


def _random_biases(model: keras.Model) -> None:
    """Give every bias of the model random values (fresh ones are zero, hiding channel order)."""
    rng = np.random.default_rng(8)
    for layer in model.layers:
        if getattr(layer, "use_bias", False) and layer.weights:
            kernel, bias = layer.get_weights()[:2]
            layer.set_weights([kernel, rng.normal(0, 0.1, bias.shape), *layer.get_weights()[2:]])


def test_transpose_model_rebuilt_with_depth_to_space_computes_the_same_function():
    transpose = dataclasses.replace(TINY, upsampling="transpose")
    model = build_model(transpose, 32)
    _as_trained(model)
    _random_biases(model)
    converted, config = unet.with_depth_to_space_upsampling(model, transpose, 32)
    assert config.upsampling == "depth_to_space"
    assert {"decoder0_d2s", "decoder1_d2s"} <= {layer.name for layer in converted.layers}
    inputs = _inputs(TINY, 32)
    expected = model(inputs, training=False).numpy()
    np.testing.assert_allclose(converted(inputs, training=False).numpy(), expected, atol=1e-5)
    # The channel order matters: swapping two of the four sub-pixel groups changes the output.
    proj = converted.get_layer("decoder1_proj")
    kernel, bias = proj.get_weights()
    groups = kernel.shape[-1] // 4
    swapped = np.concatenate([kernel[..., groups:2 * groups], kernel[..., :groups],
                              kernel[..., 2 * groups:]], axis=-1)
    proj.set_weights([swapped, bias])
    assert np.abs(converted(inputs, training=False).numpy() - expected).max() > 1e-4


def test_depth_to_space_model_saves_and_loads_with_the_package_custom_objects(tmp_path):
    config = dataclasses.replace(TINY, upsampling="depth_to_space")
    model = build_model(config, 32)
    _as_trained(model)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = model_io.load_model(path)
    inputs = _inputs(TINY, 32, batch=1)
    np.testing.assert_array_equal(loaded(inputs).numpy(), model(inputs).numpy())


def test_cost_counts_macs_per_output_pixel_of_known_layers():
    inputs = keras.Input((None, None, 4))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)                  # 9*4*8 = 288 / px
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)                 # 9*8 = 72 / px
    x = keras.layers.Conv2DTranspose(2, 2, strides=2)(x)                   # 4*8*2 / 4 = 16 / px
    model = keras.Model(inputs, x)
    assert cost.macs_per_pixel(model, 16, 16) == pytest.approx((288 + 72) / 4 + 16)


def test_default_preset_is_far_cheaper_than_the_full_resolution_unet_baseline():
    default = config_lib.get_preset("default").model
    macs = cost.macs_per_pixel(default, 256, 256)
    assert macs * 256 * 256 < 0.2 * 1.2e9 and macs < 5000  # DESIGN §3: ~1.2 GMAC per tile
    assert "M params" in cost.describe(default) and "kMAC/px" in cost.describe(default)


def test_invalid_model_configs_raise_value_error():
    assert len(unet.ENCODER_STAGE_OUTPUTS) == config_lib.MAX_ENCODER_STAGES
    with pytest.raises(ValueError, match="one entry per encoder stage"):
        build_model(dataclasses.replace(TINY, decoder_filters=(8,)))
    with pytest.raises(ValueError, match="upsampling"):
        build_model(dataclasses.replace(TINY, upsampling="cubic"))
    with pytest.raises(ValueError, match="multiples of 8"):
        build_model(TINY, 20)
    with pytest.raises(ValueError, match="multiple of 32"):
        config_lib.override(config_lib.get_preset("default"), ["data.crop_size=80"])
