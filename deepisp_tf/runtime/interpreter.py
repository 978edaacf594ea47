"""A LiteRT interpreter for one ISP model: the tile contract, run tile by tile.

`Runner` opens a `.tflite` of the model contract (input `bayer` [1, h, w, 1], optional input
`metadata` [1, 12], output `rgb` [1, h, w, 3]; or the packed-IO form, `packed`) on a chosen
delegate (`delegates`) and runs one tile at a time. `run` quantizes int8/uint8 inputs and
dequantizes outputs with each tensor's own parameters (`quantization`), so its callers pass and
get float32; `invoke` takes and returns the tensors as the model stores them, for callers that
encode and decode with look-up tables. The network is fully convolutional: `tile=` resizes its
input to a larger square tile (a multiple of the model's spatial multiple), which wastes less
on overlaps and per-tile work. Operator and weight inspection: `inspection`.

No TensorFlow import here: the runtime needs only `ai_edge_litert` and numpy.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import numpy as np

from deepisp_tf.constants import (INPUT_BAYER, INPUT_METADATA, METADATA_SIZE, MODEL_CONFIG_FILE,
                                  OUTPUT_RGB, PACKED_OUTPUT_CHANNELS, PACKED_PLANES)
from deepisp_tf.runtime import inspection
from deepisp_tf.runtime.delegates import DelegateError, open_interpreter, parse_delegate
from deepisp_tf.runtime.inspection import OpInfo
from deepisp_tf.runtime.packed import pack_planes, unpack_output
from deepisp_tf.runtime.quantization import Quantization, quantize

log = logging.getLogger(__name__)


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


def spatial_multiple(model_path: str, native_tile: int) -> int:
    """Return what a tile side of the model must be a multiple of.

    From the `config.json` beside the model (2 ** (encoder_stages + 1), the packed mosaic
    halving the side once more), else the largest power of two dividing the model's own tile
    (a safe, possibly stricter bound).
    """
    config = os.path.join(os.path.dirname(os.path.abspath(model_path)), MODEL_CONFIG_FILE)
    try:
        with open(config, encoding="utf-8") as handle:
            return 2 ** (int(json.load(handle)["model"]["encoder_stages"]) + 1)
    except (OSError, ValueError, KeyError, TypeError):
        return native_tile & -native_tile


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
      native_tile_shape: the model file's own (h, w) tile; `tile_shape` differs after `tile=`.
    """

    def __init__(self, model_path: str | os.PathLike, *, delegate: str = "xnnpack",
                 threads: int | None = None, delegate_fallback: bool = False,
                 delegate_options: dict[str, Any] | None = None, tile: int | None = None):
        """Open a model.

        Args:
          model_path: a `.tflite` of the model contract.
          delegate: see the module docstring.
          threads: interpreter threads (>= 1), None for LiteRT's default.
          delegate_fallback: on a DelegateError, log a warning and use the CPU (xnnpack).
          delegate_options: options passed to an external delegate library.
          tile: run square tiles of this side instead of the model's own (a multiple of
            `spatial_multiple`); None keeps the model's tile.

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
            self._interpreter = open_interpreter(self.model_path, kind, library, threads,
                                                  delegate_options)
        except DelegateError as error:
            if not delegate_fallback:
                raise
            log.warning("%s; falling back to the CPU (xnnpack)", error)
            self.fallback_reason = str(error)
            kind = "xnnpack"
            self._interpreter = open_interpreter(self.model_path, kind, None, threads, None)
        self.delegate = delegate if self.fallback_reason is None else "xnnpack"
        self._bind_tensors()
        self.native_tile_shape = self.tile_shape
        if tile is not None and (tile, tile) != self.tile_shape:
            self._resize(tile)

    def _resize(self, tile: int) -> None:
        """Resize the bayer input to a [tile, tile] tile (ValueError for an invalid side)."""
        multiple = spatial_multiple(self.model_path, self.native_tile_shape[0])
        if tile < multiple or tile % multiple:
            raise ValueError(f"{self.model_path}: tile {tile} must be a positive multiple of "
                             f"{multiple}, the model's spatial multiple")
        side = tile // 2 if self.packed_io else tile
        shape = [1, side, side, 4 if self.packed_io else 1]
        self._interpreter.resize_tensor_input(self._bayer["index"], shape, strict=False)
        self._interpreter.allocate_tensors()
        self._bind_tensors()
        out = tuple(int(d) for d in self._rgb["shape"][1:3])
        if out != (side, side):
            raise ValueError(f"{self.model_path}: resized to a {tile} tile, the output is "
                             f"{out}, not {(side, side)}: not fully convolutional")

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
                      else None, tile=self.tile_shape[0])

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
        """List the model's operators and whether each runs inside a delegate kernel."""
        return inspection.list_ops(self._interpreter)

    def weights_summary(self) -> dict[str, Any]:
        """Summarize the weights of the conv / dense ops (`inspection.weights_summary`)."""
        return inspection.weights_summary(self._interpreter)

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
            "native_tile_shape": list(self.native_tile_shape),
            "packed_io": self.packed_io,
            "io_dtypes": {name: str(dtype) for name, dtype in self.io_dtypes.items()},
            "ops": len(ops),
            "delegated_ops": sum(op.delegated for op in ops),
        }
