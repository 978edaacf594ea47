"""The training objective and its optimizer: L1 (+ SSIM) loss, Adam with exponential decay."""

from __future__ import annotations

from typing import Any

from deepisp_tf.config import TrainConfig
from deepisp_tf.tf_env import keras, tf


@keras.saving.register_keras_serializable(package="deepisp_tf")
class IspLoss(keras.losses.Loss):
    """Mean absolute error plus `ssim_weight` x (1 - SSIM) (tf.image.ssim, max value 1)."""

    def __init__(self, ssim_weight: float = 0.0, name: str = "isp_loss", **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self.ssim_weight = ssim_weight

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        """Return the per-image loss [B] of [B, H, W, 3] images."""
        loss = tf.reduce_mean(tf.abs(y_true - y_pred), axis=[1, 2, 3])
        if self.ssim_weight:
            loss += self.ssim_weight * (1.0 - tf.image.ssim(y_true, y_pred, max_val=1.0))
        return loss

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "ssim_weight": self.ssim_weight}


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    """Return Adam whose rate decays by `decay_rate` every `decay_epochs` (smoothly per step)."""
    schedule = keras.optimizers.schedules.ExponentialDecay(
        config.learning_rate, decay_steps=config.decay_epochs * config.steps_per_epoch,
        decay_rate=config.decay_rate)
    return keras.optimizers.Adam(learning_rate=schedule)
