"""Quantization-friendly building blocks of the ISP network, made of built-in Keras layers.

tfmot's `quantize_model` looks every layer up in the default 8-bit registry by its exact class,
so a custom layer needs a `QuantizeConfig` annotated before QAT (`optimize.quantize_aware` does
that for the one custom layer, `pixel_shuffle.DepthToSpace`); the registry also has no
`Multiply`. Everything else here is a `Conv2D`, `Conv2DTranspose`, `DepthwiseConv2D`,
`BatchNormalization`, `ReLU`, `Add`, `Dense`, `Reshape` or `UpSampling2D`, which
`quantize_model`, `prune_low_magnitude`, the TFLite int8 converter, XNNPACK, the GPU delegate
and NNAPI all accept:

- space-to-depth (packing the RGGB mosaic) is a stride-2 `Conv2D` with fixed one-hot weights;
- depth-to-space (the full-resolution output) is a stride-2 `Conv2DTranspose` with fixed
  one-hot weights;
- broadcasting the metadata is a `Dense` projection reshaped to [B, 1, 1, C] and added;
- the [0, 1] clip of the output is a ReLU6 fused into the head's last add, on 6x the output,
  then scaled back by the fixed depth-to-space: measured with LiteRT 2.3, int8 XNNPACK takes
  neither a standalone RELU nor MINIMUM, so `ReLU(max_value=1)` splits the graph in two
  partitions (and ran ~4x slower per 256x256 tile); the int8 graph is one XNNPACK partition.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np

from deepisp_tf import constants
from deepisp_tf.config import DECODER_BLOCKS, UPSAMPLING_MODES
from deepisp_tf.model import pixel_shuffle
from deepisp_tf.tf_env import keras

PACK_LAYER_NAME = "pack_mosaic"
OUTPUT_LAYER_NAME = constants.OUTPUT_RGB
BILINEAR_SUFFIX = "_bilinear"
# Layers whose weights are structure, not learned: pruning or training them breaks the model.
FIXED_LAYER_NAMES = (PACK_LAYER_NAME, OUTPUT_LAYER_NAME, OUTPUT_LAYER_NAME + BILINEAR_SUFFIX)
# Every activation of the decoder is a ReLU6, as in the MobileNetV2 encoder: unbounded ReLUs let
# a few activations of the last decoder levels reach ~300 while most stay under 5, which made the
# int8 step so coarse that full-integer quantization lost ~10 dB.
ACTIVATION_MAX = 6.0
# The head computes OUTPUT_RANGE x the output so ReLU6 clips it to [0, 1].
OUTPUT_RANGE = 6.0
_BN_EPSILON = 1e-3


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
    """Sum feature maps (the last ones may be [B, 1, 1, C] biases) and apply ReLU6.

    Adds are chained pairwise: a single n-ary add becomes ADD_N in TFLite, which neither
    broadcasts nor runs in XNNPACK.
    """
    total = inputs[0]
    for index, other in enumerate(inputs[1:]):
        total = keras.layers.Add(name=f"{name}_add{index}")([total, other])
    return keras.layers.ReLU(ACTIVATION_MAX, name=f"{name}_relu")(total)


def conv_bn(x: Any, filters: int, kernel_size: int, name: str, strides: int = 1) -> Any:
    """Conv2D (no bias) + BatchNormalization: the pair QAT and the converter fold into one op."""
    x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                            use_bias=False, name=f"{name}_conv")(x)
    return keras.layers.BatchNormalization(epsilon=_BN_EPSILON,
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
      Keras tensor [B, h, w, C_out] after BatchNormalization and ReLU6.
    """
    if block == "conv":
        x = conv_bn(x, filters, 3, name)
    elif block == "separable":
        x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False,
                                         name=f"{name}_dw")(x)
        x = keras.layers.BatchNormalization(epsilon=_BN_EPSILON,
                                            name=f"{name}_dw_bn")(x)
        x = keras.layers.ReLU(ACTIVATION_MAX, name=f"{name}_dw_relu")(x)
        x = conv_bn(x, filters, 1, f"{name}_pw")
    else:
        raise ValueError(f"decoder block must be one of {DECODER_BLOCKS}, got {block!r}")
    return keras.layers.ReLU(ACTIVATION_MAX, name=f"{name}_relu")(x)


