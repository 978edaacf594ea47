"""Post-conversion compaction of a TFLite flatbuffer: the same model, fewer bytes.

`compact_flatbuffer(bytes) -> bytes` rewrites a converter's output through the flatbuffer
object API (`tensorflow.lite.tools.flatbuffer_utils`) and changes only how it is stored:

- tensor names go, except those of the graph inputs and outputs (the runtime binds by the
  `serving_default` signature, which is kept, and names IO tensors in its errors); the model
  description and subgraph names go too;
- identical vectors are written once and shared: constant buffers with the same bytes, and,
  the bulk of an int8 model's overhead, the per-channel quantization parameters, whose int64
  zero points are all zero (one [C] array per kernel and per bias, each 8 bytes a channel).
  TFLite's loader needs as many zero points as scales, so they cannot be shortened; a shared
  vector keeps every count and every value;
- constant buffers stay 16-byte aligned, like the converter writes them.

Operators, tensors, quantization values, signatures and metadata are untouched, so the
interpreter computes bit-identical outputs (tests/test_export_int8.py proves it on XNNPACK
and on LiteRT's builtin kernels). Measured on the shipped 256x256 packed tiles: int8 261 248
-> 178 528 bytes, float16 281 288 -> 243 632, float32 478 312 -> 454 848 (docs/int8.md).
"""

from __future__ import annotations

import flatbuffers
import numpy as np

from deepisp_tf.tf_env import tf  # noqa: F401  (first: sets up tf_keras before TensorFlow)
from tensorflow.lite.tools import flatbuffer_utils  # pylint: disable=C0411

TFLITE_FILE_IDENTIFIER = b"TFL3"
BUFFER_ALIGNMENT = 16        # what the converter uses for constant data


class _SharingBuilder(flatbuffers.Builder):
    """A flatbuffers Builder that writes each distinct numpy vector once.

    A flatbuffer may point several tables at one vector (a forward offset to data written
    earlier); the object API's `Pack` writes every numpy field with `CreateNumpyVector`, so
    caching that call shares equal shape, index, quantization and constant-data vectors.
    """

    def __init__(self, initial_size: int = 1024) -> None:
        super().__init__(initial_size)
        self._vectors: dict[tuple[str, bytes], int] = {}

    def CreateNumpyVector(self, x: np.ndarray) -> int:  # noqa: N802  (flatbuffers' name)
        """Return the offset of a 1-D vector equal to `x`, written now or reused."""
        key = (x.dtype.str, x.tobytes())
        if key not in self._vectors:
            self._vectors[key] = self._write_vector(x)
        return self._vectors[key]

    def _write_vector(self, x: np.ndarray) -> int:
        """Write `x` (1-D, little-endian); byte vectors (constant data) 16-byte aligned."""
        if x.ndim != 1:
            raise TypeError("only 1-D vectors are stored in a TFLite flatbuffer")
        data = x.astype(x.dtype.newbyteorder("<"), copy=False).tobytes()
        alignment = BUFFER_ALIGNMENT if x.dtype.itemsize == 1 else x.dtype.alignment
        self.StartVector(x.dtype.itemsize, x.size, alignment)
        self.head = self.head - len(data)
        self.Bytes[self.head:self.head + len(data)] = data
        self.vectorNumElems = x.size
        return self.EndVector()


def strip_names(model: object) -> None:
    """Drop tensor names (except graph inputs and outputs), subgraph names and the description.

    Args:
      model: a `ModelT` from `flatbuffer_utils.read_model_from_bytearray`, changed in place.
        Unlike `flatbuffer_utils.strip_strings`, the signature defs are kept.
    """
    model.description = None
    for subgraph in model.subgraphs:
        subgraph.name = None
        keep = {int(i) for i in subgraph.inputs} | {int(i) for i in subgraph.outputs}
        for index, tensor in enumerate(subgraph.tensors):
            if index not in keep:
                tensor.name = None


def serialize_shared(model: object) -> bytes:
    """Serialize a `ModelT` with identical vectors written once (`_SharingBuilder`)."""
    builder = _SharingBuilder()
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_FILE_IDENTIFIER)
    return bytes(builder.Output())


def compact_flatbuffer(data: bytes) -> bytes:
    """Return the same TFLite model stored in fewer bytes (module docstring).

    Args:
      data: a .tflite flatbuffer (< 2 GB, no external buffers).

    Returns:
      A flatbuffer with the same operators, tensors, quantization and signatures, never
      larger than `data` (when rewriting would not save a byte, `data` itself).
    """
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    strip_names(model)
    compacted = serialize_shared(model)
    return compacted if len(compacted) < len(data) else bytes(data)
