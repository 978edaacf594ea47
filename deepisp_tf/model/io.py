"""The trained-model contract between `tools.train`, `tools.convert_tflite` and `tools.evaluate`.

A training workdir holds, once a run has finished (or after every epoch for `latest`):

    W/config.json          the ExperimentConfig the model was trained with
    W/final/model.keras    the final float tf_keras model (tf_keras ".keras" format)
    W/best/model.keras     the checkpoint with the best validation PSNR (optional)

`load_trained(W)` returns (model, config) from the final model, falling back to the best
checkpoint, and raises `ModelNotFoundError` naming the workdir and what is missing.
"""

from __future__ import annotations

import json
import os

from deepisp_tf import atomic
from deepisp_tf.config import ExperimentConfig
from deepisp_tf.constants import MODEL_CONFIG_FILE
from deepisp_tf.model.layers import quantize_scope
from deepisp_tf.tf_env import keras

MODEL_FILE = "model.keras"
KINDS = ("final", "best")


class ModelNotFoundError(FileNotFoundError):
    """A workdir holds no trained model (or no config)."""


def model_path(workdir: str | os.PathLike, kind: str = "final") -> str:
    """Return the path of the `kind` ("final" or "best") model file of a workdir."""
    if kind not in KINDS:
        raise ValueError(f"model kind must be one of {KINDS}, got {kind!r}")
    return os.path.join(os.fspath(workdir), kind, MODEL_FILE)


def save_config(config: ExperimentConfig, workdir: str | os.PathLike) -> str:
    """Write `W/config.json` atomically and return its path."""
    return atomic.write_text(os.path.join(os.fspath(workdir), MODEL_CONFIG_FILE),
                             config.to_json())


def load_config(workdir: str | os.PathLike) -> ExperimentConfig:
    """Read `W/config.json`."""
    path = os.path.join(os.fspath(workdir), MODEL_CONFIG_FILE)
    if not os.path.isfile(path):
        raise ModelNotFoundError(
            f"{workdir}: no {MODEL_CONFIG_FILE} (is it a training workdir?)")
    with open(path) as handle:
        return ExperimentConfig.from_dict(json.load(handle))


def save_model(model: keras.Model, workdir: str | os.PathLike, kind: str = "final") -> str:
    """Save `model` as `W/<kind>/model.keras` atomically (temp file, then rename)."""
    path = model_path(workdir, kind)
    with atomic.replacing(path, suffix=".keras") as temporary:
        model.save(temporary)
    return path


def save_trained(model: keras.Model, config: ExperimentConfig, workdir: str | os.PathLike,
                 kind: str = "final") -> str:
    """Save the model and its config into a workdir; return the model path."""
    save_config(config, workdir)
    return save_model(model, workdir, kind)


def load_model(path: str | os.PathLike) -> keras.Model:
    """Load a float or QAT model file of this package (compile=False)."""
    with quantize_scope() as objects:
        return keras.models.load_model(os.fspath(path), custom_objects=objects, compile=False)


def load_trained(workdir: str | os.PathLike, kind: str | None = None
                 ) -> tuple[keras.Model, ExperimentConfig]:
    """Return (model, config) of a workdir: `kind`, or "final" falling back to "best"."""
    config = load_config(workdir)
    kinds = KINDS if kind is None else (kind,)
    for candidate in kinds:
        path = model_path(workdir, candidate)
        if os.path.isfile(path):
            return load_model(path), config
    wanted = " or ".join(model_path(workdir, k) for k in kinds)
    raise ModelNotFoundError(f"{workdir}: no trained model ({wanted} missing; train first)")
