"""The colour stages around the network, in TensorFlow: input gamma and camera RGB -> sRGB.

The network works in a perceptual, camera-independent space: its input is the white-balanced
mosaic gamma-encoded with the render's own curve, its output the demosaicked, still
white-balanced camera RGB in the same encoding. The camera's colour matrix and the output gamma
are exact, known functions of the file's metadata (DESIGN §2.1), so they are applied around the
network rather than learned:

    srgb = gamma(clip(cam_to_srgb @ gamma^-1(rgb), 0, 1))

Training wraps the network in `training_model`, whose `CameraToSrgb` layer makes the loss
compare sRGB with the reference render; the exported network stops at `rgb`, and inference
applies the same transform in numpy (`deepisp_tf.raw.color.camera_to_srgb`, or the LUT version
in the runtime). These functions mirror `deepisp_tf.raw.color` and are tested against it.
"""

from __future__ import annotations

from typing import Any

from deepisp_tf.data.gamma import gamma_compression, gamma_expansion  # noqa: F401  (re-exported)
from deepisp_tf.data.tfrecord import METADATA_SIZE
from deepisp_tf.model.unet import INPUT_BAYER, INPUT_METADATA
from deepisp_tf.tf_env import keras, tf


def camera_to_srgb(rgb: tf.Tensor, cam_to_srgb: tf.Tensor) -> tf.Tensor:
    """Gamma camera RGB [B, H, W, 3] and matrices [B, 3, 3] -> gamma sRGB [B, H, W, 3] in [0, 1]."""
    linear = tf.einsum("bij,bhwj->bhwi", cam_to_srgb, gamma_expansion(rgb))
    return gamma_compression(linear)


@keras.saving.register_keras_serializable(package="deepisp_tf")
class CameraToSrgb(keras.layers.Layer):
    """Keras layer of `camera_to_srgb`: inputs [rgb [B, H, W, 3], metadata [B, 12]].

    The metadata is the pipeline's: cam_to_srgb row-major, then the white-balance gains (which
    are already in the input mosaic, so only the matrix is used). No weights.
    """

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        rgb, metadata = inputs
        matrices = tf.reshape(metadata[:, :9], [-1, 3, 3])
        return camera_to_srgb(rgb, matrices)


def training_model(network: keras.Model) -> keras.Model:
    """Wrap the network for training: {bayer, metadata} -> sRGB, to compare with the reference.

    Args:
      network: the ISP network (`build_model`, or its pruning / QAT version): `bayer`
        [+ `metadata`] -> gamma camera RGB.

    Returns:
      A model sharing the network's weights whose output is gamma sRGB [B, H, W, 3]; the
      network is its only layer with weights, so checkpoints of either restore the other.
    """
    bayer = keras.Input(network.inputs[0].shape[1:], name=INPUT_BAYER)
    metadata = keras.Input((METADATA_SIZE,), name=INPUT_METADATA)
    net_inputs: Any = [bayer, metadata] if len(network.inputs) > 1 else bayer
    rgb = network(net_inputs)
    srgb = CameraToSrgb(name="camera_to_srgb")([rgb, metadata])
    return keras.Model({INPUT_BAYER: bayer, INPUT_METADATA: metadata}, srgb,
                       name=f"{network.name}_srgb")
