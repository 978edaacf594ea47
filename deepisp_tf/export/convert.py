"""Conversion: a trained Keras model at a fixed input shape -> TFLite bytes, one call per mode.

`convert_model(model, mode, representative, io_type) -> bytes` is the library call every export
path uses; `fixed_shape_model` / `packed_fixed_model` give it the batch-1, fixed-(H, W) model.
Every flatbuffer has the signature `serving_default`: `bayer` [1, H, W, 1] (+ `metadata`
[1, 12]) -> `rgb` [1, H, W, 3] (packed IO: [1, H/2, W/2, 4] -> [1, H/2, W/2, 12]).

Modes:
    float32          float weights and activations
    float16          float16 weights (dequantized at load)
    dynamic          dynamic-range: int8 weights, float activations
    int8             full-integer PTQ, calibrated on representative samples
    int8_per_tensor  as int8 with one weight scale per tensor instead of per output channel
    int8_sparse      as int8 + the EXPERIMENTAL_SPARSITY encoding of pruned weights
    qat              full-integer from a tfmot QAT model's fake-quant ranges
    int8_float_head  as int8, with the output head (residual 1x1 conv, fixed bilinear, add +
                     clip, output scale) kept in float (`float_head`); packed-IO models only
    int8_per_tensor_float_head
                     as int8_float_head with one weight scale per tensor in the int8 trunk

Every mode's flatbuffer is compacted (`compact.compact_flatbuffer`: no tensor names, identical
vectors stored once; bit-identical outputs) unless `convert_model(..., compact=False)`.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np

from deepisp_tf import constants
from deepisp_tf.config import ModelConfig
from deepisp_tf.export import float_head
from deepisp_tf.export.compact import compact_flatbuffer
from deepisp_tf.model.layers import quantize_scope
from deepisp_tf.model.unet import packed_io_model
from deepisp_tf.raw import cfa
from deepisp_tf.tf_env import keras, tf

CONVERSION_MODES = ("float32", "float16", "dynamic", "int8", "int8_per_tensor", "int8_sparse",
                    "qat", "int8_float_head", "int8_per_tensor_float_head")
# Integer modes: they need calibration samples and take `io_type`.
INTEGER_MODES = ("int8", "int8_per_tensor", "int8_sparse", "qat", "int8_float_head",
                 "int8_per_tensor_float_head")
# Float-head modes: int8 trunk, float output head; they need a packed-IO model.
FLOAT_HEAD_MODES = ("int8_float_head", "int8_per_tensor_float_head")
PER_TENSOR_MODES = ("int8_per_tensor", "int8_per_tensor_float_head")


def fixed_shape_model(model: keras.Model, height: int, width: int) -> keras.Model:
    """Rebuild `model` (float, pruned or QAT) with batch 1 and a fixed H x W; copy the weights.

    Args:
      model: a Functional model of the contract, at any or dynamic spatial size.
      height: H of the `bayer` input (and of the `rgb` output).
      width: W.

    Returns:
      A model with inputs [1, height, width, C] (+ [1, 12]) computing the same function.
    """
    inputs = []
    for tensor in model.inputs:
        shape = tuple(tensor.shape[1:])
        if len(shape) == 3:
            shape = (height, width, shape[2])
        inputs.append(keras.Input(shape, batch_size=1, name=tensor.name.split(":")[0]))
    with quantize_scope():
        fixed = keras.models.clone_model(model, input_tensors=inputs)
    fixed.set_weights(model.get_weights())
    return fixed


def packed_fixed_model(model: keras.Model, config: ModelConfig, height: int,
                       width: int) -> keras.Model:
    """Return the batch-1 packed-IO variant of a float or pruned model for an H x W tile.

    Inputs [1, H/2, W/2, 4] (+ [1, 12]), output [1, H/2, W/2, 12] (`unet.packed_io_model`).

    Raises:
      ValueError: the model's layers cannot be copied by name (a tfmot QAT model).
    """
    return fixed_shape_model(packed_io_model(model, config, (height, width)),
                             height // 2, width // 2)


def pack_samples(samples: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    """Return calibration samples with each bayer [1, H, W, 1] packed to [1, H/2, W/2, 4]."""
    return [[cfa.pack(sample[0][0, ..., 0])[None], *sample[1:]] for sample in samples]


def is_packed_io(model: keras.Model) -> bool:
    """True for a packed-IO model: `bayer` [.., 4] planes in, [.., 12] packed RGB out."""
    return (int(model.inputs[0].shape[-1]) == constants.PACKED_PLANES
            and int(model.outputs[0].shape[-1]) == constants.PACKED_OUTPUT_CHANNELS)


def _serving_function(model: keras.Model) -> Any:
    """Return the concrete function `bayer` (+ `metadata`) -> {`rgb`} of a batch-1 model."""
    specs = [tf.TensorSpec(t.shape, tf.float32, name=t.name.split(":")[0]) for t in model.inputs]
    names = [spec.name for spec in specs]
    if names[0] != constants.INPUT_BAYER or names[1:] not in ([], [constants.INPUT_METADATA]):
        raise ValueError(f"model inputs must be ({constants.INPUT_BAYER}"
                         f"[, {constants.INPUT_METADATA}]), got {names}")

    @tf.function(input_signature=specs)
    def serve(*tensors):
        return {constants.OUTPUT_RGB: model(list(tensors) if len(tensors) > 1 else tensors[0],
                                             training=False)}

    return serve.get_concrete_function()


def convert_model(model: keras.Model, mode: str,
                  representative: Callable[[], Iterable[list[np.ndarray]]] | None = None,
                  io_type: str = "float", compact: bool = True) -> bytes:
    """Convert a batch-1, fixed-shape model to a TFLite flatbuffer.

    Args:
      model: from `fixed_shape_model` (a float model, or a tfmot QAT model for "qat"); the
        float-head modes need a packed-IO model (`packed_fixed_model`).
      mode: one of `CONVERSION_MODES` (module docstring).
      representative: calibration samples [bayer (+ metadata)] for the integer modes (QAT
        takes its ranges from the fake-quant layers; the converter still asks for samples).
      io_type: "float", "int8" or "uint8" inputs/outputs for the integer modes.
      compact: store the result with `compact_flatbuffer` (same outputs, fewer bytes).

    Returns:
      The .tflite bytes, signature `serving_default` (bayer[, metadata] -> rgb).

    Raises:
      ValueError: an unknown mode, an integer mode without representative samples, or a
        float-head mode on a model without packed IO.
    """
    if mode not in CONVERSION_MODES:
        raise ValueError(f"unknown conversion mode {mode!r}; one of {CONVERSION_MODES}")
    if mode in INTEGER_MODES and representative is None:
        raise ValueError(f"mode {mode} needs a representative data set")
    if mode in FLOAT_HEAD_MODES and not is_packed_io(model):
        raise ValueError(f"mode {mode} needs a packed-IO model (bayer [1, H/2, W/2, 4] -> rgb "
                         "[1, H/2, W/2, 12], convert.packed_fixed_model); got inputs "
                         f"{[tuple(t.shape) for t in model.inputs]}, output "
                         f"{tuple(model.outputs[0].shape)}")
    converter = _converter(model, mode, representative, io_type)
    with quantize_scope():
        if mode in FLOAT_HEAD_MODES:
            tflite = float_head.quantize_with_float_head(
                float_head.calibrated_model(converter), mode in PER_TENSOR_MODES, io_type)
        else:
            tflite = converter.convert()
    return compact_flatbuffer(tflite) if compact else tflite


def _converter(model: keras.Model, mode: str,
               representative: Callable[[], Iterable[list[np.ndarray]]] | None,
               io_type: str) -> tf.lite.TFLiteConverter:
    """Return a TFLiteConverter of `model` set up for `mode` (see `convert_model`)."""
    # The converter saves `trackable` as a SavedModel first; handing it the Keras model would
    # trace every layer's call for serialization (~5x slower), so a module holds the weights.
    trackable = tf.Module()
    trackable.weights = list(model.weights)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [_serving_function(model)], trackable)
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode in INTEGER_MODES:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        # A private converter flag (TF 2.21): the only switch for per-tensor weight scales.
        converter._experimental_disable_per_channel = (  # pylint: disable=W0212
            mode in PER_TENSOR_MODES)
        if mode == "int8_sparse":
            converter.optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
        converter.representative_dataset = representative  # QAT: only for unannotated tensors
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io_type != "float":
            converter.inference_input_type = getattr(tf, io_type)
            converter.inference_output_type = getattr(tf, io_type)
    return converter
