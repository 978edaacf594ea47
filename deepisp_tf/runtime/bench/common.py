"""What every benchmark shares: its settings, the machine it ran on, opening the model."""

from __future__ import annotations

import dataclasses
import os
import platform
from typing import Any

import numpy as np

from deepisp_tf.runtime import cpu, models, precision
from deepisp_tf.runtime.gpu import GpuRunner, open_runner
from deepisp_tf.runtime.interpreter import Runner

FULL_HD = (1088, 1920)  # config.py's Full HD: 1080 rows rounded up to the tile multiple


@dataclasses.dataclass(frozen=True)
class Settings:
    """How to open the model and run the pipeline.

    Attributes:
      model: the .tflite ("" for the shipped model at `precision`), or a folder (model mode).
      precision: "auto" (the fastest shipped precision that keeps quality) or a precision.
      delegate: xnnpack, none, gpu, nnapi or external:PATH.
      delegate_fallback: fall back to the CPU when the delegate fails.
      threads: threads of each interpreter (None: LiteRT's default).
      workers: preprocessing thread counts to sweep (the concurrent mode).
      interpreters: interpreter threads of the concurrent mode, each with a copy of the model.
      overlap: tile overlap (None: the default).
      tile: tile side the model is resized to (None: the model's own).
      queue_size: tiles buffered between preprocessing and the interpreter.
      repeats: file mode runs every mode this many times and keeps each one's fastest run.
      isolate: decode in worker processes (`isolation.DecoderPool`), as tools.infer does.
      decode_timeout: seconds one file's decoding may take when isolated.
    """

    model: str = ""
    precision: str = "auto"
    delegate: str = "xnnpack"
    delegate_fallback: bool = False
    threads: int | None = None
    workers: tuple[int, ...] = (1, 2)
    interpreters: int = 1
    overlap: int | None = None
    tile: int | None = None
    queue_size: int = 16
    repeats: int = 1
    isolate: bool = False
    decode_timeout: float = 120.0

    def model_path(self) -> str:
        """Return the .tflite to run: `model`, else the shipped one at `precision`."""
        if self.model:
            return self.model
        return models.default_model_path(precision=self.precision, threads=self.threads,
                                         tile=self.tile)

    def open(self, model: str | None = None) -> Runner | GpuRunner:
        """Open `model` (default: `model_path()`) with these settings."""
        return open_runner(model or self.model_path(), delegate=self.delegate,
                           threads=self.threads, delegate_fallback=self.delegate_fallback,
                           tile=self.tile)


def machine() -> dict[str, Any]:
    """Return what the numbers depend on: CPU model and ISA flags, CPU count, load, versions."""
    import rawpy  # pylint: disable=import-outside-toplevel
    import cv2  # pylint: disable=import-outside-toplevel
    from importlib import metadata  # pylint: disable=import-outside-toplevel
    host = cpu.cpu_info()
    return {"host": platform.node(), "machine": platform.machine(),
            "processor": host["model"], "cpu_model": host["model"],
            "isa_flags": host["isa_flags"], "slug": cpu.machine_slug(),
            "cpu_count": os.cpu_count(), "load_average": list(os.getloadavg()),
            "python": platform.python_version(), "numpy": np.__version__,
            "opencv": cv2.__version__, "rawpy": rawpy.__version__,
            "libraw": ".".join(map(str, rawpy.libraw_version)),
            "ai_edge_litert": metadata.version("ai-edge-litert")}


def model_precision(path: str) -> str:
    """Return the precision named by a `tile_<precision>.tflite` file, else the file stem."""
    name = os.path.splitext(os.path.basename(path))[0]
    return name[len("tile_"):] if name.startswith("tile_") else name


def describe_choice(settings: Settings, path: str) -> dict[str, Any]:
    """Return how the model was picked: the precision, and the auto measurement if cached."""
    info: dict[str, Any] = {"precision": model_precision(path), "requested": settings.precision,
                            "explicit_model": bool(settings.model)}
    if not settings.model and settings.precision == "auto":
        choice = precision.choose(models.DEFAULT_MODEL_DIR, "auto", threads=settings.threads,
                                  tile=settings.tile)
        info.update(source=choice.source, ms_per_mp=choice.ms_per_mp, excluded=choice.excluded)
    return info
