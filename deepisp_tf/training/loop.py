"""The training run: check the data, build and compile the model, fit with resume, summarize."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import shutil
import time
import warnings
from typing import Any, Sequence

from deepisp_tf import reports
from deepisp_tf.config import ExperimentConfig
from deepisp_tf.data import pipeline, prepare
from deepisp_tf.model import colour, cost, io
from deepisp_tf.model.unet import build_model
from deepisp_tf.tf_env import keras
from deepisp_tf.training import callbacks as callbacks_lib
from deepisp_tf.training import init as init_lib
from deepisp_tf.training import strategy as strategy_lib
from deepisp_tf.training.losses import IspLoss, make_optimizer

RUN_NAME = "run"
RUN_FILE = f"{RUN_NAME}.json"


class TrainingDataError(ValueError):
    """The dataset folder cannot feed this training run."""


class HeldBackValidationWarning(UserWarning):
    """The dataset has no validation file: validation tiles are held back from training."""


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """What one training run reached; written to W/run.json (and W/run.md, W/run.csv)."""

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
    init_from: str | None = None   # the model file a fine-tune started from
    weights_sha256: str = ""       # `weights_digest` of the final network (equal on every worker)

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> "RunSummary":
        """Read a summary back from W/run.json (strict JSON stores inf/nan as strings)."""
        fields = {field.name: field for field in dataclasses.fields(cls)}
        known = {key: value[key] for key in fields if key in value}
        for key, item in known.items():
            if isinstance(item, str) and item in ("inf", "-inf", "nan"):
                known[key] = float(item)
        return cls(**known)


def check_dataset(data_dir: str, config: ExperimentConfig) -> None:
    """Raise TrainingDataError unless the dataset(s) have train and val shards it can crop.

    `data_dir` is one prepared folder or several, comma-separated (`pipeline.data_dirs`).
    """
    folders = pipeline.data_dirs(data_dir)
    for folder in folders:
        if not os.path.isdir(folder):
            raise TrainingDataError(f"{folder}: dataset folder does not exist "
                                    "(run tools.prepare_data first)")
    try:
        held_back = pipeline.holds_back_val(folders)
    except ValueError as error:
        raise TrainingDataError(str(error)) from None
    if held_back:
        warnings.warn(
            f"{','.join(folders)}: no validation file, so validation uses 1 in "
            f"{pipeline.HOLD_BACK_EVERY} tiles of the training files, held back from training "
            "(neighbouring tiles overlap: the validation score is optimistic; prepare more "
            "files or name one with --val_files for an honest one)", HeldBackValidationWarning,
            stacklevel=2)
    needed = config.data.crop_size + (2 if config.data.augment else 0)
    for folder in folders:
        tile = ((prepare.load_manifest(folder) or {}).get("settings") or {}).get("tile_size")
        if tile is not None and tile < needed:
            raise TrainingDataError(
                f"{folder}: tiles are {tile} px, config {config.name!r} crops {needed} px "
                f"(prepare the data with --config={config.name})")


def weights_digest(model: keras.Model) -> str:
    """Return the SHA-256 (hex, first 16 digits) of a model's weights, in `get_weights` order.

    Synchronous data-parallel workers end with equal digests; a worker that trained on its own
    does not.
    """
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(str(weight.shape).encode())
        digest.update(weight.tobytes())
    return digest.hexdigest()[:16]


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


def summary_table(summary: RunSummary) -> reports.Table:
    """Return the end-of-run table: one (quantity, value) row per line."""
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
        ("started from", summary.init_from or "random initialisation"),
        ("final weights sha256", summary.weights_sha256 or "-"),
    ]
    return reports.Table.of([reports.Column("quantity", " "), reports.Column("value", " ")],
                            [{"quantity": key, "value": value} for key, value in rows])


def format_summary(summary: RunSummary) -> str:
    """Return the end-of-run table (Markdown)."""
    return summary_table(summary).markdown()


def write_summary(workdir: str, summary: RunSummary) -> dict[str, str]:
    """Write W/run.json (the summary's fields + its table), W/run.md and W/run.csv."""
    return reports.write_report(workdir, RUN_NAME, dataclasses.asdict(summary),
                                format_summary(summary), {RUN_NAME: summary_table(summary)})


def train(config: ExperimentConfig, data_dir: str, workdir: str, *, strategy: str = "default",
          data_service: str | None = None, init_from: str | None = None, verbose: int = 1,
          callbacks: Sequence[keras.callbacks.Callback] = ()) -> RunSummary:
    """Train `config` on a prepared dataset into `workdir`, resuming an unfinished run there.

    Args:
      config: the experiment (validated here).
      data_dir: folder written by `tools.prepare_data` (train and val shards).
      workdir: output folder (see the package docstring); reused to resume.
      strategy: "default", "mirrored" or "multi_worker" (TF_CONFIG).
      data_service: address of a tf.data service dispatcher ("grpc://host:port") serving the
        training input, or None to read it in-process.
      init_from: start a fresh run from these weights instead of a random initialisation:
        "default" (the shipped model), a training workdir or a `.keras` file (`init.resolve`).
      verbose: Keras progress (0 silent, 1 bar, 2 one line per epoch); > 0 also prints the
        model's cost at start.
      callbacks: extra Keras callbacks, run after the built-in ones.

    Returns:
      The run summary (also W/run.json; a finished workdir returns its saved summary).

    Raises:
      TrainingDataError: `data_dir` is missing, empty or prepared for other tiles.
      InitModelError: `init_from` names nothing loadable, or another architecture.
    """
    started = time.perf_counter()
    init_path = init_lib.resolve(init_from) if init_from else None   # fail before any work
    distribution = strategy_lib.make_strategy(strategy)  # first: collectives precede other TF
    config.validate()
    data_dir = ",".join(os.path.abspath(folder) for folder in pipeline.data_dirs(data_dir))
    workdir = os.path.abspath(workdir)
    check_dataset(data_dir, config)
    previous = reports.read_json(os.path.join(workdir, RUN_FILE))
    if previous and previous.get("complete") and os.path.isfile(io.model_path(workdir)):
        return RunSummary.from_json(previous)
    chief = strategy_lib.is_chief(distribution)
    if verbose:
        print(cost.describe(config.model), flush=True)
    backup = os.path.join(workdir, callbacks_lib.BACKUP_DIR)
    if chief:
        io.save_config(config, workdir)
        if not os.path.isdir(backup):  # no epoch finished: a fresh run forgets an old best
            if os.path.isfile(callbacks_lib.best_metrics_path(workdir)):
                os.remove(callbacks_lib.best_metrics_path(workdir))
    with distribution.scope():
        model = build_training_model(config)
        if init_path and not os.path.isdir(backup):  # a resumed run restores its own weights
            init_lib.initialize(callbacks_lib.network_of(model), init_path, config.name)
    val = strategy_lib.val_dataset(data_dir, config)
    own, best, throughput = callbacks_lib.make_callbacks(workdir, config, val, chief)
    history = model.fit(strategy_lib.train_dataset(data_dir, config, data_service),
                        epochs=config.train.epochs, steps_per_epoch=config.train.steps_per_epoch,
                        callbacks=[*own, *callbacks], verbose=verbose)
    epochs_run = history.epoch
    last = {key: values[-1] for key, values in history.history.items() if values}
    network = callbacks_lib.network_of(model)
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
        params=cost.count_params(network),
        kmac_per_pixel=cost.macs_per_pixel(network, cost.DESCRIBE_TILE,
                                           cost.DESCRIBE_TILE) / 1e3,
        complete=True, init_from=init_path, weights_sha256=weights_digest(network))
    callbacks_lib.save_model(model, workdir, "final", chief)
    if chief:  # the backup goes last: a run killed before this point resumes, not restarts
        write_summary(workdir, summary)
        shutil.rmtree(backup, ignore_errors=True)
    return summary
