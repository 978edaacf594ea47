"""The render's gamma curve in TensorFlow: the network's input encoding and its inverse.

The TF twins of `deepisp_tf.raw.color.gamma_compression` / `gamma_expansion` (LibRaw's BT.709
curve), side by side. They live in `data` because the input pipeline encodes every mosaic with
them; `deepisp_tf.model.colour` builds the camera RGB -> sRGB stage on the same two functions.
"""

from __future__ import annotations

from deepisp_tf.raw import color
from deepisp_tf.tf_env import tf


def gamma_compression(linear: tf.Tensor) -> tf.Tensor:
    """LibRaw's output gamma (`color.gamma_compression`) of values clipped to [0, 1], any shape."""
    _, toe_in, offset = color.gamma_params()
    x = tf.clip_by_value(linear, 0.0, 1.0)
    curve = tf.pow(tf.maximum(x, toe_in), color.GAMMA_POWER) * (1 + offset) - offset
    return tf.where(x < toe_in, x * color.GAMMA_SLOPE, curve)


def gamma_expansion(encoded: tf.Tensor) -> tf.Tensor:
    """Invert `gamma_compression` (`color.gamma_expansion`) for values clipped to [0, 1]."""
    toe_out, _, offset = color.gamma_params()
    y = tf.clip_by_value(encoded, 0.0, 1.0)
    curve = tf.pow((tf.maximum(y, toe_out) + offset) / (1 + offset), 1 / color.GAMMA_POWER)
    return tf.where(y < toe_out, y / color.GAMMA_SLOPE, curve)
