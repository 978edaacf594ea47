"""Training: `tools.train`'s library. L1 (+ SSIM) loss, Adam with exponential decay, tf_keras fit.

A training workdir W holds:

    W/config.json, W/final/model.keras   the trained model and its config (`model.io` contract)
    W/best/model.keras                   the checkpoint with the best validation PSNR
    W/best/metrics.json                  its epoch, PSNR and SSIM (survives a resume)
    W/latest/model.keras                 the training model (network + colour) after the last epoch
    W/backup/                            BackupAndRestore state, removed once the run is saved
    W/logs/                              TensorBoard: train/ and validation/ (losses, PSNR,
                                         SSIM, learning rate), images/ (input preview | output
                                         | reference | error map of a few validation tiles)
    W/run.json                           the summary: data dir, epochs, best scores, tiles/s

A run killed at any moment resumes from its last finished epoch when the same call is made
again (`BackupAndRestore`); a finished workdir is not trained again. Validation PSNR and SSIM are
DESIGN §2.3's (`deepisp_tf.metrics`: 8-pixel border, skimage SSIM), averaged over tiles.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import shutil
import tempfile
import time
from typing import Any, Sequence

import numpy as np

from deepisp_tf import atomic, metrics
from deepisp_tf.config import ExperimentConfig, TrainConfig
from deepisp_tf.data import pipeline, prepare
from deepisp_tf.model import colour, cost, io
from deepisp_tf.model.unet import build_model
from deepisp_tf.tf_env import keras, tf

RUN_FILE = "run.json"
BACKUP_DIR = "backup"
BEST_METRICS_FILE = "metrics.json"
STRATEGIES = ("default", "mirrored", "multi_worker")


class TrainingDataError(ValueError):
    """The dataset folder cannot feed this training run."""


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """What one training run reached; written to W/run.json."""

    config: str
    data: str                      # absolute dataset folder (tools.convert_tflite's default)
    workdir: str
    strategy: str
    replicas: int
    epochs: int                    # epochs finished in total
    initial_epoch: int             # where this session started (> 0 after a resume)
    best_epoch: int | None         # 1-based
    best_val_psnr: float
    best_val_ssim: float
    final_val_psnr: float
    final_val_ssim: float
    tiles_per_second: float        # training crops per second (global batch), tracing excluded
    wall_seconds: float            # this session
    params: int
    kmac_per_pixel: float
    complete: bool


def check_dataset(data_dir: str, config: ExperimentConfig) -> None:
    """Raise TrainingDataError unless the dataset(s) have train and val shards it can crop.

    `data_dir` is one prepared folder or several, comma-separated (`pipeline.data_dirs`).
    """
    folders = pipeline.data_dirs(data_dir)
    for folder in folders:
        if not os.path.isdir(folder):
            raise TrainingDataError(f"{folder}: dataset folder does not exist "
                                    "(run tools.prepare_data first)")
    for split in ("train", "val"):
        try:
            pipeline.shard_files(folders, split)
        except ValueError as error:
            raise TrainingDataError(str(error)) from None
    needed = config.data.crop_size + (2 if config.data.augment else 0)
    for folder in folders:
        tile = ((prepare.load_manifest(folder) or {}).get("settings") or {}).get("tile_size")
        if tile is not None and tile < needed:
            raise TrainingDataError(
                f"{folder}: tiles are {tile} px, config {config.name!r} crops {needed} px "
                f"(prepare the data with --config={config.name})")


def make_strategy(name: str) -> tf.distribute.Strategy:
    """Return the tf.distribute strategy `name` (multi_worker reads TF_CONFIG)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Return whether this process writes checkpoints, summaries and reports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())


def _sharded(dataset: tf.data.Dataset, by_data: bool) -> tf.data.Dataset:
    """Set how a multi-worker strategy splits `dataset`: by element (DATA) or not at all."""
    options = tf.data.Options()
    policy = tf.data.experimental.AutoShardPolicy
    options.experimental_distribute.auto_shard_policy = policy.DATA if by_data else policy.OFF
    return dataset.with_options(options)


def train_dataset(data_dir: str, config: ExperimentConfig, data_service: str | None = None
                  ) -> tf.data.Dataset:
    """Return the infinite, augmented training batches, optionally via a tf.data service.

    Under a multi-worker strategy every worker keeps its share of each global batch (DATA
    sharding: works for any number of shard files); with a tf.data service each worker reads
    its own stream from the service instead.
    """
    dataset = pipeline.make_dataset(data_dir, "train", config.data, config.train.batch_size,
                                    training=True)
    if data_service:
        dataset = dataset.apply(tf.data.experimental.service.distribute(
            processing_mode="parallel_epochs", service=data_service)).prefetch(pipeline.AUTOTUNE)
    return _sharded(dataset, by_data=not data_service)


