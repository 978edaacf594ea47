"""Packed-IO export: the packed network is the full network without its pack and depth-to-space
layers (same weights, same function), converts to one XNNPACK partition, and the runtime renders
the same image from it as from the unpacked model of the same weights."""

import dataclasses
import os

import numpy as np
import pytest

from deepisp_tf import config as config_lib
from deepisp_tf import export
from deepisp_tf.model import layers, unet
from deepisp_tf.raw import cfa
from deepisp_tf.runtime import Runner, frames, pipeline
from deepisp_tf.runtime.packed import pack_planes, unpack_output
from deepisp_tf.tf_env import tf

TINY = config_lib.ModelConfig(encoder_stages=2, stem_filters=8, decoder_filters=(8, 8),
                              metadata_units=8, use_metadata=False)
TILE = 32
CAM_TO_SRGB = np.array([[1.6, -0.4, -0.2], [-0.3, 1.5, -0.2], [0.0, -0.5, 1.5]], np.float32)


def _trained(config: config_lib.ModelConfig, tile: int | None):
    """A model with random weights everywhere (as training leaves it), head residual included,
    and BatchNormalization statistics away from identity."""
    model = unet.build_model(config, tile)
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if layer.name in layers.FIXED_LAYER_NAMES or not layer.weights:
            continue
        layer.set_weights([rng.uniform(0.5, 1.5, w.shape) if "variance" in v.name or
                           "gamma" in v.name else rng.normal(0, 0.1, w.shape)
                           for v, w in zip(layer.weights, layer.get_weights())])
    return model


def _mosaic(size: int, batch: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((batch, size, size, 1), np.float32)


@pytest.mark.parametrize("use_metadata", [False, True])
def test_packed_model_unpacked_equals_the_full_model(use_metadata):
    config = dataclasses.replace(TINY, use_metadata=use_metadata)
    full = _trained(config, None)
    packed = unet.packed_io_model(full, config)
    assert layers.PACK_LAYER_NAME not in [layer.name for layer in packed.layers]
    bayer = _mosaic(TILE)
    planes = np.stack([cfa.pack(image[..., 0]) for image in bayer])
    inputs, packed_inputs = [bayer], [planes]
    if use_metadata:
        metadata = np.random.default_rng(1).normal(size=(2, config.metadata_size))
        inputs.append(metadata.astype(np.float32))
        packed_inputs.append(metadata.astype(np.float32))
    expected = full(inputs if use_metadata else bayer, training=False).numpy()
    got = packed(packed_inputs if use_metadata else planes, training=False).numpy()
    assert got.shape == (2, TILE // 2, TILE // 2, 12)
    assert 0 <= got.min() and got.max() <= 1
    unpacked = tf.nn.depth_to_space(got, 2).numpy()
    np.testing.assert_allclose(unpacked, expected, atol=1e-5)
    np.testing.assert_array_equal(np.stack([unpack_output(g) for g in got]), unpacked)
    assert np.abs(expected - full(inputs[0] if not use_metadata else inputs,
                                  training=False).numpy()).max() == 0
    assert expected.std() > 0.01   # control: the residual is not zero, the output not constant


def test_packed_io_model_rejects_a_model_of_another_config():
    full = _trained(TINY, None)
    wider = dataclasses.replace(TINY, stem_filters=16)
    with pytest.raises(ValueError, match="stem_conv"):
        unet.packed_io_model(full, wider)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.float32])
def test_pack_planes_is_cfa_pack_and_unpack_output_is_depth_to_space(dtype):
    rng = np.random.default_rng(2)
    tile = (rng.random((8, 12)) * 100).astype(dtype)
    np.testing.assert_array_equal(pack_planes(tile), cfa.pack(tile))
    output = (rng.random((4, 6, 12)) * 100).astype(dtype)
    expected = tf.nn.depth_to_space(output[None].astype(np.float32), 2).numpy()[0]
    np.testing.assert_array_equal(unpack_output(output), expected.astype(dtype))
    assert unpack_output(output).dtype == dtype


