"""Where the runtime finds its model: the one shipped inside the package, or a given path.

The package ships one network in several precisions (`tile_<precision>.tflite` beside its
`config.json`); `default_model_path` picks the one to run (`precision.choose`: the fastest on
this host among those that keep quality, measured once and cached, or the one asked for).
"""

from __future__ import annotations

import logging
import os

from deepisp_tf.constants import MODEL_CONFIG_FILE
from deepisp_tf.runtime import precision as precision_lib

log = logging.getLogger(__name__)

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL_DIR = os.path.join(PACKAGE_DIR, "assets", "models", "default")
DEFAULT_MODEL_FILE = "tile_int8.tflite"  # what the package shipped first; any tile_*.tflite


class NoDefaultModelError(FileNotFoundError):
    """The package ships no default model (yet); the message says what to pass instead."""


def default_model_path(model_dir: str | os.PathLike | None = None, precision: str = "auto",
                       threads: int | None = None, tile: int | None = None) -> str:
    """Return the `.tflite` of the default model shipped in the package.

    The model lives in `deepisp_tf/assets/models/default/` as `tile_<precision>.tflite` files
    with the `config.json` it was trained with.

    Args:
      model_dir: where to look instead of the package folder (tests).
      precision: "auto" (`precision.choose`) or one of the shipped precisions.
      threads, tile: how the run will use the model (what "auto" measures with).

    Returns:
      The path of the chosen `tile_<precision>.tflite`.

    Raises:
      NoDefaultModelError: no model file or no config.json.
      ValueError: a precision that is not shipped.
    """
    folder = os.fspath(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
    missing = [] if precision_lib.shipped(folder) else [DEFAULT_MODEL_FILE]
    if not os.path.isfile(os.path.join(folder, MODEL_CONFIG_FILE)):
        missing.append(MODEL_CONFIG_FILE)
    if missing:
        raise NoDefaultModelError(
            f"no trained default model ships with this package yet ({', '.join(missing)} "
            f"missing in {folder}); pass --model=PATH: a .tflite from tools.convert_tflite "
            "(tools.evaluate also takes a tools.train workdir)")
    choice = precision_lib.choose(folder, precision, threads=threads, tile=tile)
    log.info("model %s (%s: %s)", choice.path, choice.source, choice.ms_per_mp or "")
    return choice.path
