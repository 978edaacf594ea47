"""One-call Python API: a RAW file in, the 16-bit sRGB image `tools.infer` writes out.

    import deepisp_tf
    image = deepisp_tf.render("IMG_0001.CR2")          # uint16 [H, W, 3] RGB
    renderer = deepisp_tf.Renderer(); images = [renderer.render(p) for p in paths]

Both run the runtime's engine (`runtime.engine.Engine`: the same tiles, tables and colour finish
as `tools.infer`, so the pixels equal its 16-bit PNG exactly), with one single-threaded
interpreter per CPU sharing each image's tiles, as `tools.infer` does, and the shipped default
model unless `model` names a `.tflite`. No TensorFlow is imported.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from deepisp_tf.runtime import isolation
from deepisp_tf.runtime.engine import Engine
from deepisp_tf.runtime.interpreter import Runner
from deepisp_tf.runtime.models import default_model_path


# One image's tiles keep a few interpreters busy; more only cost opening and memory.
MAX_DEFAULT_INTERPRETERS = 8
CPU_DELEGATES = ("xnnpack", "none")  # the delegates whose interpreters run on the CPU cores


@dataclasses.dataclass(frozen=True)
class RenderOptions:
    """How a Renderer opens and runs its model (the `tools.infer` flags of the same names).

    Attributes:
      precision: shipped model precision without `model` ("auto", "int8", "float32", ...).
      delegate: "xnnpack", "none", "gpu", "nnapi" or "external:PATH".
      delegate_fallback: use the CPU when the delegate cannot be applied.
      threads: threads of each interpreter (None: LiteRT's default).
      interpreters: interpreters running an image's tiles in parallel, each with its own copy
        of the model (None: one per CPU, at most `MAX_DEFAULT_INTERPRETERS`, on the CPU
        delegates; one on an accelerator; 1: everything in the calling thread).
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
    interpreters: int | None = None
    tile: int | None = None
    overlap: int | None = None
    isolate: bool = False
    decode_timeout: float = isolation.DEFAULT_TIMEOUT_SECONDS


class Renderer:
    """Render many RAW files with one opened model (its interpreters opened once, reused).

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
        self._busy = threading.Lock()
        interpreters = opts.interpreters or (
            min(os.cpu_count() or 1, MAX_DEFAULT_INTERPRETERS)
            if opts.delegate in CPU_DELEGATES else 1)  # one accelerator: one interpreter
        decode = self._decoders.decode if self._decoders else None
        if interpreters == 1:
            self._engine = Engine(self.runner, overlap=opts.overlap, serial=True, decode=decode)
        else:  # two preprocessing threads: the next file decodes while this one renders
            self._engine = Engine(self.runner, overlap=opts.overlap, workers=2,
                                  interpreters=interpreters, decode=decode)

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
        """Yield the image of every file in order; raise at the first file that fails.

        Raises:
          RuntimeError: the Renderer is already rendering (another thread, or a `render_many`
            not yet exhausted or closed): its interpreters run one batch at a time.
        """
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("this Renderer is already rendering (another thread, or an "
                               "unfinished render_many): finish or close that first, or open "
                               "another Renderer")
        try:
            for result in in_input_order(self._engine.run(paths)):
                if result.error is not None:
                    raise result.error
                yield result.image
        finally:
            self._busy.release()

    def close(self) -> None:
        """Stop the decoder process, if any (the interpreter is freed with the object)."""
        if self._decoders is not None:
            self._decoders.close()
            self._decoders = None

    def __enter__(self) -> "Renderer":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def in_input_order(results: Iterable[Any]) -> Iterator[Any]:
    """Yield results that carry an `index` (0, 1, ... in any order) by that index, each as soon
    as every earlier one has come (the concurrent engine yields in completion order)."""
    waiting: dict[int, Any] = {}
    following = 0
    for result in results:
        waiting[result.index] = result
        while following in waiting:
            yield waiting.pop(following)
            following += 1


def render(path: str | os.PathLike, model: str | os.PathLike | None = None,
           **options: Any) -> np.ndarray:
    """Render one RAW file to uint16 [H, W, 3] sRGB (see `Renderer`; opens the model once)."""
    with Renderer(model, **options) as renderer:
        return renderer.render(path)
