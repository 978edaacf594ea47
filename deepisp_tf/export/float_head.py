"""Full-integer conversion with the network's output head kept in float.

The packed-IO network ends in a head (`layers.output_head`): a 1x1 conv of the decoder's
features (the residual), a fixed bilinear demosaic conv of the packed input, their add with
the ReLU6 clip fused into it, and the fixed 1x1 depthwise output scale. In plain int8 the
residual is quantized at the scale of the whole output (it is small next to the bilinear
image), and the bilinear image and the sum are clipped to the calibration samples' range.
Here the trunk is int8 and these four ops run in float; the converter inserts a DEQUANTIZE
of the int8 input for the bilinear conv, a DEQUANTIZE of the trunk's features for the residual
conv, and one QUANTIZE of the output when the IO is int8. XNNPACK runs all of it (float and
int8) as one partition.

    calibrated = calibrated_model(converter)          # float flatbuffer + activation ranges
    tflite = quantize_with_float_head(calibrated, per_tensor=True, io_type="int8")

The graph input `bayer` and output `rgb` are quantized on the contract's range [0, 1]
(`pin_io_ranges`), not on the calibration samples' range: a calibration set without highlights
(the synthetic set: input max 0.65) would otherwise clip every brighter pixel of a real file.
Measured on the shipped model calibrated on the synthetic set (docs/int8.md): float head with
pinned IO -0.13 dB mean on the held-out files; the same without the pin -21 dB on a Canon G2
file; plain int8, pinned or not, -9.4 dB mean (its int8 head clips the highlights).

The head is found structurally in the calibrated flatbuffer, not by layer names: from the
graph output back through single-input ops to the first ADD, plus the producers of that
ADD's inputs (`head_tensors`).
"""

from __future__ import annotations

import numpy as np

from deepisp_tf import constants
from deepisp_tf.tf_env import tf
# pylint: disable=C0411,C0412  (after tf_env, which sets up tf_keras before TensorFlow loads)
from tensorflow.lite.python import convert as lite_convert
from tensorflow.lite.tools import flatbuffer_utils

HEAD_DEPTH = 4      # ops from the graph output back to the residual ADD, at most
IO_DTYPES = {"float": tf.float32, "int8": tf.int8, "uint8": tf.uint8}
IO_RANGE = (0.0, 1.0)          # bayer in and rgb out, by the model contract


def calibrated_model(converter: tf.lite.TFLiteConverter) -> bytes:
    """Return the converter's float flatbuffer with calibration statistics (not quantized).

    Args:
      converter: set up for full-integer PTQ (optimizations, representative_dataset).
    """
    converter._experimental_calibrate_only = True  # pylint: disable=W0212
    return converter.convert()


def head_tensors(model: object) -> list[int]:
    """Return the output tensor indices of the head ops of a float `ModelT`'s main subgraph.

    The head: the op writing the graph output, the ops before it with one activation input,
    back to the first ADD (inclusive), and the ops producing that ADD's two inputs.

    Raises:
      ValueError: the graph has not one output, or no ADD within `HEAD_DEPTH` ops of it.
    """
    graph = model.subgraphs[0]
    if len(graph.outputs) != 1:
        raise ValueError(f"a float head needs one graph output, got {len(graph.outputs)}")
    producer = {int(t): op for op in graph.operators for t in op.outputs}
    head: list[int] = []
    tensor = int(graph.outputs[0])
    for _ in range(HEAD_DEPTH):
        op = producer.get(tensor)
        if op is None:
            break
        head.append(tensor)
        if flatbuffer_utils.opcode_to_name(model, op.opcodeIndex) == "ADD":
            head.extend(int(t) for t in op.inputs if int(t) in producer)
            return head
        tensor = int(op.inputs[0])
    raise ValueError(f"no residual ADD within {HEAD_DEPTH} ops of the graph output: the "
                     "float head needs the packed-IO output head (layers.output_head)")


def head_node_names(calibrated: bytes) -> list[str]:
    """Return the converter's node names (output tensor names) of the head ops."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(calibrated))
    tensors = model.subgraphs[0].tensors
    return [tensors[index].name.decode() for index in head_tensors(model)]


def pin_io_ranges(calibrated: bytes, value_range: tuple[float, float] = IO_RANGE) -> bytes:
    """Return a calibrated model with the `bayer` input's and `rgb` output's ranges set.

    Args:
      calibrated: from `calibrated_model` (per-tensor min / max statistics).
      value_range: (min, max) for both; the contract's [0, 1] by default.

    Raises:
      ValueError: the model has no `serving_default` signature with `bayer` and `rgb`.
    """
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(calibrated))
    graph = model.subgraphs[0]
    named = {}
    for signature in model.signatureDefs or []:
        named.update({t.name.decode(): int(t.tensorIndex)
                      for t in list(signature.inputs) + list(signature.outputs)})
    missing = {constants.INPUT_BAYER, constants.OUTPUT_RGB} - set(named)
    if missing:
        raise ValueError(f"no {sorted(missing)} in the model's signature: cannot pin their ranges")
    for name in (constants.INPUT_BAYER, constants.OUTPUT_RGB):
        quantization = graph.tensors[named[name]].quantization
        quantization.min = np.array([value_range[0]], np.float32)
        quantization.max = np.array([value_range[1]], np.float32)
    return flatbuffer_utils.convert_object_to_bytearray(model)


def quantize_with_float_head(calibrated: bytes, per_tensor: bool, io_type: str) -> bytes:
    """Quantize a calibrated model to int8 except its head ops (module docstring).

    Args:
      calibrated: from `calibrated_model`.
      per_tensor: one weight scale per tensor (else per output channel) in the int8 trunk.
      io_type: "float", "int8" or "uint8" graph inputs and outputs.

    Returns:
      The .tflite bytes (not compacted), IO quantized on [0, 1] (`pin_io_ranges`).
    """
    if io_type not in IO_DTYPES:
        raise ValueError(f"io_type must be one of {tuple(IO_DTYPES)}, got {io_type!r}")
    calibrated = pin_io_ranges(calibrated)
    return lite_convert.mlir_quantize(
        calibrated, disable_per_channel=per_tensor, input_data_type=IO_DTYPES[io_type],
        output_data_type=IO_DTYPES[io_type], denylisted_nodes=head_node_names(calibrated))
