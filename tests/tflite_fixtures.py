"""Tiny fully convolutional tf_keras models converted to .tflite, for the runtime tests.

Every model follows the project's model contract: input `bayer` [1, h, w, 1] float32 (the
gamma-encoded, white-balanced RGGB mosaic), optional input `metadata` [1, 12] float32 (the
presets have none: pass `with_metadata=False`; the default True is kept for older callers),
output `rgb` [1, h, w, 3] in [0, 1] (gamma camera RGB). The same
weights can be converted at several input sizes (`size=`), so a whole-image model and a tile
model compute the same function. Kinds (`kind=`):
  "conv"    two 3x3 convolutions: receptive field 5x5 (radius 2), translation-equivariant.
  "packed"  2x2 stride-2 convolution (like the real model's packing), a 3x3 convolution at half
            resolution, 2x2 stride-2 transposed convolution: NOT equivariant to 1-pixel shifts,
            so a Bayer phase error changes its output; radius 3, tile-border effects within 2
            pixels of a tile edge. Sizes must be even.
  "gray"    the input mosaic copied to the three channels (a 1x1 convolution of ones, no
            activation): lets tests check where every output pixel comes from.
  "unet"    the input as grey RGB plus a residual (packing, three stride-2 levels down to
            1/16 and back with skip connections), clipped to [0, 1] like the real network: a
            receptive field of ~100 pixels, so tile borders change the output near them
            (seam tests). Sizes must be multiples of 16.

TensorFlow is imported lazily (`_tf`), only through `deepisp_tf.tf_env`: the runtime tests import
this module, and the ones that only read already-written files must not pay for (or depend on)
TensorFlow; the runtime itself never imports it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from deepisp_tf.constants import INPUT_BAYER, INPUT_METADATA, METADATA_SIZE, OUTPUT_RGB

RECEPTIVE_RADIUS = 2
KINDS = ("conv", "packed", "gray", "unet")


def _tf() -> tuple[Any, Any]:
    from deepisp_tf.tf_env import keras, tf  # pylint: disable=import-outside-toplevel
    return tf, keras


def _unet(bayer: Any, keras: Any, init: Any) -> Any:
    """Return the "unet" kind's input as grey RGB plus a residual [1, h, w, 3] (h, w multiples
    of 16), before the clip to [0, 1]."""
    x = keras.layers.Conv2D(8, 2, strides=2, activation="relu", kernel_initializer=init,
                            name="pack")(bayer)
    skips = []
    for level in range(3):
        skips.append(x)
        x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu",
                                kernel_initializer=init, name=f"down{level}")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", kernel_initializer=init,
                            name="bottom")(x)
    for level in range(3):
        x = keras.layers.Conv2DTranspose(8, 2, strides=2, kernel_initializer=init,
                                         name=f"up{level}")(x)
        x = keras.layers.Add(name=f"skip{level}")([x, skips.pop()])
        x = keras.layers.Conv2D(8, 3, padding="same", activation="relu",
                                kernel_initializer=init, name=f"fuse{level}")(x)
    residual = keras.layers.Conv2DTranspose(3, 2, strides=2, kernel_initializer=init,
                                            name="unpack")(x)
    grey = keras.layers.Concatenate(name="grey")([bayer, bayer, bayer])
    return keras.layers.Add(name="residual")([grey, residual])


def build_keras_model(size: tuple[int, int] | None = None, *, with_metadata: bool = True,
                      seed: int = 0, kind: str = "conv") -> Any:
    """Build a tiny deterministic fully convolutional model of the contract.

    Args:
      size: (h, w) of the input, or None for a model that accepts any size.
      with_metadata: add the `metadata` [1, 12] input (a per-image colour bias; zero for
        "gray").
      seed: seed of the weights; equal seeds give equal weights at every size.
      kind: "conv", "packed", "gray" or "unet" (see the module docstring).

    Returns:
      A Functional tf_keras model: bayer [1, h, w, 1] (+ metadata [1, 12]) -> rgb [1, h, w, 3].
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: one of {KINDS}")
    tf, keras = _tf()
    height, width = size if size is not None else (None, None)
    bayer = keras.Input(shape=(height, width, 1), batch_size=1, name=INPUT_BAYER)
    init = keras.initializers.GlorotUniform(seed=seed)
    zeros = keras.initializers.Zeros()
    if kind == "gray":
        logits = keras.layers.Conv2D(3, 1, kernel_initializer=keras.initializers.Ones(),
                                     bias_initializer=zeros, name="gray")(bayer)
    elif kind == "unet":
        logits = _unet(bayer, keras, init)
    elif kind == "packed":
        packed = keras.layers.Conv2D(8, 2, strides=2, activation="relu",
                                     kernel_initializer=init, name="pack")(bayer)
        features = keras.layers.Conv2D(8, 3, padding="same", activation="relu",
                                       kernel_initializer=init, name="conv_half")(packed)
        logits = keras.layers.Conv2DTranspose(
            3, 2, strides=2, kernel_initializer=init,
            bias_initializer=keras.initializers.Constant(0.1), name="unpack")(features)
    else:
        features = keras.layers.Conv2D(8, 3, padding="same", activation="relu",
                                       kernel_initializer=init, name="conv1")(bayer)
        logits = keras.layers.Conv2D(3, 3, padding="same", kernel_initializer=init,
                                     bias_initializer=keras.initializers.Constant(0.1),
                                     name="conv2")(features)
    inputs = [bayer]
    if with_metadata:
        metadata = keras.Input(shape=(METADATA_SIZE,), batch_size=1, name=INPUT_METADATA)
        bias = keras.layers.Dense(3, kernel_initializer=zeros if kind == "gray" else init,
                                  name="meta_dense")(metadata)
        logits = keras.layers.Add(name="add_bias")(
            [logits, keras.layers.Reshape((1, 1, 3), name="bias_hw")(bias)])
        inputs.append(metadata)
    if kind == "gray":
        rgb = keras.layers.Activation("linear", name=OUTPUT_RGB)(logits)
    elif kind == "unet":
        rgb = keras.layers.ReLU(max_value=1.0, name=OUTPUT_RGB)(logits)
    else:
        rgb = keras.layers.Activation(tf.nn.sigmoid, name=OUTPUT_RGB)(logits)
    return keras.Model(inputs=inputs, outputs=rgb, name=f"tiny_isp_{kind}")


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
                name: str | None = None, kind: str = "conv") -> str:
    """Build, convert and write a tiny model; return the .tflite path.

    Args:
      directory: where to write (a pytest tmp dir).
      size: (h, w) of the model's input.
      with_metadata: whether the model has the `metadata` input.
      int8: None, "int8" or "uint8" (see `convert`).
      seed: weight seed (same seed, same function at every size).
      name: file name; derived from the arguments when None.
      kind: "conv", "packed", "gray" or "unet".

    Returns:
      Path of the written .tflite file.
    """
    model = build_keras_model(size, with_metadata=with_metadata, seed=seed, kind=kind)
    if name is None:
        meta = "meta" if with_metadata else "nometa"
        prefix = "tiny" if kind == "conv" else f"tiny_{kind}"
        name = f"{prefix}_{size[0]}x{size[1]}_{meta}_{int8 or 'float32'}_s{seed}.tflite"
    path = os.path.join(os.fspath(directory), name)
    with open(path, "wb") as handle:
        handle.write(convert(model, int8=int8, seed=seed))
    return path


def keras_predict(image: np.ndarray, metadata: np.ndarray | None, *, seed: int = 0,
                  kind: str = "conv") -> np.ndarray:
    """Run the Keras model of `seed` and `kind` on one [H, W] mosaic; return [H, W, 3] float32."""
    model = build_keras_model(image.shape, with_metadata=metadata is not None, seed=seed,
                              kind=kind)
    inputs = [image[None, :, :, None].astype(np.float32)]
    if metadata is not None:
        inputs.append(np.asarray(metadata, np.float32).reshape(1, METADATA_SIZE))
    return np.asarray(model(inputs if len(inputs) > 1 else inputs[0]))[0]