def upsample(x: Any, filters: int, mode: str, name: str) -> Any:
    """Double the spatial size and set the channel count.

    Args:
      x: Keras tensor [B, h, w, C_in].
      filters: C_out.
      mode: "depth_to_space" (a 1x1 conv to 4 * C_out channels, then a depth-to-space:
        `pixel_shuffle.upsample_depth_to_space`), "transpose" (a learned 2x2 stride-2
        transposed conv: the same function, but slow in int8 on XNNPACK), "bilinear" or
        "nearest" (a 1x1 conv at the low resolution, then `UpSampling2D`).
      name: layer name prefix.

    Returns:
      Keras tensor [B, 2h, 2w, C_out], linear (no activation).
    """
    if mode == "depth_to_space":
        return pixel_shuffle.upsample_depth_to_space(x, filters, name)
    if mode == "transpose":
        return keras.layers.Conv2DTranspose(filters, 2, strides=2, padding="same",
                                            name=f"{name}_upconv")(x)
    if mode not in UPSAMPLING_MODES:
        raise ValueError(f"upsampling must be one of {UPSAMPLING_MODES}, got {mode!r}")
    x = keras.layers.Conv2D(filters, 1, name=f"{name}_proj")(x)
    return keras.layers.UpSampling2D(2, interpolation=mode, name=f"{name}_resize")(x)


def depth_to_space_kernel(channels: int, scale: float = 1.0) -> np.ndarray:
    """Return the one-hot [2, 2, C, 4 * C] Conv2DTranspose kernel of a 2x depth-to-space.

    Input channel `C * (2 * dy + dx) + c` goes to channel c of the pixel (dy, dx) of each
    2x2 block, times `scale`: the channel order of `tf.nn.depth_to_space` (and the inverse of
    `space_to_depth_kernel` for C = 1). A transposed conv kernel is [h, w, out, in].
    """
    kernel = np.zeros((2, 2, channels, 4 * channels), dtype=np.float32)
    for dy in range(2):
        for dx in range(2):
            for c in range(channels):
                kernel[dy, dx, c, channels * (2 * dy + dx) + c] = scale
    return kernel


def depth_to_space(x: Any, channels: int, name: str, scale: float = 1.0) -> Any:
    """Unpack 4 * C channels into a 2x larger image with a fixed transposed conv.

    Args:
      x: Keras tensor [B, h, w, 4 * C].
      channels: C.
      name: layer name (list it in FIXED_LAYER_NAMES: its weights are structure).
      scale: factor applied to every value.

    Returns:
      Keras tensor [B, 2h, 2w, C].
    """
    kernel = depth_to_space_kernel(channels, scale)
    layer = keras.layers.Conv2DTranspose(
        channels, 2, strides=2, padding="valid", use_bias=False, trainable=False,
        kernel_initializer=keras.initializers.Constant(kernel.tolist()), name=name)
    return layer(x)


def bilinear_demosaic_kernel() -> np.ndarray:
    """Return the [3, 3, 4, 12] conv kernel of bilinear demosaicking in packed form.

    Input: the packed RGGB mosaic (R, G1, G2, B per 2x2 block). Output channel
    `3 * (2 * dy + dx) + c` is colour c of pixel (dy, dx) of the block (`depth_to_space_kernel`
    order): the weighted mean of the colour-c sites of its 3x3 mosaic neighbourhood, with
    weights [[1, 2, 1], [2, 4, 2], [1, 2, 1]] / 4 for red and blue and the cross
    [[0, 1, 0], [1, 4, 1], [0, 1, 0]] / 4 for green (OpenCV's and LibRaw's bilinear).
    """
    weights = {0: np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 4,
               1: np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]]) / 4}
    weights[2] = weights[0]
    site_colour = ((0, 1), (1, 2))  # RGGB: colour of mosaic site (y % 2, x % 2)
    kernel = np.zeros((3, 3, constants.PACKED_PLANES, constants.PACKED_OUTPUT_CHANNELS),
                      dtype=np.float32)
    for dy in range(2):
        for dx in range(2):
            for c in range(3):
                for u in (-1, 0, 1):
                    for v in (-1, 0, 1):
                        y, x = dy + u, dx + v  # mosaic offset from the block's origin
                        if site_colour[y % 2][x % 2] != c:
                            continue
                        channel = 2 * (y % 2) + x % 2  # packed channel of that site
                        kernel[y // 2 + 1, x // 2 + 1, channel, 3 * (2 * dy + dx) + c] = (
                            weights[c][u + 1, v + 1])
    return kernel