@pytest.fixture(scope="module")
def tflite_models(tmp_path_factory):
    """(unpacked, packed) .tflite of the same weights, float32 and int8 IO."""
    folder = tmp_path_factory.mktemp("packed_io")
    model = _trained(TINY, None)
    samples = [[_mosaic(TILE, 1, seed)] for seed in range(8)]
    paths = {}
    for mode, io_type in (("float32", "float"), ("int8", "int8")):
        for packed_io in (False, True):
            if packed_io:
                fixed = export.packed_fixed_model(model, TINY, TILE, TILE)
                reps = export.pack_samples(samples)
            else:
                fixed = export.fixed_shape_model(model, TILE, TILE)
                reps = samples
            tflite = export.convert_model(fixed, mode, lambda r=reps: iter(r), io_type)
            path = folder / export.tflite_name(mode, TILE, TILE, packed_io)
            path.write_bytes(tflite)
            paths[mode, packed_io] = str(path)
    return paths


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_runner_detects_packed_models_and_keeps_the_full_resolution_contract(tflite_models,
                                                                            mode):
    plain, packed = Runner(tflite_models[mode, False]), Runner(tflite_models[mode, True])
    assert (plain.packed_io, packed.packed_io) == (False, True)
    assert packed.tile_shape == plain.tile_shape == (TILE, TILE)
    assert all(op.delegated for op in packed.ops())   # one XNNPACK partition, int8 too
    names, plain_names = [op.name for op in packed.ops()], [op.name for op in plain.ops()]
    for name in ("CONV_2D", "TRANSPOSE_CONV"):   # the pack conv and the depth-to-space are gone
        assert names.count(name) == plain_names.count(name) - 1, name
    bayer = _mosaic(TILE, 1, seed=9)[0, ..., 0]
    got, expected = packed.run(bayer), plain.run(bayer)
    assert got.shape == (TILE, TILE, 3)
    if mode == "float32":
        np.testing.assert_allclose(got, expected, atol=1e-5)
    else:   # the same int8 tolerance as tests/test_runtime.py's runner-vs-Keras check
        assert np.abs(got - expected).mean() < 0.005
    stored = packed.invoke(packed.input_quantization.quantize(bayer))
    assert stored.dtype == packed.output_quantization.dtype and stored.shape == (TILE, TILE, 3)


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_packed_model_renders_the_image_of_the_unpacked_model(tflite_models, mode):
    """Tiles, stitching and the colour tables give the same 16-bit sRGB image, within the
    colour tables' rounding as in tests/test_runtime.py (measured: int8 identical, the pack
    conv and the depth-to-space being exact in int8)."""
    record = dataclasses.replace(frames.synthetic_record(70, 93, pattern="GBRG", seed=4),
                                 cam_to_srgb=CAM_TO_SRGB)
    images = [pipeline.infer_record(record, Runner(tflite_models[mode, packed_io]), 8)
              for packed_io in (False, True)]
    assert images[0].shape == images[1].shape == (70, 93, 3)
    difference = np.abs(images[0].astype(int) - images[1].astype(int))
    assert difference.max() <= 4 and difference.mean() < 1


def test_export_writes_packed_files_that_the_report_measures_at_full_resolution(tmp_path):
    """Without data only float32 converts; its packed file is named so, runs through `Runner`
    at the full-resolution tile, and stays on XNNPACK."""
    experiment = config_lib.ExperimentConfig(  # tiles of TILE + 2: the scored shape is TILE
        name="tiny", description="", command="", model=TINY,
        data=config_lib.DataConfig(tile_size=TILE + 2, tile_stride=TILE + 2, crop_size=TILE))
    config = config_lib.ExportConfig(variants=("float32",), latency_runs=3, threads=1,
                                     packed_io=True)
    report = export.export_model(_trained(TINY, None), experiment, str(tmp_path), config)
    entry, = report["variants"]
    assert entry["error"] is None and entry["packed_io"]
    assert entry["file"] == f"float32_packed_{TILE}x{TILE}.tflite"
    assert os.path.isfile(tmp_path / entry["file"]) and entry["xnnpack_all_delegated"]
    assert "TRANSPOSE_CONV" in entry["ops"] and entry["latency_ms"] > 0
    assert Runner(str(tmp_path / entry["file"])).tile_shape == (TILE, TILE)
    assert os.path.isfile(tmp_path / "report.md")
