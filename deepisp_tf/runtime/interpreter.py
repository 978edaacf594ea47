"""A LiteRT interpreter for one ISP model: delegate choice, tensor lookup, (de)quantization.

`Runner` opens a `.tflite` of the model contract (input `bayer` [1, h, w, 1], optional input
`metadata` [1, 12], output `rgb` [1, h, w, 3]) on a chosen delegate and runs one tile at a
time. A packed-IO model (`bayer` [1, h/2, w/2, 4] RGGB planes, `rgb` [1, h/2, w/2, 12] in
depth-to-space order; `tools.convert_tflite --packed_io`) keeps the same contract: `invoke`
packs the [h, w] tile and unpacks the output with strided copies (`pack_planes`,
`unpack_output`: ~0.1 ms per 256x256 int8 tile), where XNNPACK spends ~0.8 ms on the in-model
pack conv and depth-to-space transposed conv. `run` quantizes int8/uint8 inputs and
dequantizes outputs with each tensor's own parameters, so its callers pass and get float32;
`invoke` takes and returns the tensors as the model stores them (`Quantization`), for callers
that encode and decode with look-up tables.

Delegates (`delegate=`):
  xnnpack        LiteRT's default CPU path (XNNPACK applied by the builtin op resolver).
  none           reference kernels (op resolver BUILTIN_REF, no default delegate): slow, exact.
  gpu            the OpenGL/OpenCL GPU delegate, loaded as an external delegate library.
  nnapi          Android NNAPI: not loadable from Python on this platform (see DelegateError).
  external:PATH  any external delegate library (`tflite_plugin_create_delegate`).

No TensorFlow import here: the runtime needs only `ai_edge_litert` and numpy.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType, load_delegate

from deepisp_tf.constants import (INPUT_BAYER, INPUT_METADATA, METADATA_SIZE, OUTPUT_RGB,
                                  PACKED_OUTPUT_CHANNELS, PACKED_PLANES)

log = logging.getLogger(__name__)

CPU_DELEGATES = ("xnnpack", "none")
# Library names tried for the named accelerator delegates (None: no Python-loadable library).
DELEGATE_LIBRARIES: dict[str, str | None] = {
    "gpu": "libtensorflowlite_gpu_delegate.so",
    "nnapi": None,
}
WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")
EXTERNAL_DELEGATE_SYMBOLS = ("tflite_plugin_create_delegate", "tflite_plugin_destroy_delegate")


class DelegateError(RuntimeError):
    """A delegate could not be loaded or applied; the message names it and the reason."""

    def __init__(self, delegate: str, library: str | None, reason: str):
        self.delegate = delegate
        self.library = library
        self.reason = reason
        where = f" ({library})" if library else ""
        super().__init__(f"delegate {delegate!r}{where} unavailable: {reason}")


@dataclasses.dataclass(frozen=True)
class OpInfo:
    """One operator of the model.

    Attributes:
      index: node index in the primary subgraph.
      name: builtin op name, e.g. "CONV_2D".
      delegated: True when a delegate kernel replaced it, False when it runs on a CPU kernel.
    """

    index: int
    name: str
    delegated: bool


def parse_delegate(spec: str) -> tuple[str, str | None]:
    """Split a delegate spec into (kind, library path or None).

    Args:
      spec: "xnnpack", "none", "gpu", "nnapi" or "external:PATH".

    Returns:
      (kind, library): kind is one of the names above ("external" for external:PATH).

    Raises:
      ValueError: unknown spec, or external: without a path.
    """
    spec = spec.strip()
    if spec.lower().startswith("external:"):
        library = spec.split(":", 1)[1]
        if not library:
            raise ValueError("delegate 'external:' needs a library path, e.g. external:/x/lib.so")
        return "external", library
    kind = spec.lower()
    if kind in CPU_DELEGATES:
        return kind, None
    if kind in DELEGATE_LIBRARIES:
        return kind, DELEGATE_LIBRARIES[kind]
    raise ValueError(f"unknown delegate {spec!r}: expected xnnpack, none, gpu, nnapi or "
                     "external:PATH")


def check_delegate_library(kind: str, library: str) -> None:
    """Raise DelegateError unless `library` loads and exports the external delegate API.

    Checked with ctypes before `load_delegate`, whose half-built Delegate object would
    otherwise print an 'Exception ignored in __del__' traceback for such libraries.
    """
    if os.sep in library and not os.path.exists(library):
        raise DelegateError(kind, library, "no such file")
    try:
        handle = ctypes.CDLL(library)
    except OSError as error:  # dlopen failed: missing, wrong architecture, not a library
        raise DelegateError(kind, library, f"cannot load the library ({error})") from None
    missing = [name for name in EXTERNAL_DELEGATE_SYMBOLS if not hasattr(handle, name)]
    if missing:
        raise DelegateError(kind, library, "not an external delegate library (it does not "
                            f"export {', '.join(missing)})")


def _load_external(kind: str, library: str | None,
                   options: dict[str, Any] | None) -> Any:
    """Load a delegate library, turning every failure into a DelegateError."""
    if library is None:
        raise DelegateError(kind, None, "no delegate library for this platform in the Python "
                            "runtime; benchmark it on the device with android_bench "
                            "(benchmark_model --use_nnapi) or pass external:PATH")
    check_delegate_library(kind, library)
    try:
        return load_delegate(library, options)
    except (ValueError, RuntimeError, OSError) as error:  # the plugin refused: bad options...
        reason = " ".join(str(error).split()) or "the library returned no delegate"
        raise DelegateError(kind, library, reason) from None


def _open_interpreter(model: str, kind: str, library: str | None, threads: int | None,
                      options: dict[str, Any] | None) -> Interpreter:
    """Create and allocate an interpreter for one delegate kind."""
    if kind in CPU_DELEGATES:
        resolver = OpResolverType.AUTO if kind == "xnnpack" else OpResolverType.BUILTIN_REF
        interpreter = Interpreter(model_path=model, num_threads=threads,
                                  experimental_op_resolver_type=resolver)
    else:
        delegate = _load_external(kind, library, options)
        try:
            interpreter = Interpreter(
                model_path=model, num_threads=threads, experimental_delegates=[delegate],
                experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise DelegateError(kind, library, f"could not apply it to {model} ({error})"
                                ) from None
        return interpreter
    interpreter.allocate_tensors()
    return interpreter


def _find(details: list[dict[str, Any]], named: dict[str, int], word: str,
          rank: int) -> dict[str, Any] | None:
    """Return the tensor whose signature/tensor name contains `word`, else the one of `rank`."""
    by_index = {detail["index"]: detail for detail in details}
    for name, index in named.items():
        if word in name.lower() and index in by_index:
            return by_index[index]
    for detail in details:
        if word in detail["name"].lower():
            return detail
    candidates = [detail for detail in details if len(detail["shape"]) == rank]
    return candidates[0] if len(candidates) == 1 else None


@dataclasses.dataclass(frozen=True)
class Quantization:
    """How a tensor stores real values: floats as they are, integers as
    real = (stored - zero_point) * scale.

    Attributes:
      dtype: the stored dtype (float32, int8, uint8 ...).
      scale, zero_point: the affine parameters of an integer dtype (0, 0 for floats).
    """

    dtype: np.dtype
    scale: float = 0.0
    zero_point: int = 0

    @classmethod
    def of(cls, detail: dict[str, Any]) -> "Quantization":
        """Return the quantization of an interpreter tensor detail; ValueError for an integer
        tensor without parameters."""
        dtype = np.dtype(detail["dtype"])
        if dtype.kind == "f":
            return cls(dtype)
        scale, zero_point = detail["quantization"]
        if not scale:
            raise ValueError(f"tensor {detail['name']} is {dtype} without quantization "
                             "parameters")
        return cls(dtype, float(scale), int(zero_point))

    @property
    def is_float(self) -> bool:
        return self.dtype.kind == "f"

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """Convert real values to the stored dtype (rounded to nearest, saturated)."""
        if self.is_float:
            return np.asarray(values, self.dtype)
        info = np.iinfo(self.dtype)
        quantized = np.round(np.asarray(values, np.float32) / np.float32(self.scale))
        return np.clip(quantized + self.zero_point, info.min, info.max).astype(self.dtype)

    def dequantize(self, values: np.ndarray) -> np.ndarray:
        """Convert stored values to real float32 values."""
        if self.is_float:
            return np.asarray(values, np.float32)
        return (values.astype(np.float32) - np.float32(self.zero_point)) * np.float32(self.scale)


FLOAT32 = Quantization(np.dtype(np.float32))


def quantize(values: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Convert float values to a tensor's dtype with its (scale, zero point); floats pass."""
    return Quantization.of(detail).quantize(values)


