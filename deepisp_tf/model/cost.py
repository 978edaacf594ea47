"""Model cost, counted analytically from layer shapes: parameters and multiply-accumulates.

MACs count the layers that dominate inference: `Conv2D`, `Conv2DTranspose`, `DepthwiseConv2D`,
`SeparableConv2D` and `Dense` (biases, BatchNormalization (folded at conversion), additions,
activations and resizes are not counted). They are reported per output pixel, so models and
tile sizes compare directly: a 1088x1920 frame costs `macs_per_pixel * 1088 * 1920`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepisp_tf.config import ModelConfig
from deepisp_tf.tf_env import keras

DESCRIBE_TILE = 256


def count_params(model: keras.Model) -> int:
    """Return the number of weights of `model`, trainable and not (BN statistics included)."""
    return int(model.count_params())


def _unwrap(layer: keras.layers.Layer) -> keras.layers.Layer:
    """Return the layer inside tfmot pruning / quantization wrappers (keras.layers.Wrapper)."""
    while isinstance(layer, keras.layers.Wrapper):
        layer = layer.layer
    return layer


def _spatial(shape: Any) -> int:
    """Return the product of the dimensions between batch and channels of a static shape."""
    return int(np.prod([int(d) for d in shape[1:-1]], dtype=np.int64))


def layer_macs(layer: keras.layers.Layer, input_shape: Any, output_shape: Any) -> int:
    """Return the multiply-accumulates of one call of `layer` for one batch element.

    Args:
      layer: a Keras layer (wrappers are looked through).
      input_shape: its static input shape, e.g. (None, h, w, C_in).
      output_shape: its static output shape, e.g. (None, h', w', C_out).

    Returns:
      MACs, 0 for layers that are not counted.
    """
    layer = _unwrap(layer)
    if isinstance(layer, keras.layers.Conv2DTranspose):
        kernel_h, kernel_w = layer.kernel_size
        return _spatial(input_shape) * kernel_h * kernel_w * input_shape[-1] * layer.filters
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kernel_h, kernel_w = layer.kernel_size
        return _spatial(output_shape) * kernel_h * kernel_w * output_shape[-1]
    if isinstance(layer, keras.layers.SeparableConv2D):
        kernel_h, kernel_w = layer.kernel_size
        depth = input_shape[-1] * layer.depth_multiplier
        return _spatial(output_shape) * depth * (kernel_h * kernel_w + layer.filters)
    if isinstance(layer, keras.layers.Conv2D):
        kernel_h, kernel_w = layer.kernel_size
        per_group = input_shape[-1] // layer.groups
        return _spatial(output_shape) * kernel_h * kernel_w * per_group * layer.filters
    if isinstance(layer, keras.layers.Dense):
        return _spatial(input_shape) * input_shape[-1] * layer.units
    return 0


def _with_spatial_size(model: keras.Model, height: int, width: int) -> keras.Model:
    """Return `model`, or a weightless clone of it whose image inputs are height x width."""
    shapes = [tuple(t.shape) for t in model.inputs]
    wanted = [(s[0], height, width, s[3]) if len(s) == 4 else s for s in shapes]
    if shapes == wanted:
        return model
    inputs = [keras.Input(s[1:], name=t.name.split(":")[0]) for s, t in zip(wanted, model.inputs)]
    return keras.models.clone_model(model, input_tensors=inputs)


def macs_per_pixel(model_or_config: keras.Model | ModelConfig, height: int, width: int) -> float:
    """Return the multiply-accumulates per output pixel at a given input size.

    Args:
      model_or_config: a Functional model (any tf_keras model, built at any or dynamic size)
        or a `ModelConfig`, which is built at height x width.
      height: H of the image inputs (rank-4 inputs).
      width: W of the image inputs.

    Returns:
      Total MACs of one image divided by the pixels of the (first) output, H' * W'.
    """
    if isinstance(model_or_config, ModelConfig):
        from deepisp_tf.model.unet import build_model  # here: unet imports nothing from cost

        model = build_model(model_or_config, (height, width))
    else:
        model = _with_spatial_size(model_or_config, height, width)
    total = 0
    for layer in model.layers:
        for node in layer.inbound_nodes:
            input_shape, output_shape = node.input_shapes, node.output_shapes
            if isinstance(input_shape, (list, dict)):  # multi-input layers are never counted
                continue
            total += layer_macs(layer, tuple(input_shape), tuple(output_shape))
    return total / _spatial(model.outputs[0].shape)


def describe(config: ModelConfig) -> str:
    """Return a one-line summary of the model `config` builds: layout, parameters, MACs."""
    from deepisp_tf.model.unet import build_model

    model = build_model(config, DESCRIBE_TILE)
    macs = macs_per_pixel(model, DESCRIBE_TILE, DESCRIBE_TILE)
    decoder = "-".join(str(f) for f in config.decoder_filters)
    metadata = f"metadata {config.metadata_size}" if config.use_metadata else "no metadata"
    return (f"MobileNetV2-UNet on the packed mosaic (alpha {config.alpha:g}, "
            f"{config.encoder_stages} stages, stem {config.stem_filters}, decoder {decoder} "
            f"{config.decoder_block}, {config.upsampling} upsampling, {metadata}): "
            f"{count_params(model) / 1e6:.3f} M params, {macs / 1e3:.2f} kMAC/px "
            f"({macs * DESCRIBE_TILE ** 2 / 1e6:.0f} MMAC per {DESCRIBE_TILE}x{DESCRIBE_TILE} "
            f"tile)")