def val_dataset(data_dir: str, config: ExperimentConfig) -> tf.data.Dataset:
    """Return at most `validation_steps` batches of centre crops of the val split, in order."""
    dataset = pipeline.make_dataset(data_dir, "val", config.data, config.train.batch_size,
                                    training=False)
    return _sharded(dataset.take(config.train.validation_steps), by_data=True)


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


def build_training_model(config: ExperimentConfig) -> keras.Model:
    """Build (seeded, dynamic tile size) and compile the training model; call in a strategy scope.

    The network (`build_model`: mosaic -> camera RGB) is wrapped by `colour.training_model`
    so the loss compares sRGB with the reference render; `network_of` returns it.
    """
    keras.utils.set_random_seed(config.train.seed)
    model = colour.training_model(build_model(config.model))
    model.compile(optimizer=make_optimizer(config.train),
                  loss=IspLoss(config.train.ssim_weight))
    return model


def network_of(model: keras.Model) -> keras.Model:
    """Return the ISP network inside a `colour.training_model` (the model itself otherwise)."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return nested[0] if len(nested) == 1 else model


def preview_mosaic(bayer: np.ndarray) -> np.ndarray:
    """Return the white-balanced RGGB mosaic [H, W] as gamma-coded camera RGB [H, W, 3]."""
    from deepisp_tf.evaluate import packed_preview  # pylint: disable=import-outside-toplevel

    return np.repeat(np.repeat(packed_preview(bayer), 2, 0), 2, 1).astype(np.float32)


def comparison_strip(bayer: np.ndarray, output: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Return input preview | output | reference | error map of one tile, [H, 4W, 3] uint8."""
    from deepisp_tf.evaluate import error_map  # pylint: disable=import-outside-toplevel

    size = target.shape[:2]
    errors = error_map(target * 65535.0, output * 65535.0, size)
    cells = [np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
             for image in (preview_mosaic(bayer[..., 0]), output, target)]
    return np.concatenate([*cells, errors], axis=1)


class ValidationScores(keras.callbacks.Callback):
    """Score the val batches with DESIGN §2.3's PSNR/SSIM; add `val_psnr`/`val_ssim` to logs."""

    def __init__(self, dataset: tf.data.Dataset, keep: int):
        super().__init__()
        self.dataset, self.keep = dataset, keep
        self.examples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        scores, self.examples = [], []
        for inputs, target in self.dataset:
            output = self.model(inputs, training=False).numpy()
            for index, reference in enumerate(target.numpy()):
                scores.append(metrics.score(reference, np.clip(output[index], 0.0, 1.0)))
                if len(self.examples) < self.keep:
                    self.examples.append((inputs["bayer"][index].numpy(), output[index],
                                          reference))
        mean = metrics.mean_score(scores)
        if logs is not None:
            logs.update(val_psnr=mean.psnr, val_ssim=mean.ssim)


def best_metrics_path(workdir: str) -> str:
    """Return W/best/metrics.json: epoch, val_psnr and val_ssim of the best checkpoint."""
    return os.path.join(os.path.dirname(io.model_path(workdir, "best")), BEST_METRICS_FILE)