def output_head(x: Any, packed: Any, name: str = OUTPUT_LAYER_NAME,
                packed_io: bool = False) -> Any:
    """Map packed-resolution features to the full-resolution camera RGB image in [0, 1].

    The network is a residual over a classic demosaic: a fixed bilinear demosaic of the
    (gamma-encoded) packed mosaic gives each 2x2 block's RGB, and a 1x1 conv of the decoder's
    features, starting at zero, adds the correction. The sum is scaled by OUTPUT_RANGE; ReLU6
    clips it to [0, 1] x OUTPUT_RANGE (fused into the add by the converter) and a fixed
    depth-to-space places the pixels and divides by OUTPUT_RANGE.

    Args:
      x: Keras tensor [B, H/2, W/2, C], the decoder's features.
      packed: Keras tensor [B, H/2, W/2, 4], the packed mosaic.
      name: name of the output layer; the bilinear layer is f"{name}_bilinear".
      packed_io: return the packed output instead: the clipped sum times 1 / OUTPUT_RANGE
        (`scale_channels`, named `name`) with no depth-to-space.

    Returns:
      Keras tensor [B, H, W, 3] in [0, 1]; with `packed_io`, [B, H/2, W/2, 12] in [0, 1] in
      the channel order of `depth_to_space_kernel` (channel 3 * (2 * dy + dx) + c).
    """
    residual = keras.layers.Conv2D(constants.PACKED_OUTPUT_CHANNELS, 1, kernel_initializer="zeros",
                                   name=f"{name}_conv")(x)
    bilinear = keras.layers.Conv2D(
        constants.PACKED_OUTPUT_CHANNELS, 3, padding="same", use_bias=False, trainable=False,
        kernel_initializer=keras.initializers.Constant(
            (bilinear_demosaic_kernel() * OUTPUT_RANGE).tolist()),
        name=f"{name}{BILINEAR_SUFFIX}")(packed)
    x = keras.layers.Add(name=f"{name}_add")([bilinear, residual])
    x = keras.layers.ReLU(max_value=OUTPUT_RANGE, name=f"{name}_clip")(x)
    if packed_io:
        return scale_channels(x, 1.0 / OUTPUT_RANGE, name)
    return depth_to_space(x, 3, name, scale=1.0 / OUTPUT_RANGE)


def scale_channels(x: Any, scale: float, name: str) -> Any:
    """Multiply every value by a constant with a fixed 1x1 depthwise conv.

    A depthwise conv is one XNNPACK op in float and int8 (a standalone MUL by a constant is
    too, but tfmot's 8-bit registry has no `Multiply`); the int8 graph stays one XNNPACK
    partition. Measured (LiteRT 2.3, 1 thread) on a 128x128x12 grid: +0.05-0.07 ms, ~3% of
    the default model's 256x256 tile. Folding the scale into the weights instead would need a
    clip at 1, which int8 XNNPACK does not take (see the module docstring).

    Args:
      x: Keras tensor [B, h, w, C].
      scale: the factor.
      name: layer name (list it in FIXED_LAYER_NAMES: its weights are structure).

    Returns:
      Keras tensor [B, h, w, C].
    """
    kernel = np.full((1, 1, int(x.shape[-1]), 1), scale, np.float32)
    layer = keras.layers.DepthwiseConv2D(
        1, use_bias=False, trainable=False,
        depthwise_initializer=keras.initializers.Constant(kernel.tolist()), name=name)
    return layer(x)


def custom_objects() -> dict[str, Any]:
    """Return the objects `keras.models.load_model` needs for a float model of this package.

    The one custom layer is `pixel_shuffle.DepthToSpace` (and its tfmot QuantizeConfig).
    """
    return pixel_shuffle.custom_objects()


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


def is_fixed(layer: Any) -> bool:
    """Return whether `layer`'s weights are structure, not learned: never train or prune them.

    True for the named fixed layers (FIXED_LAYER_NAMES) and for any layer built with
    `trainable=False`; tfmot wrappers are looked through.
    """
    while isinstance(layer, keras.layers.Wrapper):
        layer = layer.layer
    return layer.name in FIXED_LAYER_NAMES or not layer.trainable