def pack_planes(tile: np.ndarray) -> np.ndarray:
    """Return the [h/2, w/2, 4] planes (R, G1, G2, B) of an RGGB tile [h, w]: `cfa.pack`.

    Each horizontal pair of sites is viewed as one 2x wider unsigned integer, so the copy moves
    [h/2, w/2, 2] elements: ~14x faster than `cfa.pack`'s 4-D transpose (12 vs 170 us for a
    256x256 int8 tile), which would eat a fifth of what a packed model saves.
    """
    height, width = tile.shape
    tile = np.ascontiguousarray(tile)
    pairs = tile.view(np.dtype(f"u{2 * tile.itemsize}")).reshape(height // 2, 2, width // 2)
    planes = np.empty((height // 2, width // 2, 2), pairs.dtype)
    planes[..., 0] = pairs[:, 0]
    planes[..., 1] = pairs[:, 1]
    return planes.view(tile.dtype).reshape(height // 2, width // 2, 4)


def unpack_output(packed: np.ndarray, channels: int = 3) -> np.ndarray:
    """Return the [2h, 2w, C] image of a packed output [h, w, 4 * C] (depth-to-space: channel
    C * (2 * dy + dx) + c is colour c of pixel (dy, dx) of each 2x2 block).

    The 2 * C values of row dy of a block are contiguous, so each is moved as one opaque
    element: ~2x faster than the 5-D transpose (83 vs 160 us for a 128x128x12 int8 output).
    """
    height, width = packed.shape[:2]
    rows = np.ascontiguousarray(packed).view(np.dtype((np.void, 2 * channels * packed.itemsize)))
    blocks = np.ascontiguousarray(rows.reshape(height, width, 2).transpose(0, 2, 1))
    return blocks.view(packed.dtype).reshape(2 * height, 2 * width, channels)


def dequantize(values: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Convert a tensor's values to float32 with its (scale, zero point)."""
    return Quantization.of(detail).dequantize(values)


class Runner:
    """Run one ISP `.tflite` tile by tile on a chosen delegate.

    Not thread-safe: use one Runner per thread (`replica`). LiteRT's invoke releases the GIL,
    so interpreter threads run concurrently with each other and with numpy/rawpy
    preprocessing threads.

    Attributes:
      model_path: the model file.
      requested_delegate: the delegate asked for.
      delegate: the delegate in use ("xnnpack" after a fallback).
      fallback_reason: why the requested delegate was replaced, or None.
      threads: CPU threads given to the interpreter (None: LiteRT's default).
    """

    def __init__(self, model_path: str | os.PathLike, *, delegate: str = "xnnpack",
                 threads: int | None = None, delegate_fallback: bool = False,
                 delegate_options: dict[str, Any] | None = None):
        """Open a model.

        Args:
          model_path: a `.tflite` of the model contract.
          delegate: see the module docstring.
          threads: interpreter threads (>= 1), None for LiteRT's default.
          delegate_fallback: on a DelegateError, log a warning and use the CPU (xnnpack).
          delegate_options: options passed to an external delegate library.

        Raises:
          FileNotFoundError: no model at `model_path`.
          DelegateError: the delegate cannot be loaded/applied and `delegate_fallback` is False.
          ValueError: the model does not follow the contract, or a bad delegate spec.
        """
        self.model_path = os.fspath(model_path)
        if not os.path.isfile(self.model_path):
            raise FileNotFoundError(f"{self.model_path}: no such model file")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.requested_delegate = delegate
        self.threads = threads
        self._delegate_options = delegate_options
        self.fallback_reason: str | None = None
        kind, library = parse_delegate(delegate)
        try:
            self._interpreter = _open_interpreter(self.model_path, kind, library, threads,
                                                  delegate_options)
        except DelegateError as error:
            if not delegate_fallback:
                raise
            log.warning("%s; falling back to the CPU (xnnpack)", error)
            self.fallback_reason = str(error)
            kind = "xnnpack"
            self._interpreter = _open_interpreter(self.model_path, kind, None, threads, None)
        self.delegate = delegate if self.fallback_reason is None else "xnnpack"
        self._bind_tensors()

    def _bind_tensors(self) -> None:
        """Find the bayer/metadata inputs and the rgb output (by name, then by rank)."""
        signatures = self._interpreter._get_full_signature_list()  # pylint: disable=W0212
        signature = next(iter(signatures.values()), {"inputs": {}, "outputs": {}})
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        self._bayer = _find(inputs, signature["inputs"], INPUT_BAYER, 4)
        self._metadata = _find(inputs, signature["inputs"], INPUT_METADATA, 2)
        self._rgb = _find(outputs, signature["outputs"], OUTPUT_RGB, 4)
        if self._bayer is None or self._rgb is None:
            raise ValueError(
                f"{self.model_path}: no `bayer` [1, h, w, 1] input or `rgb` [1, h, w, 3] "
                f"output (inputs {[d['name'] for d in inputs]}, outputs "
                f"{[d['name'] for d in outputs]})")
        shape = tuple(int(d) for d in self._bayer["shape"])
        out_shape = tuple(int(d) for d in self._rgb["shape"])
        self.packed_io = (len(shape) == 4 and shape[3] == PACKED_PLANES and len(out_shape) == 4
                          and out_shape[3] == PACKED_OUTPUT_CHANNELS)
        if len(shape) != 4 or shape[0] != 1 or shape[3] != (PACKED_PLANES if self.packed_io
                                                            else 1):
            raise ValueError(f"{self.model_path}: bayer input must be [1, h, w, 1] (or packed "
                             f"[1, h/2, w/2, 4] with an rgb [1, h/2, w/2, 12] output), got "
                             f"{shape}")
        if self._metadata is not None and int(np.prod(self._metadata["shape"])) != METADATA_SIZE:
            raise ValueError(f"{self.model_path}: metadata input must be [1, {METADATA_SIZE}], "
                             f"got {list(self._metadata['shape'])}")
        try:
            self._codecs = (Quantization.of(self._bayer), Quantization.of(self._rgb))
        except ValueError as error:
            raise ValueError(f"{self.model_path}: {error}") from None

    def replica(self) -> "Runner":
        """Open the same model again, on the delegate in use, with as many threads: one more
        interpreter for another thread (a Runner is not thread-safe)."""
        return Runner(self.model_path, delegate=self.delegate, threads=self.threads,
                      delegate_options=self._delegate_options if self.fallback_reason is None
                      else None)

    @property
    def tile_shape(self) -> tuple[int, int]:
        """(h, w) of the model's full-resolution bayer tile (twice the packed input's)."""
        factor = 2 if self.packed_io else 1
        return factor * int(self._bayer["shape"][1]), factor * int(self._bayer["shape"][2])

    @property
    def has_metadata(self) -> bool:
        """Whether the model takes the `metadata` [1, 12] input."""
        return self._metadata is not None

    @property
    def io_dtypes(self) -> dict[str, np.dtype]:
        """dtype of each bound tensor ("bayer", "metadata", "rgb") as stored in the model."""
        tensors = {"bayer": self._bayer, "metadata": self._metadata, "rgb": self._rgb}
        return {name: np.dtype(d["dtype"]) for name, d in tensors.items() if d is not None}

    @property
    def input_quantization(self) -> Quantization:
        """How the model stores its `bayer` input."""
        return self._codecs[0]

    @property
    def output_quantization(self) -> Quantization:
        """How the model stores its `rgb` output."""
        return self._codecs[1]

    def invoke(self, bayer_tile: np.ndarray, metadata: np.ndarray | None = None) -> np.ndarray:
        """Run one tile stored as the model stores it (no conversion on either side).

        Args:
          bayer_tile: [h, w] (or [1, h, w, 1]) model input of dtype
            `input_quantization.dtype`, (h, w) == `tile_shape`.
          metadata: [12] float (cam_to_srgb row-major + wb_gains); required iff `has_metadata`.

        Returns:
          [h, w, 3] output of dtype `output_quantization.dtype` (a copy).
        """
        height, width = self.tile_shape
        tile = np.asarray(bayer_tile).reshape(height, width)
        model_input = pack_planes(tile)[None] if self.packed_io else tile[None, ..., None]
        self._interpreter.set_tensor(self._bayer["index"], model_input)
        if self._metadata is not None:
            if metadata is None:
                raise ValueError(f"{self.model_path} needs the metadata [12] input")
            values = np.asarray(metadata, np.float32).reshape(self._metadata["shape"])
            self._interpreter.set_tensor(self._metadata["index"],
                                         quantize(values, self._metadata))
        self._interpreter.invoke()
        rgb = self._interpreter.get_tensor(self._rgb["index"])
        if self.packed_io:
            return unpack_output(rgb[0])
        return rgb.reshape(height, width, -1)

    def run(self, bayer_tile: np.ndarray, metadata: np.ndarray | None = None) -> np.ndarray:
        """Run one tile of real values.

        Args:
          bayer_tile: [h, w] or [1, h, w, 1] gamma-encoded, white-balanced RGGB mosaic in
            [0, 1], (h, w) == `tile_shape`.
          metadata: [12] (cam_to_srgb row-major + wb_gains); required iff `has_metadata`.

        Returns:
          [h, w, 3] float32 gamma-encoded camera RGB.
        """
        encoded = self.input_quantization.quantize(bayer_tile)
        return self.output_quantization.dequantize(self.invoke(encoded, metadata))

    def ops(self) -> list[OpInfo]:
        """List the model's operators and whether each runs inside a delegate kernel.

        A node counts as delegated when it lies between a DELEGATE node's inputs and outputs
        (walking back from the delegate's outputs through producers until its inputs).
        """
        details = self._interpreter._get_ops_details()  # pylint: disable=protected-access
        producer = {int(t): d["index"] for d in details if d["op_name"] != "DELEGATE"
                    for t in d["outputs"]}
        delegated: set[int] = set()
        for node in (d for d in details if d["op_name"] == "DELEGATE"):
            boundary = {int(t) for t in node["inputs"]}
            stack = [int(t) for t in node["outputs"]]
            while stack:
                index = producer.get(stack.pop())
                if index is None or index in delegated:
                    continue
                delegated.add(index)
                stack.extend(int(t) for t in details[index]["inputs"]
                             if t >= 0 and int(t) not in boundary)
        return [OpInfo(d["index"], d["op_name"], d["index"] in delegated)
                for d in details if d["op_name"] != "DELEGATE"]

    def weights_summary(self) -> dict[str, Any]:
        """Summarize the weights of the conv / dense ops: dtypes, count, zeros, sparse tensors.

        Weights behind a DEQUANTIZE (float16) or DENSIFY (sparse) op are read at their source.

        Returns:
          {"dtypes": {dtype: tensors}, "parameters": n, "zero_fraction": f,
           "sparse_tensors": tensors stored in TFLite's sparse format}.
        """
        interpreter = self._interpreter
        details = {detail["index"]: detail for detail in interpreter.get_tensor_details()}
        ops = interpreter._get_ops_details()  # pylint: disable=protected-access
        producer = {int(t): op for op in ops if op["op_name"] != "DELEGATE"
                    for t in op["outputs"]}
        dtypes: dict[str, int] = {}
        parameters = zeros = sparse = 0
        for op in ops:
            if op["op_name"] not in WEIGHT_OPS:
                continue
            index = int(op["inputs"][1])
            while index in producer and producer[index]["op_name"] in ("DEQUANTIZE", "DENSIFY"):
                index = int(producer[index]["inputs"][0])
            detail = details.get(index)
            if detail is None:
                continue
            try:
                values = interpreter.get_tensor(index)
            except ValueError:  # no data (not a constant)
                continue
            name = np.dtype(detail["dtype"]).name
            dtypes[name] = dtypes.get(name, 0) + 1
            count = int(np.prod(detail["shape"]))
            parameters += count
            zeros += count - int(np.count_nonzero(values))
            sparse += bool(detail.get("sparsity_parameters"))
        return {"dtypes": dtypes, "parameters": parameters,
                "zero_fraction": zeros / parameters if parameters else None,
                "sparse_tensors": sparse}

    def describe(self) -> dict[str, Any]:
        """Return a JSON-friendly summary: model, delegate, threads, tile, dtypes, op counts."""
        ops = self.ops()
        return {
            "model": self.model_path,
            "delegate": self.delegate,
            "requested_delegate": self.requested_delegate,
            "fallback_reason": self.fallback_reason,
            "threads": self.threads,
            "tile_shape": list(self.tile_shape),
            "packed_io": self.packed_io,
            "io_dtypes": {name: str(dtype) for name, dtype in self.io_dtypes.items()},
            "ops": len(ops),
            "delegated_ops": sum(op.delegated for op in ops),
        }
