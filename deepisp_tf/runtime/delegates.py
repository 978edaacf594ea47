"""LiteRT delegates: parse a delegate spec, load external delegate libraries, open interpreters.

Delegates (`delegate=`):
  xnnpack        LiteRT's default CPU path (XNNPACK applied by the builtin op resolver).
  none           LiteRT's builtin kernels without XNNPACK (BUILTIN_WITHOUT_DEFAULT_DELEGATES;
                 the reference resolver lacks int8 DEPTH_TO_SPACE v2, which the model uses).
  gpu            LiteRT's GPU accelerator (`runtime.gpu.open_runner`, CompiledModel API); a
                 Runner given `gpu` directly loads the OpenGL/OpenCL delegate library.
  nnapi          Android NNAPI: not loadable from Python on this platform (see DelegateError).
  external:PATH  any external delegate library (`tflite_plugin_create_delegate`).
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

from ai_edge_litert.interpreter import Interpreter, OpResolverType, load_delegate

CPU_DELEGATES = ("xnnpack", "none")
# Library names tried for the named accelerator delegates (None: no Python-loadable library).
DELEGATE_LIBRARIES: dict[str, str | None] = {
    "gpu": "libtensorflowlite_gpu_delegate.so",
    "nnapi": None,
}
EXTERNAL_DELEGATE_SYMBOLS = ("tflite_plugin_create_delegate", "tflite_plugin_destroy_delegate")


class DelegateError(RuntimeError):
    """A delegate could not be loaded or applied; the message names it and the reason."""

    def __init__(self, delegate: str, library: str | None, reason: str):
        self.delegate = delegate
        self.library = library
        self.reason = reason
        where = f" ({library})" if library else ""
        super().__init__(f"delegate {delegate!r}{where} unavailable: {reason}")


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


def open_interpreter(model: str, kind: str, library: str | None, threads: int | None,
                     options: dict[str, Any] | None) -> Interpreter:
    """Create and allocate an interpreter for one delegate kind (DelegateError if it fails)."""
    if kind in CPU_DELEGATES:
        resolver = (OpResolverType.AUTO if kind == "xnnpack"
                    else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
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
