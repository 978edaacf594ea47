"""The model an evaluation runs: a training workdir (tf_keras, float) or a `.tflite` (LiteRT)."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from deepisp_tf.constants import METADATA_SIZE
from deepisp_tf.model import build_model, count_params, spatial_multiple
from deepisp_tf.model.io import load_trained
from deepisp_tf.runtime import Runner, default_model_path
from deepisp_tf.runtime.pipeline import TileRunner
from deepisp_tf.runtime.profiling import warm_up
from deepisp_tf.tf_env import tf

log = logging.getLogger(__name__)

DEFAULT_TILE = 256


class KerasRunner:
    """Run a tf_keras ISP model tile by tile, with the `TileRunner` protocol of `Runner`."""

    def __init__(self, model: Any, tile: int):
        self.model = model
        self.tile_shape = (tile, tile)
        self.has_metadata = any("metadata" in name for name in model.input_names)
        self._predict = tf.function(lambda inputs: model(inputs, training=False))

    def run(self, bayer_tile: np.ndarray, metadata: np.ndarray | None = None) -> np.ndarray:
        """Run one [tile, tile] model input tile (+ metadata [12]); return camera RGB [h, w, 3]."""
        height, width = self.tile_shape
        values = {"bayer": np.asarray(bayer_tile, np.float32).reshape(1, height, width, 1)}
        if self.has_metadata:
            if metadata is None:
                raise ValueError(f"this model needs the metadata [{METADATA_SIZE}] input")
            values["metadata"] = np.asarray(metadata, np.float32).reshape(1, -1)
        inputs = [values["metadata" if "metadata" in name else "bayer"]
                  for name in self.model.input_names]
        return np.asarray(self._predict(inputs))[0]


def open_keras(workdir: str, tile: int) -> tuple[KerasRunner, dict[str, Any]]:
    """Load a training workdir's model at a fixed `tile` (rebuilt with its weights if needed)."""
    model, config = load_trained(workdir)
    multiple = spatial_multiple(config.model)
    if tile <= 0 or tile % multiple:
        raise ValueError(f"--tile={tile} must be a positive multiple of {multiple} for "
                         f"{workdir} ({config.model.encoder_stages} encoder stages)")
    if tuple(model.inputs[0].shape[1:3]) not in ((None, None), (tile, tile)):
        fixed = build_model(config.model, tile)
        try:
            fixed.set_weights(model.get_weights())
        except ValueError as error:
            raise ValueError(f"{workdir}: the saved model does not match its config.json "
                             f"model section ({error})") from None
        model = fixed
    info = {"kind": "keras_workdir", "path": os.path.abspath(workdir), "config": config.name,
            "params": count_params(model), "tile": tile}
    return KerasRunner(model, tile), info


def open_model(path: str | None, tile: int | None = None) -> tuple[TileRunner, dict[str, Any]]:
    """Open --model: a training workdir (Keras, float) or a `.tflite` (LiteRT), warmed up.

    Args:
      path: workdir or .tflite; None for the shipped default model.
      tile: tile side for a Keras model (default 256); a .tflite has its own.

    Returns:
      (runner, JSON-friendly description for the report).
    """
    path = default_model_path() if path is None else os.fspath(path)
    if path.endswith(".tflite"):
        runner: TileRunner = Runner(path)
        info = {"kind": "tflite", **runner.describe()}
        if tile is not None and (tile, tile) != runner.tile_shape:
            log.warning("%s has a fixed %s tile; --tile=%d ignored", path, runner.tile_shape, tile)
    elif os.path.isdir(path):
        runner, info = open_keras(path, DEFAULT_TILE if tile is None else tile)
    else:
        raise FileNotFoundError(f"{path}: --model must be a training workdir or a .tflite file")
    warm_up(runner, 1)
    return runner, info
