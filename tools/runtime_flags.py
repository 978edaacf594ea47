"""Flags shared by the tools that run the LiteRT runtime on RAW files (infer, benchmark, evaluate).

Each tool calls the `define_*` functions it needs at import time, so one flag has one name,
default and help text everywhere. TensorFlow-free, like the tools that use it.
"""

from absl import flags

from deepisp_tf.runtime import isolation


def define_interpreter_flags(interpreters_help: str = "Interpreters running tiles in parallel "
                             "(default: one per CPU).") -> None:
    """--delegate, --delegate_fallback, --threads, --interpreters, --overlap."""
    flags.DEFINE_string("delegate", "xnnpack", "xnnpack, none, gpu, nnapi or external:PATH.")
    flags.DEFINE_bool("delegate_fallback", False, "Fall back to the CPU when the delegate fails.")
    flags.DEFINE_integer("threads", 1, "Threads of each interpreter (0: LiteRT's default). One "
                         "thread per interpreter and one interpreter per CPU use the cores best.")
    flags.DEFINE_integer("interpreters", None, interpreters_help)
    flags.DEFINE_integer("overlap", None, "Tile overlap in pixels (even; default tile / 16).")


def define_isolation_flags() -> None:
    """--isolate, --decode_timeout: decoding in worker processes with a time limit per file."""
    flags.DEFINE_bool("isolate", True, "Decode in worker processes: a file that crashes or hangs "
                      "the decoder fails alone.")
    flags.DEFINE_float("decode_timeout", isolation.DEFAULT_TIMEOUT_SECONDS,
                       "Seconds one file's decoding may take (with --isolate).")
