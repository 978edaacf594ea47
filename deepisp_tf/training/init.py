"""Where a fine-tune starts: the shipped default model, an earlier run, or a `.keras` file.

    init_from = "default"        deepisp_tf/assets/models/default/model.keras (the network the
                                 shipped .tflite files were converted from)
    init_from = WORKDIR          WORKDIR/final/model.keras (else WORKDIR/best/model.keras)
    init_from = MODEL.keras      that file

`initialize` copies the weights into a freshly built network of the same architecture and
refuses, naming both, when the architectures differ.
"""

from __future__ import annotations

import os

from deepisp_tf.model import io
from deepisp_tf.runtime.models import DEFAULT_MODEL_DIR
from deepisp_tf.tf_env import keras

DEFAULT_INIT = "default"
SHIPPED_KERAS_MODEL = os.path.join(DEFAULT_MODEL_DIR, io.MODEL_FILE)


class InitModelError(ValueError):
    """The model to start from is missing or does not fit the configured architecture."""


def resolve(init_from: str) -> str:
    """Return the `.keras` file `init_from` names (see the module docstring).

    Raises:
      InitModelError: nothing loadable at that name.
    """
    if init_from == DEFAULT_INIT:
        if not os.path.isfile(SHIPPED_KERAS_MODEL):
            raise InitModelError(f"{SHIPPED_KERAS_MODEL}: the shipped Keras model is missing "
                                 "from this install (reinstall deepisp_tf)")
        return SHIPPED_KERAS_MODEL
    if os.path.isdir(init_from):
        for kind in io.KINDS:
            path = io.model_path(init_from, kind)
            if os.path.isfile(path):
                return path
        raise InitModelError(f"{init_from}: no final/ or best/{io.MODEL_FILE} in this workdir "
                             "(train it first)")
    if os.path.isfile(init_from) and init_from.endswith(".keras"):
        return init_from
    raise InitModelError(f"{init_from}: --init_from takes 'default', a training workdir or a "
                         f".keras file, and this is none of them")


def initialize(network: keras.Model, path: str, config_name: str) -> None:
    """Set `network`'s weights (and BatchNormalization statistics) to those of the model file.

    Raises:
      InitModelError: the file's network has other weights than `network` (architecture of
        the file vs the config named `config_name`).
    """
    try:
        source = io.load_model(path)
    except (OSError, ValueError) as error:
        raise InitModelError(f"{path}: cannot load the model to start from ({error})") from None
    ours, theirs = network.weights, source.weights
    if len(ours) != len(theirs):
        raise InitModelError(
            f"{path} has {len(theirs)} weight tensors, the network of config {config_name!r} "
            f"has {len(ours)}: different architectures (fine-tune with the config the model "
            "was trained with, e.g. the finetune preset for the shipped model)")
    for mine, other in zip(ours, theirs):
        if tuple(mine.shape) != tuple(other.shape):
            raise InitModelError(
                f"{path}: weight {other.name} is {tuple(other.shape)}, config {config_name!r} "
                f"needs {tuple(mine.shape)} for {mine.name}: different architectures")
    network.set_weights(source.get_weights())
