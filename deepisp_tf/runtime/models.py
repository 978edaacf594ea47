"""Where the runtime finds its model: the one shipped inside the package, or a given path."""

from __future__ import annotations

import os

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL_DIR = os.path.join(PACKAGE_DIR, "assets", "models", "default")
DEFAULT_MODEL_FILE = "tile_int8.tflite"
MODEL_CONFIG_FILE = "config.json"


class NoDefaultModelError(FileNotFoundError):
    """The package ships no default model (yet); the message says what to pass instead."""


def default_model_path(model_dir: str | os.PathLike | None = None) -> str:
    """Return the `.tflite` of the default model shipped in the package.

    The model lives in `deepisp_tf/assets/models/default/` as `tile_int8.tflite` with the
    `config.json` it was trained with.

    Args:
      model_dir: where to look instead of the package folder (tests).

    Returns:
      The path of `tile_int8.tflite`.

    Raises:
      NoDefaultModelError: the model or its config.json is missing.
    """
    folder = os.fspath(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
    missing = [name for name in (DEFAULT_MODEL_FILE, MODEL_CONFIG_FILE)
               if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise NoDefaultModelError(
            f"no trained default model ships with this package yet ({', '.join(missing)} "
            f"missing in {folder}); pass --model=PATH: a .tflite from tools.convert_tflite "
            "(tools.evaluate also takes a tools.train workdir)")
    return os.path.join(folder, DEFAULT_MODEL_FILE)