class BestCheckpoint(keras.callbacks.Callback):
    """Save W/best/model.keras (io.save_model) when `val_psnr` improves; remember the best."""

    def __init__(self, workdir: str, chief: bool):
        super().__init__()
        self.workdir, self.chief = workdir, chief
        self.path = best_metrics_path(workdir)
        self.best = read_json(self.path) or {"epoch": None, "val_psnr": -math.inf,
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
    """Time the training part of every epoch (validation excluded); tiles per second."""

    def __init__(self, tiles_per_epoch: int):
        super().__init__()
        self.tiles_per_epoch = tiles_per_epoch
        self.seconds: list[float] = []
        self._start: float | None = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._stop()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._start is not None:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None

    def tiles_per_second(self) -> float:
        """Return the rate over this session's epochs, the first (graph tracing) excluded."""
        timed = self.seconds[1:] or self.seconds
        return self.tiles_per_epoch * len(timed) / sum(timed) if timed else math.nan


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


def read_json(path: str) -> dict[str, Any] | None:
    """Return the JSON object in `path`, or None when the file does not exist."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def make_callbacks(workdir: str, config: ExperimentConfig, val: tf.data.Dataset, chief: bool
                   ) -> tuple[list[keras.callbacks.Callback], BestCheckpoint, Throughput]:
    """Return the callbacks of a run, in the order they must see each epoch's logs."""
    scores = ValidationScores(val, config.train.image_summaries if chief else 0)
    best = BestCheckpoint(workdir, chief)
    throughput = Throughput(config.train.steps_per_epoch * config.train.batch_size)
    logs = os.path.join(workdir, "logs")
    callbacks = [scores, best, throughput,
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


def train(config: ExperimentConfig, data_dir: str, workdir: str, *, strategy: str = "default",
          data_service: str | None = None, verbose: int = 1,
          callbacks: Sequence[keras.callbacks.Callback] = ()) -> RunSummary:
    """Train `config` on a prepared dataset into `workdir`, resuming an unfinished run there.

    Args:
      config: the experiment (validated here).
      data_dir: folder written by `tools.prepare_data` (train and val shards).
      workdir: output folder (see the module docstring); reused to resume.
      strategy: "default", "mirrored" or "multi_worker" (TF_CONFIG).
      data_service: address of a tf.data service dispatcher ("grpc://host:port") serving the
        training input, or None to read it in-process.
      verbose: Keras progress (0 silent, 1 bar, 2 one line per epoch); > 0 also prints the
        model's cost at start.
      callbacks: extra Keras callbacks, run after the built-in ones.

    Returns:
      The run summary (also W/run.json; a finished workdir returns its saved summary).

    Raises:
      TrainingDataError: `data_dir` is missing, empty or prepared for other tiles.
    """
    started = time.perf_counter()
    distribution = make_strategy(strategy)  # first: collective ops must precede other TF work
    config.validate()
    data_dir = ",".join(os.path.abspath(folder) for folder in pipeline.data_dirs(data_dir))
    workdir = os.path.abspath(workdir)
    check_dataset(data_dir, config)
    previous = read_json(os.path.join(workdir, RUN_FILE))
    if previous and previous.get("complete") and os.path.isfile(io.model_path(workdir)):
        return RunSummary(**previous)
    chief = is_chief(distribution)
    if verbose:
        print(cost.describe(config.model), flush=True)
    if chief:
        io.save_config(config, workdir)
        if not os.path.isdir(os.path.join(workdir, BACKUP_DIR)):  # no epoch finished: fresh
            if os.path.isfile(best_metrics_path(workdir)):
                os.remove(best_metrics_path(workdir))
    with distribution.scope():
        model = build_training_model(config)
    val = val_dataset(data_dir, config)
    own, best, throughput = make_callbacks(workdir, config, val, chief)
    history = model.fit(train_dataset(data_dir, config, data_service),
                        epochs=config.train.epochs, steps_per_epoch=config.train.steps_per_epoch,
                        validation_data=val, callbacks=[*own, *callbacks], verbose=verbose)
    epochs_run = history.epoch
    last = {key: values[-1] for key, values in history.history.items() if values}
    summary = RunSummary(
        config=config.name, data=data_dir, workdir=workdir, strategy=strategy,
        replicas=distribution.num_replicas_in_sync,
        epochs=(epochs_run[-1] + 1) if epochs_run else config.train.epochs,
        initial_epoch=epochs_run[0] if epochs_run else config.train.epochs,
        best_epoch=best.best["epoch"], best_val_psnr=best.best["val_psnr"],
        best_val_ssim=best.best["val_ssim"],
        final_val_psnr=float(last.get("val_psnr", math.nan)),
        final_val_ssim=float(last.get("val_ssim", math.nan)),
        tiles_per_second=throughput.tiles_per_second(),
        wall_seconds=time.perf_counter() - started,
        params=cost.count_params(network_of(model)),
        kmac_per_pixel=cost.macs_per_pixel(network_of(model), cost.DESCRIBE_TILE,
                                           cost.DESCRIBE_TILE) / 1e3,
        complete=True)
    save_model(model, workdir, "final", chief)
    if chief:  # the backup goes last: a run killed before this point resumes, not restarts
        atomic.write_json(os.path.join(workdir, RUN_FILE), dataclasses.asdict(summary))
        shutil.rmtree(os.path.join(workdir, BACKUP_DIR), ignore_errors=True)
    return summary


def format_summary(summary: RunSummary) -> str:
    """Return the end-of-run table (Markdown)."""
    rows = [
        ("config", summary.config), ("data", summary.data), ("workdir", summary.workdir),
        ("strategy", f"{summary.strategy} ({summary.replicas} replica(s))"),
        ("epochs", f"{summary.epochs} (this session from epoch {summary.initial_epoch + 1})"),
        ("best val PSNR / SSIM",
         f"{summary.best_val_psnr:.2f} dB / {summary.best_val_ssim:.4f} "
         f"(epoch {summary.best_epoch})"),
        ("final val PSNR / SSIM",
         f"{summary.final_val_psnr:.2f} dB / {summary.final_val_ssim:.4f}"),
        ("training throughput", f"{summary.tiles_per_second:.1f} tiles/s"),
        ("wall time", f"{summary.wall_seconds:.0f} s"),
        ("model", f"{summary.params / 1e6:.3f} M params, {summary.kmac_per_pixel:.2f} kMAC/px"),
    ]
    return "\n".join(["| | |", "|---|---|", *(f"| {key} | {value} |" for key, value in rows)])
