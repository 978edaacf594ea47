"""One-call Python API: a RAW file in, the 16-bit sRGB image `tools.infer` writes out.

    import deepisp_tf
    image = deepisp_tf.render("IMG_0001.CR2")          # uint16 [H, W, 3] RGB
    renderer = deepisp_tf.Renderer(); images = [renderer.render(p) for p in paths]

Both run the runtime's engine (`runtime.engine.Engine`, one interpreter, serial: the same tiles,
tables and colour finish as `tools.infer`, so the pixels equal its 16-bit PNG exactly) with the
shipped default model unless `model` names a `.tflite`. No TensorFlow is imported.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterator, Sequence

import numpy as np

from deepisp_tf.runtime import isolation
from deepisp_tf.runtime.engine import Engine
from deepisp_tf.runtime.interpreter import Runner
from deepisp_tf.runtime.models import default_model_path


@dataclasses.dataclass(frozen=True)
class RenderOptions:
    """How a Renderer opens and runs its model (the `tools.infer` flags of the same names).

    Attributes:
      precision: shipped model precision without `model` ("auto", "int8", "float32", ...).
      delegate: "xnnpack", "none", "gpu", "nnapi" or "external:PATH".
      delegate_fallback: use the CPU when the delegate cannot be applied.
      threads: threads of the interpreter (None: LiteRT's default).
      tile: tile side the model is resized to (None: the model's own).
      overlap: tile overlap in pixels (None: the default, tile / 16).
      isolate: decode in a worker process (a file that crashes or hangs LibRaw raises
        RawReadError instead of taking the caller down).
      decode_timeout: seconds a decode may take when isolated.
    """

    precision: str = "auto"
    delegate: str = "xnnpack"
    delegate_fallback: bool = False
    threads: int | None = 1
    tile: int | None = None
    overlap: int | None = None
    isolate: bool = False
    decode_timeout: float = isolation.DEFAULT_TIMEOUT_SECONDS


class Renderer:
    """Render many RAW files with one opened model (one interpreter, reused).

    Attributes:
      model_path: the `.tflite` in use.
      options: the RenderOptions.
      runner: the opened `interpreter.Runner`.
    """

    def __init__(self, model: str | os.PathLike | None = None, **options: Any):
        """Open the model.

        Args:
          model: a `.tflite` of the model contract; None for the shipped default model.
          **options: fields of RenderOptions.

        Raises:
          TypeError: an unknown option.
          FileNotFoundError: no such model (NoDefaultModelError when the package ships none).
          ValueError: a bad option value or a model that breaks the contract.
          DelegateError: the delegate cannot be applied (without `delegate_fallback`).
        """
        self.options = RenderOptions(**options)
        opts = self.options
        self.model_path = os.fspath(model) if model is not None else default_model_path(
            precision=opts.precision, threads=opts.threads, tile=opts.tile)
        self.runner = Runner(self.model_path, delegate=opts.delegate, threads=opts.threads,
                             delegate_fallback=opts.delegate_fallback, tile=opts.tile)
        self._decoders = (isolation.DecoderPool(1, timeout=opts.decode_timeout)
                          if opts.isolate else None)
        self._engine = Engine(self.runner, overlap=opts.overlap, serial=True,
                              decode=self._decoders.decode if self._decoders else None)

    def render(self, path: str | os.PathLike) -> np.ndarray:
        """Render one RAW file.

        Returns:
          [H, W, 3] uint16 sRGB in the reference render's geometry.

        Raises:
          RawReadError: the file is missing, not RAW, corrupt, not Bayer (or, isolated, its
            decoder crashed or timed out); the message names the file.
        """
        return next(self.render_many([path]))

    def render_many(self, paths: Sequence[str | os.PathLike]) -> Iterator[np.ndarray]:
        """Yield the image of every file in order; raise at the first file that fails."""
        for result in self._engine.run(paths):
            if result.error is not None:
                raise result.error
            yield result.image

    def close(self) -> None:
        """Stop the decoder process, if any (the interpreter is freed with the object)."""
        if self._decoders is not None:
            self._decoders.close()
            self._decoders = None

    def __enter__(self) -> "Renderer":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def render(path: str | os.PathLike, model: str | os.PathLike | None = None,
           **options: Any) -> np.ndarray:
    """Render one RAW file to uint16 [H, W, 3] sRGB (see `Renderer`; opens the model once)."""
    with Renderer(model, **options) as renderer:
        return renderer.render(path)
