"""Quantization-friendly building blocks of the ISP network, made only of built-in Keras layers.

Why no custom layers: `tfmot.quantization.keras.quantize_model` looks every layer up in the
default 8-bit registry by its exact class, so a custom layer (even with a `QuantizeConfig`) makes
it fail unless every caller annotates that layer by hand first; the registry also has no
`Multiply`. Everything here is therefore a `Conv2D`, `Conv2DTranspose`, `DepthwiseConv2D`,
`BatchNormalization`, `ReLU`, `Add`, `Dense`, `Reshape` or `UpSampling2D`, which
`quantize_model`, `prune_low_magnitude`, the TFLite int8 converter, XNNPACK, the GPU delegate
and NNAPI all accept:

- space-to-depth (packing the RGGB mosaic) is a stride-2 `Conv2D` with fixed one-hot weights;
- depth-to-space (the full-resolution output) is a learned stride-2 `Conv2DTranspose`;
- broadcasting the metadata is a `Dense` projection reshaped to [B, 1, 1, C] and added.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np

from deepisp_tf.tf_env import keras

UPSAMPLING_MODES = ("transpose", "bilinear", "nearest")
DECODER_BLOCKS = ("separable", "conv")
PACK_LAYER_NAME = "pack_mosaic"
# Layers whose weights are structure, not learned: pruning or training them breaks the model.
FIXED_LAYER_NAMES = (PACK_LAYER_NAME,)

_BN_EPSILON = 1e-3
_BN_MOMENTUM = 0.99


def space_to_depth_kernel() -> np.ndarray:
    """Return the one-hot [2, 2, 1, 4] kernel that packs a mosaic into (R, G1, G2, B) planes.

    Output channel `2 * dy + dx` copies the site (dy, dx) of each 2x2 block: the same order as
    `deepisp_tf.raw.cfa.pack` and `tf.nn.space_to_depth`.
    """
    kernel = np.zeros((2, 2, 1, 4), dtype=np.float32)
    for dy in range(2):
        for dx in range(2):
            kernel[dy, dx, 0, 2 * dy + dx] = 1.0
    return kernel


def pack_mosaic(bayer: Any) -> Any:
    """Pack a Bayer mosaic into four half-resolution planes inside the model.

    Args:
      bayer: Keras tensor [B, H, W, 1], H and W even, red at the origin.

    Returns:
      Keras tensor [B, H/2, W/2, 4] with channels (R, G1, G2, B).
    """
    layer = keras.layers.Conv2D(
        4, 2, strides=2, padding="valid", use_bias=False, trainable=False,
        kernel_initializer=keras.initializers.Constant(space_to_depth_kernel().tolist()),
        name=PACK_LAYER_NAME)
    return layer(bayer)


def conditioning_bias(hidden: Any, channels: int, name: str) -> Any:
    """Project a per-image vector into a per-channel bias that broadcasts over space.

    Args:
      hidden: Keras tensor [B, N] (the metadata embedding).
      channels: C, the channels of the feature map the bias is added to.
      name: layer name prefix.

    Returns:
      Keras tensor [B, 1, 1, C].
    """
    bias = keras.layers.Dense(channels, name=f"{name}_dense")(hidden)
    return keras.layers.Reshape((1, 1, channels), name=f"{name}_reshape")(bias)


def add_relu(inputs: list[Any], name: str) -> Any:
    """Sum feature maps (the last ones may be [B, 1, 1, C] biases) and apply ReLU.

    Adds are chained pairwise: a single n-ary add becomes ADD_N in TFLite, which neither
    broadcasts nor runs in XNNPACK.
    """
    total = inputs[0]
    for index, other in enumerate(inputs[1:]):
        total = keras.layers.Add(name=f"{name}_add{index}")([total, other])
    return keras.layers.ReLU(name=f"{name}_relu")(total)


def conv_bn(x: Any, filters: int, kernel_size: int, name: str, strides: int = 1) -> Any:
    """Conv2D (no bias) + BatchNormalization: the pair QAT and the converter fold into one op."""
    x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                            use_bias=False, name=f"{name}_conv")(x)
    return keras.layers.BatchNormalization(epsilon=_BN_EPSILON, momentum=_BN_MOMENTUM,
                                           name=f"{name}_bn")(x)


def conv_block(x: Any, filters: int, block: str, name: str) -> Any:
    """Apply one 3x3 feature block, keeping the spatial size.

    Args:
      x: Keras tensor [B, h, w, C_in].
      filters: C_out.
      block: "conv" (dense 3x3 conv) or "separable" (depthwise 3x3 then pointwise 1x1,
        MobileNet style, about 9x cheaper at equal width).
      name: layer name prefix.

    Returns:
      Keras tensor [B, h, w, C_out] after BatchNormalization and ReLU.
    """
    if block == "conv":
        x = conv_bn(x, filters, 3, name)
    elif block == "separable":
        x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False,
                                         name=f"{name}_dw")(x)
        x = keras.layers.BatchNormalization(epsilon=_BN_EPSILON, momentum=_BN_MOMENTUM,
                                            name=f"{name}_dw_bn")(x)
        x = keras.layers.ReLU(name=f"{name}_dw_relu")(x)
        x = conv_bn(x, filters, 1, f"{name}_pw")
    else:
        raise ValueError(f"decoder block must be one of {DECODER_BLOCKS}, got {block!r}")
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def upsample(x: Any, filters: int, mode: str, name: str) -> Any:
    """Double the spatial size and set the channel count.

    Args:
      x: Keras tensor [B, h, w, C_in].
      filters: C_out.
      mode: "transpose" (learned 2x2 stride-2 transposed conv, i.e. a 1x1 conv to 4 * C_out
        channels followed by depth-to-space), "bilinear" or "nearest" (a 1x1 conv at the low
        resolution, then `UpSampling2D`).
      name: layer name prefix.

    Returns:
      Keras tensor [B, 2h, 2w, C_out], linear (no activation).
    """
    if mode == "transpose":
        return keras.layers.Conv2DTranspose(filters, 2, strides=2, padding="same",
                                            name=f"{name}_upconv")(x)
    if mode not in UPSAMPLING_MODES:
        raise ValueError(f"upsampling must be one of {UPSAMPLING_MODES}, got {mode!r}")
    x = keras.layers.Conv2D(filters, 1, name=f"{name}_proj")(x)
    return keras.layers.UpSampling2D(2, interpolation=mode, name=f"{name}_resize")(x)


def output_head(x: Any, name: str = "srgb") -> Any:
    """Map packed-resolution features to the full-resolution sRGB image in [0, 1].

    A learned 2x2 stride-2 transposed conv is depth-to-space fused with the last 1x1 conv:
    every half-resolution position writes its own 2x2 block of RGB pixels.

    Args:
      x: Keras tensor [B, H/2, W/2, C].
      name: name of the output layer.

    Returns:
      Keras tensor [B, H, W, 3], clipped to [0, 1].
    """
    x = keras.layers.Conv2DTranspose(3, 2, strides=2, padding="same", name=f"{name}_head")(x)
    return keras.layers.ReLU(max_value=1.0, name=name)(x)


def custom_objects() -> dict[str, Any]:
    """Return the objects `keras.models.load_model` needs for a float model of this package.

    The float model is built from built-in layers only, so this is empty; it exists so loading
    code does not change if a custom layer is ever added.
    """
    return {}


@contextlib.contextmanager
def quantize_scope() -> Iterator[dict[str, Any]]:
    """Context in which float and tfmot QAT models of this package can be loaded or quantized.

    Inside it `keras.models.load_model` resolves tfmot's quantization wrappers, quantizers and
    configs as well as `custom_objects()`.

    Yields:
      `custom_objects()`, for callers that also pass it explicitly.
    """
    from tensorflow_model_optimization.quantization.keras import quantize_scope as tfmot_scope

    objects = custom_objects()
    with tfmot_scope(objects):
        yield objects


def is_prunable(layer: Any) -> bool:
    """Return whether magnitude pruning may touch `layer`'s weights (not a fixed layer)."""
    return layer.name not in FIXED_LAYER_NAMES
