"""`--delegate=gpu`: LiteRT's GPU accelerator through the `CompiledModel` API.

ai-edge-litert ships a GPU accelerator (`libLiteRtWebGpuAccelerator.so`: ML Drift on WebGPU,
Dawn over Vulkan on Linux) that the old `Interpreter` cannot use; `CompiledModel` selects it
with `HardwareAccelerator.GPU` (CPU kept for ops the GPU does not take). `GpuRunner` runs
one tile with the contract of `interpreter.Runner` (`invoke` on stored tensors, `run` on real
values, `tile_shape`, `has_metadata`, packed IO, `replica`, `describe`), so the tiled pipeline,
the engine's concurrent threads and the benchmarks take it unchanged. `open_runner` is the
factory: `gpu` opens a `GpuRunner`, everything else (`xnnpack`, `none`, `nnapi`,
`external:PATH` for a user's own GPU delegate library) an `interpreter.Runner`; with
`delegate_fallback` a GPU that cannot be opened falls back to the CPU as the other delegates do.

Without a GPU, a software Vulkan device runs it: SwiftShader from Debian's `chromium` package
(`apt-get install chromium libvulkan1`, then `VK_ICD_FILENAMES=/usr/lib/chromium/
vk_swiftshader_icd.json XDG_RUNTIME_DIR=/tmp`); Mesa's lavapipe (Debian 12) is rejected by the
accelerator. `invoke` reads the output back from the device, so a timer around it measures
the whole tile (LiteRT's own benchmark timer does not wait for the device).

No TensorFlow import here.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from deepisp_tf.constants import METADATA_SIZE
from deepisp_tf.runtime.delegates import DelegateError, parse_delegate
from deepisp_tf.runtime.inspection import OpInfo
from deepisp_tf.runtime.interpreter import Runner
from deepisp_tf.runtime.packed import pack_planes, unpack_output
from deepisp_tf.runtime.quantization import Quantization

if TYPE_CHECKING:
    from ai_edge_litert.compiled_model import Environment

log = logging.getLogger(__name__)

GPU_HINT = ("no usable GPU (WebGPU over Vulkan); without one, install a software device: "
            "apt-get install chromium libvulkan1 and set VK_ICD_FILENAMES=/usr/lib/chromium/"
            "vk_swiftshader_icd.json XDG_RUNTIME_DIR=/tmp (docs/delegates.md)")


def _signature_details(path: str) -> tuple[str, dict[str, Any], dict[str, Any], list[str]]:
    """Return (signature key, {input name: detail}, {output name: detail}, op names) of a model.

    Read with a CPU interpreter (builtin kernels, nothing delegated): `CompiledModel` does not
    expose the tensors' quantization parameters.
    """
    interpreter = Interpreter(model_path=path,
                              experimental_op_resolver_type=(
                                  OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    signatures = interpreter.get_signature_list()
    if not signatures:
        raise ValueError(f"{path}: the model has no signature (convert it with "
                         "tools.convert_tflite)")
    key = next(iter(signatures))
    runner = interpreter.get_signature_runner(key)
    ops = [op["op_name"] for op in interpreter._get_ops_details()]  # pylint: disable=W0212
    return key, runner.get_input_details(), runner.get_output_details(), ops


def _named(details: dict[str, Any], word: str, path: str, required: bool) -> str | None:
    """Return the one signature name containing `word` (None when absent and not required)."""
    names = [name for name in details if word in name.lower()]
    if len(names) == 1:
        return names[0]
    if not names and not required:
        return None
    raise ValueError(f"{path}: expected one signature tensor named like {word!r}, got "
                     f"{sorted(details)}")


class GpuRunner:
    """Run one ISP `.tflite` tile by tile on LiteRT's GPU accelerator.

    Not thread-safe: one GpuRunner per thread (`replica`, which shares the LiteRT environment
    and so the device).

    Attributes:
      model_path, requested_delegate, delegate ("gpu"), fallback_reason (None), threads: as
        `interpreter.Runner`'s.
      fully_accelerated: every op runs on the GPU (else some run on LiteRT's CPU path).
      packed_io: the model takes RGGB planes [1, h/2, w/2, 4].
    """

    def __init__(self, model_path: str | os.PathLike, *, threads: int | None = None,
                 enforce_f32: bool = False, environment: Environment | None = None):
        """Compile a model for the GPU.

        Args:
          model_path: a `.tflite` of the model contract (see `interpreter.Runner`).
          threads: CPU threads for ops the GPU does not take (None: 1).
          enforce_f32: compute in float32 on the GPU (default: the accelerator's choice,
            float16 where the device has it).
          environment: a LiteRT environment to share (`replica`); None creates one.

        Raises:
          FileNotFoundError: no model at `model_path`.
          DelegateError: no GPU device, or the accelerator refused the model.
          ValueError: the model does not follow the contract.
        """
        self.model_path = os.fspath(model_path)
        if not os.path.isfile(self.model_path):
            raise FileNotFoundError(f"{self.model_path}: no such model file")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.requested_delegate = self.delegate = "gpu"
        self.fallback_reason: str | None = None
        self.threads = threads
        self.enforce_f32 = enforce_f32
        self._signature, inputs, outputs, self._op_names = _signature_details(self.model_path)
        self._bind(inputs, outputs)
        # Imported here: the CompiledModel API pulls in ml_dtypes (~0.6 s), which the CPU path
        # (`interpreter.Runner`, every tool's default) never needs.
        # pylint: disable=import-outside-toplevel
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        from ai_edge_litert.options import CpuOptions, GpuOptions, Options
        options = Options(hardware_accelerators=HardwareAccelerator.GPU | HardwareAccelerator.CPU,
                          cpu_options=CpuOptions(num_threads=threads or 1),
                          gpu_options=GpuOptions(enforce_f32=enforce_f32))
        try:
            self._compiled = CompiledModel.from_file(self.model_path, environment=environment,
                                                     options=options)
            self.fully_accelerated = self._compiled.is_fully_accelerated()
            self._inputs = self._compiled.create_input_buffers(0)
            self._outputs = self._compiled.create_output_buffers(0)
        except RuntimeError as error:
            reason = " ".join(str(error).split())
            raise DelegateError("gpu", "libLiteRtWebGpuAccelerator.so",
                                f"{GPU_HINT} ({reason})") from None
        order = self._compiled.get_signature_list()[self._signature]
        self._input_slots = {name: order["inputs"].index(name) for name in order["inputs"]}
        self._output_slot = order["outputs"].index(self._rgb_name)

    def _bind(self, inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
        """Find the bayer/metadata inputs and the rgb output by signature name."""
        self._bayer_name = _named(inputs, "bayer", self.model_path, True)
        self._metadata_name = _named(inputs, "metadata", self.model_path, False)
        self._rgb_name = _named(outputs, "rgb", self.model_path, True)
        bayer, rgb = inputs[self._bayer_name], outputs[self._rgb_name]
        shape = tuple(int(d) for d in bayer["shape"])
        out_shape = tuple(int(d) for d in rgb["shape"])
        self.packed_io = len(shape) == 4 and shape[3] == 4 and out_shape[-1] == 12
        if len(shape) != 4 or shape[0] != 1 or shape[3] != (4 if self.packed_io else 1):
            raise ValueError(f"{self.model_path}: bayer input must be [1, h, w, 1] or packed "
                             f"[1, h/2, w/2, 4], got {shape}")
        self._bayer_shape, self._rgb_shape = shape, out_shape
        self._metadata = inputs.get(self._metadata_name) if self._metadata_name else None
        if self._metadata is not None and int(np.prod(self._metadata["shape"])) != METADATA_SIZE:
            raise ValueError(f"{self.model_path}: metadata input must be [1, {METADATA_SIZE}]")
        try:
            self.input_quantization = Quantization.of(bayer)
            self.output_quantization = Quantization.of(rgb)
            self._metadata_quantization = (Quantization.of(self._metadata)
                                           if self._metadata is not None else None)
        except ValueError as error:
            raise ValueError(f"{self.model_path}: {error}") from None

    def replica(self) -> "GpuRunner":
        """Compile the same model again on the same device: a runner for another thread."""
        return GpuRunner(self.model_path, threads=self.threads, enforce_f32=self.enforce_f32,
                         environment=self._compiled.environment)

    @property
    def tile_shape(self) -> tuple[int, int]:
        """(h, w) of the model's full-resolution bayer tile."""
        factor = 2 if self.packed_io else 1
        return factor * self._bayer_shape[1], factor * self._bayer_shape[2]

    @property
    def has_metadata(self) -> bool:
        """Whether the model takes the `metadata` [1, 12] input."""
        return self._metadata is not None

    @property
    def io_dtypes(self) -> dict[str, np.dtype]:
        """dtype of each bound tensor as stored in the model."""
        dtypes = {"bayer": self.input_quantization.dtype, "rgb": self.output_quantization.dtype}
        if self._metadata_quantization is not None:
            dtypes["metadata"] = self._metadata_quantization.dtype
        return dtypes

    def invoke(self, bayer_tile: np.ndarray, metadata: np.ndarray | None = None) -> np.ndarray:
        """Run one tile stored as the model stores it; the output is read back from the device.

        Args:
          bayer_tile: [h, w] (or [1, h, w, 1]) of dtype `input_quantization.dtype`.
          metadata: [12] float; required iff `has_metadata`.

        Returns:
          [h, w, 3] of dtype `output_quantization.dtype`.
        """
        height, width = self.tile_shape
        tile = np.asarray(bayer_tile, self.input_quantization.dtype).reshape(height, width)
        model_input = pack_planes(tile) if self.packed_io else tile
        self._inputs[self._input_slots[self._bayer_name]].write(np.ascontiguousarray(model_input))
        if self._metadata_quantization is not None:
            if metadata is None:
                raise ValueError(f"{self.model_path} needs the metadata [12] input")
            values = np.asarray(metadata, np.float32).reshape(METADATA_SIZE)
            self._inputs[self._input_slots[self._metadata_name]].write(
                self._metadata_quantization.quantize(values))
        self._compiled.run_by_index(0, self._inputs, self._outputs)
        count = int(np.prod(self._rgb_shape))
        rgb = self._outputs[self._output_slot].read(count, self.output_quantization.dtype)
        if self.packed_io:
            return unpack_output(rgb.reshape(self._rgb_shape[1:]))
        return rgb.reshape(height, width, -1)

    def run(self, bayer_tile: np.ndarray, metadata: np.ndarray | None = None) -> np.ndarray:
        """Run one tile of real values ([h, w] gamma-encoded RGGB in [0, 1]) -> [h, w, 3]
        float32 gamma-encoded camera RGB, as `interpreter.Runner.run`."""
        encoded = self.input_quantization.quantize(bayer_tile)
        return self.output_quantization.dequantize(self.invoke(encoded, metadata))

    def ops(self) -> list[OpInfo]:
        """List the model's operators; `delegated` is the model-wide `fully_accelerated`
        (the CompiledModel API reports acceleration per model, not per op)."""
        return [OpInfo(index, name, self.fully_accelerated)
                for index, name in enumerate(self._op_names)]

    def weights_summary(self) -> dict[str, Any]:
        """Summarize the model's conv / dense weights (`interpreter.Runner.weights_summary`:
        a property of the file, read with a CPU interpreter)."""
        return Runner(self.model_path, delegate="none").weights_summary()

    def describe(self) -> dict[str, Any]:
        """Return a JSON-friendly summary, with the keys of `interpreter.Runner.describe`."""
        return {
            "model": self.model_path, "delegate": self.delegate,
            "requested_delegate": self.requested_delegate,
            "fallback_reason": self.fallback_reason, "threads": self.threads,
            "tile_shape": list(self.tile_shape), "packed_io": self.packed_io,
            "io_dtypes": {name: str(dtype) for name, dtype in self.io_dtypes.items()},
            "ops": len(self._op_names),
            "delegated_ops": len(self._op_names) if self.fully_accelerated else 0,
            "accelerator": "LiteRT GPU (CompiledModel)", "enforce_f32": self.enforce_f32,
            "fully_accelerated": self.fully_accelerated,
        }


def open_runner(model_path: str | os.PathLike, *, delegate: str = "xnnpack",
                threads: int | None = None, delegate_fallback: bool = False,
                delegate_options: dict[str, Any] | None = None,
                tile: int | None = None) -> Runner | GpuRunner:
    """Open a model on `delegate`: `gpu` on LiteRT's GPU accelerator, the rest as `Runner`.

    Args:
      model_path, delegate, threads, delegate_fallback, delegate_options: as `Runner`'s
        (`delegate_options` go to an `external:PATH` library; for `gpu`, the key
        "enforce_f32" is read).
      tile: resize a CPU model to this tile side (as `Runner`); the GPU path runs the model's
        own tile and refuses another.

    Raises:
      As `Runner`; DelegateError when the GPU cannot be opened and `delegate_fallback` is False.
    """
    kind, _ = parse_delegate(delegate)
    if kind != "gpu":
        return Runner(model_path, delegate=delegate, threads=threads,
                      delegate_fallback=delegate_fallback, delegate_options=delegate_options,
                      tile=tile)
    try:
        gpu_runner = GpuRunner(model_path, threads=threads,
                               enforce_f32=bool((delegate_options or {}).get("enforce_f32",
                                                                             False)))
    except DelegateError as error:
        if not delegate_fallback:
            raise
        log.warning("%s; falling back to the CPU (xnnpack)", error)
        runner = Runner(model_path, delegate="xnnpack", threads=threads, tile=tile)
        runner.requested_delegate, runner.fallback_reason = delegate, str(error)
        return runner
    if tile is not None and (tile, tile) != gpu_runner.tile_shape:
        raise ValueError(f"{model_path}: the GPU path runs the model's own "
                         f"{gpu_runner.tile_shape} tile, not --tile={tile}")
    return gpu_runner
