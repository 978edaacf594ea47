"""Tiny fully convolutional tf_keras models converted to .tflite, for the runtime tests.

Every model follows the project's model contract: input `bayer` [1, h, w, 1] float32, optional
input `metadata` [1, 12] float32, output `srgb` [1, h, w, 3] in [0, 1]. The same weights can be
converted at several input sizes (`size=`), so a whole-image model and a tile model compute the
same function; their receptive field is 5x5 (two 3x3 convolutions), radius 2.

TensorFlow is imported lazily and only through `deepisp_tf.tf_env`, and only here in the tests:
the runtime itself never imports it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

RECEPTIVE_RADIUS = 2


def _tf() -> tuple[Any, Any]:
    from deepisp_tf.tf_env import keras, tf  # pylint: disable=import-outside-toplevel
    return tf, keras


def build_keras_model(size: tuple[int, int] | None = None, *, with_metadata: bool = True,
                      seed: int = 0) -> Any:
    """Build a tiny deterministic fully convolutional model of the contract.

    Args:
      size: (h, w) of the input, or None for a model that accepts any size.
      with_metadata: add the `metadata` [1, 12] input (a per-image colour bias).
      seed: seed of the weights; equal seeds give equal weights at every size.

    Returns:
      A Functional tf_keras model: bayer [1, h, w, 1] (+ metadata [1, 12]) -> srgb [1, h, w, 3].
    """
    tf, keras = _tf()
    height, width = size if size is not None else (None, None)
    bayer = keras.Input(shape=(height, width, 1), batch_size=1, name="bayer")
    init = keras.initializers.GlorotUniform(seed=seed)
    features = keras.layers.Conv2D(8, 3, padding="same", activation="relu",
                                   kernel_initializer=init, name="conv1")(bayer)
    logits = keras.layers.Conv2D(3, 3, padding="same", kernel_initializer=init,
                                 bias_initializer=keras.initializers.Constant(0.1),
                                 name="conv2")(features)
    inputs = [bayer]
    if with_metadata:
        metadata = keras.Input(shape=(12,), batch_size=1, name="metadata")
        bias = keras.layers.Dense(3, kernel_initializer=init, name="meta_dense")(metadata)
        logits = keras.layers.Add(name="add_bias")(
            [logits, keras.layers.Reshape((1, 1, 3), name="bias_hw")(bias)])
        inputs.append(metadata)
    srgb = keras.layers.Activation(tf.nn.sigmoid, name="srgb")(logits)
    return keras.Model(inputs=inputs, outputs=srgb, name="tiny_isp")


def convert(model: Any, *, int8: str | None = None, seed: int = 0) -> bytes:
    """Convert a Keras model to TFLite bytes.

    Args:
      model: a model from `build_keras_model` with a fixed input size.
      int8: None for float32; "int8" or "uint8" for full-integer quantization with that IO type.
      seed: seed of the random representative data used for int8 calibration.

    Returns:
      The .tflite flatbuffer.
    """
    tf, _ = _tf()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8 is not None:
        rng = np.random.default_rng(seed)
        shapes = [tuple(int(d) for d in tensor.shape) for tensor in model.inputs]

        def representative():
            for _ in range(8):
                yield [rng.uniform(0, 1, shape).astype(np.float32) for shape in shapes]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = getattr(tf, int8)
        converter.inference_output_type = getattr(tf, int8)
    return converter.convert()


def write_model(directory: str | os.PathLike, size: tuple[int, int], *,
                with_metadata: bool = True, int8: str | None = None, seed: int = 0,
                name: str | None = None) -> str:
    """Build, convert and write a tiny model; return the .tflite path.

    Args:
      directory: where to write (a pytest tmp dir).
      size: (h, w) of the model's input.
      with_metadata: whether the model has the `metadata` input.
      int8: None, "int8" or "uint8" (see `convert`).
      seed: weight seed (same seed, same function at every size).
      name: file name; derived from the arguments when None.

    Returns:
      Path of the written .tflite file.
    """
    model = build_keras_model(size, with_metadata=with_metadata, seed=seed)
    if name is None:
        meta = "meta" if with_metadata else "nometa"
        name = f"tiny_{size[0]}x{size[1]}_{meta}_{int8 or 'float32'}_s{seed}.tflite"
    path = os.path.join(os.fspath(directory), name)
    with open(path, "wb") as handle:
        handle.write(convert(model, int8=int8, seed=seed))
    return path


def keras_predict(image: np.ndarray, metadata: np.ndarray | None, *, seed: int = 0
                  ) -> np.ndarray:
    """Run the Keras model of `seed` on one [H, W] mosaic; return [H, W, 3] float32."""
    model = build_keras_model(image.shape, with_metadata=metadata is not None, seed=seed)
    inputs = [image[None, :, :, None].astype(np.float32)]
    if metadata is not None:
        inputs.append(np.asarray(metadata, np.float32).reshape(1, 12))
    return np.asarray(model(inputs if len(inputs) > 1 else inputs[0]))[0]
