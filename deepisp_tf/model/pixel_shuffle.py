"""Learned x2 upsampling as a 1x1 conv to 4 * C channels and a depth-to-space (pixel shuffle).

Why not a transposed conv: a 2x2 stride-2 `Conv2DTranspose` computes the same function (each
low-resolution pixel writes a learned 2x2 block), but XNNPACK's int8 transposed-conv kernel is
slow on x86 (128x128x32 -> 256x256x32, 1 thread, Intel Xeon with AVX-512 VNNI: 14.4 ms int8 vs
8.1 ms float32), while a 1x1 conv is an ordinary GEMM that every int8 back end runs well and
DEPTH_TO_SPACE is a copy (the same upsampling: 0.69 ms int8, 1.53 ms float32).

`DepthToSpace` is a small custom layer rather than a `Lambda` or a raw `tf.nn.depth_to_space`
call: tfmot's QAT clones the model layer by layer and cannot clone Lambda or TF-op layers. It
has no weights and no quantizer of its own (`DepthToSpaceQuantizeConfig`): TFLite's int8
DEPTH_TO_SPACE keeps its input's scale and zero point, so the 1x1 conv's output quantizer is
the only one needed, and the int8 graph stays one XNNPACK partition.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorflow_model_optimization.quantization.keras import QuantizeConfig

from deepisp_tf.tf_env import keras, tf

BLOCK_SIZE = 2


@keras.utils.register_keras_serializable(package="deepisp_tf")
class DepthToSpace(keras.layers.Layer):
    """Rearrange [B, h, w, 4 * C] into [B, 2h, 2w, C] (`tf.nn.depth_to_space`, block 2).

    Input channel `C * (2 * dy + dx) + c` goes to channel c of the pixel (dy, dx) of each 2x2
    block: the order of `layers.depth_to_space_kernel` and of the runtime's unpacking.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:  # pylint: disable=arguments-differ
        return tf.nn.depth_to_space(inputs, BLOCK_SIZE)

    def compute_output_shape(self, input_shape: Any) -> tf.TensorShape:
        """[B, h, w, 4C] -> [B, 2h, 2w, C] (None stays None)."""
        batch, height, width, channels = tf.TensorShape(input_shape).as_list()
        if channels % (BLOCK_SIZE * BLOCK_SIZE):
            raise ValueError(f"DepthToSpace needs a channel count divisible by 4, got {channels}")
        scale = lambda n: None if n is None else n * BLOCK_SIZE  # noqa: E731
        return tf.TensorShape([batch, scale(height), scale(width),
                               channels // (BLOCK_SIZE * BLOCK_SIZE)])


@keras.utils.register_keras_serializable(package="deepisp_tf")
class DepthToSpaceQuantizeConfig(QuantizeConfig):
    """tfmot QuantizeConfig of `DepthToSpace`: no weights, no activation, output as input.

    A pure rearrangement keeps its input's quantization, like tfmot's own config for
    `Reshape`: adding an output quantizer would only insert a requantize op.
    """

    def get_weights_and_quantizers(self, layer: Any) -> list:
        return []

    def get_activations_and_quantizers(self, layer: Any) -> list:
        return []

    def set_quantize_weights(self, layer: Any, quantize_weights: list) -> None:
        if quantize_weights:
            raise ValueError("DepthToSpace has no weights to quantize")

    def set_quantize_activations(self, layer: Any, quantize_activations: list) -> None:
        if quantize_activations:
            raise ValueError("DepthToSpace has no activation to quantize")

    def get_output_quantizers(self, layer: Any) -> list:
        return []

    def get_config(self) -> dict[str, Any]:
        return {}


def quantize_configs() -> dict[type, QuantizeConfig]:
    """Return {custom layer class: its QuantizeConfig} for QAT of this package's models."""
    return {DepthToSpace: DepthToSpaceQuantizeConfig()}


def custom_objects() -> dict[str, Any]:
    """Return the custom classes a saved float or QAT model of this package may contain."""
    return {"DepthToSpace": DepthToSpace,
            "DepthToSpaceQuantizeConfig": DepthToSpaceQuantizeConfig}


def upsample_depth_to_space(x: Any, filters: int, name: str) -> Any:
    """Double the spatial size: 1x1 conv to 4 * filters channels, then `DepthToSpace`.

    Args:
      x: Keras tensor [B, h, w, C_in].
      filters: C_out.
      name: layer name prefix (`{name}_proj`, `{name}_d2s`).

    Returns:
      Keras tensor [B, 2h, 2w, C_out], linear (no activation).
    """
    x = keras.layers.Conv2D(BLOCK_SIZE * BLOCK_SIZE * filters, 1, name=f"{name}_proj")(x)
    return DepthToSpace(name=f"{name}_d2s")(x)


def weights_from_transpose(kernel: Any, bias: Any) -> tuple[Any, Any]:
    """Map a 2x2 stride-2 transposed conv's weights to the 1x1 conv of `upsample_depth_to_space`.

    The two compute the same function: output pixel (2h + dy, 2w + dx) channel c is
    `sum_i x[h, w, i] * kernel[dy, dx, c, i] + bias[c]` in both, with the 1x1 conv's output
    channel `C * (2 * dy + dx) + c` carrying that pixel before the depth-to-space.

    Args:
      kernel: Conv2DTranspose kernel [2, 2, C_out, C_in] (numpy).
      bias: its bias [C_out].

    Returns:
      (1x1 conv kernel [1, 1, C_in, 4 * C_out], bias [4 * C_out]).
    """
    height, width, channels, inputs = kernel.shape
    if (height, width) != (BLOCK_SIZE, BLOCK_SIZE):
        raise ValueError(f"expected a 2x2 transposed conv kernel, got {kernel.shape}")
    # [dy, dx, c, i] -> [i, dy, dx, c] -> [i, 4 * C] in (2 * dy + dx) * C + c order.
    pointwise = kernel.transpose(3, 0, 1, 2).reshape(inputs, 4 * channels)
    return pointwise[None, None], np.tile(bias, 4)
