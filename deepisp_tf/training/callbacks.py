"""The callbacks of a training run: one validation pass per epoch, best checkpoint, images, speed.

`ValidationScores` is the only validation: it runs the model once over the val batches at the
end of every epoch and adds `val_loss`, `val_psnr` and `val_ssim` (DESIGN §2.3) to the epoch's
logs, which `BestCheckpoint`, Keras' TensorBoard callback (W/logs/validation) and the history
then read; `fit` gets no `validation_data`, so Keras runs no second pass.
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import tempfile
import time
from typing import Any

import numpy as np

from deepisp_tf import atomic, metrics, reports
from deepisp_tf.config import ExperimentConfig
from deepisp_tf.model import io
from deepisp_tf.tf_env import keras, tf
from deepisp_tf.visualization import error_map, packed_preview

BACKUP_DIR = "backup"
BEST_METRICS_FILE = "metrics.json"


def network_of(model: keras.Model) -> keras.Model:
    """Return the ISP network inside a `colour.training_model` (the model itself otherwise)."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return nested[0] if len(nested) == 1 else model


def save_model(model: keras.Model, workdir: str, kind: str, chief: bool) -> None:
    """Save W/<kind>/model.keras on the chief; other workers save to a discarded folder.

    Every worker must save: reading the ON_READ-synchronized variables (BatchNormalization
    statistics, metrics) of a multi-worker model runs collective ops on all of them.
    """
    network = network_of(model)
    if chief:
        io.save_model(network, workdir, kind)
        return
    scratch = tempfile.mkdtemp(prefix="deepisp_worker_save_")
    try:
        io.save_model(network, scratch, kind)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def best_metrics_path(workdir: str) -> str:
    """Return W/best/metrics.json: epoch, val_psnr and val_ssim of the best checkpoint."""
    return os.path.join(os.path.dirname(io.model_path(workdir, "best")), BEST_METRICS_FILE)


def preview_mosaic(bayer: np.ndarray) -> np.ndarray:
    """Return the white-balanced RGGB mosaic [H, W] as gamma-coded camera RGB [H, W, 3]."""
    return np.repeat(np.repeat(packed_preview(bayer), 2, 0), 2, 1).astype(np.float32)


def comparison_strip(bayer: np.ndarray, output: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Return input preview | output | reference | error map of one tile, [H, 4W, 3] uint8.

    Args:
      bayer: the model input [H, W, 1] (gamma-coded RGGB mosaic).
      output, target: [H, W, 3] in [0, 1].
    """
    size = target.shape[:2]
    errors = error_map(target * 65535.0, output * 65535.0, size)
    cells = [np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
             for image in (preview_mosaic(bayer[..., 0]), output, target)]
    return np.concatenate([*cells, errors], axis=1)


class ValidationScores(keras.callbacks.Callback):
    """The epoch's one validation pass: add `val_loss`, `val_psnr` and `val_ssim` to the logs.

    `val_loss` is the compiled loss (per image, plus any regularization) averaged over the val
    images, as Keras' own validation would report it; PSNR and SSIM are DESIGN §2.3's, on the
    output clipped to [0, 1]. Keeps the first `keep` tiles for `ImageSummaries`.
    """

    def __init__(self, dataset: tf.data.Dataset, keep: int):
        super().__init__()
        self.dataset, self.keep = dataset, keep
        self.examples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.passes = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        scores, losses, self.examples = [], [], []
        for inputs, target in self.dataset:
            output = self.model(inputs, training=False)
            losses.append(self.model.loss.call(target, output).numpy())
            output = output.numpy()
            for index, reference in enumerate(target.numpy()):
                scores.append(metrics.score(reference, np.clip(output[index], 0.0, 1.0)))
                if len(self.examples) < self.keep:
                    self.examples.append((inputs["bayer"][index].numpy(), output[index],
                                          reference))
        self.passes += 1
        mean = metrics.mean_score(scores)
        regularization = float(tf.add_n(self.model.losses)) if self.model.losses else 0.0
        if logs is not None:
            logs.update(val_loss=float(np.concatenate(losses).mean()) + regularization,
                        val_psnr=mean.psnr, val_ssim=mean.ssim)


class BestCheckpoint(keras.callbacks.Callback):
    """Save W/best/model.keras (io.save_model) when `val_psnr` improves; remember the best."""

    def __init__(self, workdir: str, chief: bool):
        super().__init__()
        self.workdir, self.chief = workdir, chief
        self.path = best_metrics_path(workdir)
        self.best = reports.read_json(self.path) or {"epoch": None, "val_psnr": -math.inf,
                                                     "val_ssim": math.nan}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        psnr = (logs or {}).get("val_psnr", -math.inf)
        if psnr <= self.best["val_psnr"]:
            return
        self.best = {"epoch": epoch + 1, "val_psnr": float(psnr),
                     "val_ssim": float(logs.get("val_ssim", math.nan))}
        save_model(self.model, self.workdir, "best", self.chief)
        if self.chief:
            atomic.write_json(self.path, self.best)


class ImageSummaries(keras.callbacks.Callback):
    """Write `ValidationScores.examples` as TensorBoard images (W/logs/images) every epoch."""

    def __init__(self, log_dir: str, scores: ValidationScores):
        super().__init__()
        self.scores = scores
        self.writer = tf.summary.create_file_writer(log_dir)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        with self.writer.as_default():
            for index, example in enumerate(self.scores.examples):
                strip = comparison_strip(*example)[np.newaxis]
                tf.summary.image(f"val_tile_{index}/input_output_reference_error", strip,
                                 step=epoch + 1)
        self.writer.flush()


class Throughput(keras.callbacks.Callback):
    """Time the training part of every epoch (it runs before validation); tiles per second."""

    def __init__(self, tiles_per_epoch: int):
        super().__init__()
        self.tiles_per_epoch = tiles_per_epoch
        self.seconds: list[float] = []
        self._start: float | None = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._start is not None:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None

    def tiles_per_second(self) -> float:
        """Return the rate over this session's epochs, the first (graph tracing) excluded."""
        timed = self.seconds[1:] or self.seconds
        return self.tiles_per_epoch * len(timed) / sum(timed) if timed else math.nan


def make_callbacks(workdir: str, config: ExperimentConfig, val: tf.data.Dataset, chief: bool
                   ) -> tuple[list[keras.callbacks.Callback], BestCheckpoint, Throughput]:
    """Return the callbacks of a run, in the order they must see each epoch's logs.

    Throughput stops its clock first; ValidationScores then adds the val_* logs that every
    later callback (best checkpoint, TensorBoard, backup) reads.
    """
    throughput = Throughput(config.train.steps_per_epoch * config.train.batch_size)
    scores = ValidationScores(val, config.train.image_summaries if chief else 0)
    best = BestCheckpoint(workdir, chief)
    logs = os.path.join(workdir, "logs")
    callbacks = [throughput, scores, best,
                 keras.callbacks.ModelCheckpoint(os.path.join(workdir, "latest", io.MODEL_FILE))]
    if importlib.util.find_spec("tensorboard") is None:  # tf.summary needs its implementation
        print("train: the tensorboard package is not installed: no TensorBoard logs")
    else:
        callbacks.append(keras.callbacks.TensorBoard(logs, write_graph=False, profile_batch=0))
        if chief and config.train.image_summaries:
            callbacks.append(ImageSummaries(os.path.join(logs, "images"), scores))
    callbacks.append(keras.callbacks.BackupAndRestore(os.path.join(workdir, BACKUP_DIR),
                                                      delete_checkpoint=False))
    return callbacks, best, throughput
