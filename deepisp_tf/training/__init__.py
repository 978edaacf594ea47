"""Training: `tools.train`'s library. L1 (+ SSIM) loss, Adam with exponential decay, tf_keras fit.

    strategy.py    tf.distribute strategies; the training and validation input, sharded
    losses.py      the loss (L1 + optional SSIM) and the optimizer
    callbacks.py   the one validation pass per epoch, best checkpoint, TensorBoard images,
                   throughput; saving the network out of the training model
    init.py        where a fine-tune starts (`--init_from`: shipped model, workdir, .keras)
    loop.py        `train`: check the data, build, fit with resume, write the summary

A training workdir W holds:

    W/config.json, W/final/model.keras   the trained model and its config (`model.io` contract)
    W/best/model.keras                   the checkpoint with the best validation PSNR
    W/best/metrics.json                  its epoch, PSNR and SSIM (survives a resume)
    W/latest/model.keras                 the training model (network + colour) after the last epoch
    W/backup/                            BackupAndRestore state, removed once the run is saved
    W/logs/                              TensorBoard: train/ and validation/ (losses, PSNR,
                                         SSIM, learning rate), images/ (input preview | output
                                         | reference | error map of a few validation tiles)
    W/run.json, run.md, run.csv          the summary: data dir, epochs, best scores, tiles/s

A run killed at any moment resumes from its last finished epoch when the same call is made
again (`BackupAndRestore`); a finished workdir is not trained again. Validation runs once per
epoch (`callbacks.ValidationScores`): its loss, PSNR and SSIM are DESIGN §2.3's (8-pixel
border, skimage SSIM), averaged over tiles, and feed both the best checkpoint and TensorBoard.
"""

from deepisp_tf.reports import read_json
from deepisp_tf.training.callbacks import (BACKUP_DIR, BEST_METRICS_FILE, best_metrics_path,
                                           comparison_strip, network_of)
from deepisp_tf.training.init import (DEFAULT_INIT, SHIPPED_KERAS_MODEL, InitModelError,
                                      initialize, resolve)
from deepisp_tf.training.loop import (RUN_FILE, HeldBackValidationWarning, RunSummary,
                                      TrainingDataError, build_training_model, check_dataset,
                                      format_summary, train)
from deepisp_tf.training.losses import IspLoss, make_optimizer
from deepisp_tf.training.strategy import STRATEGIES, make_strategy, train_dataset, val_dataset

__all__ = [
    "BACKUP_DIR", "BEST_METRICS_FILE", "DEFAULT_INIT", "HeldBackValidationWarning",
    "InitModelError", "IspLoss", "RUN_FILE", "RunSummary", "SHIPPED_KERAS_MODEL", "STRATEGIES",
    "TrainingDataError", "best_metrics_path", "build_training_model", "check_dataset",
    "comparison_strip", "format_summary", "initialize", "make_optimizer", "make_strategy",
    "network_of", "read_json", "resolve", "train", "train_dataset", "val_dataset",
]
