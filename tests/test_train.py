"""Training: the workdir contract, kill-and-resume, clean errors, and the input served by an
in-process tf.data service. Two workers in sync: tests/test_two_host.py."""

import dataclasses
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from deepisp_tf import config as config_lib
from deepisp_tf import training as train
from deepisp_tf.data import prepare
from deepisp_tf.model import colour, io
from deepisp_tf.raw import synthetic
from deepisp_tf.tf_env import keras, tf

TINY = config_lib.ExperimentConfig(
    name="tiny", description="test", command="python -m tools.train --config=tiny",
    data=config_lib.DataConfig(tile_size=34, tile_stride=32, crop_size=32, max_tiles_per_file=4,
                               border=8, shuffle_buffer=8),
    model=config_lib.ModelConfig(encoder_stages=2, stem_filters=8, decoder_filters=(8, 8),
                                 metadata_units=8, bn_momentum=0.9),
    train=config_lib.TrainConfig(batch_size=4, epochs=2, steps_per_epoch=2, validation_steps=1,
                                 image_summaries=2),
    synthetic=config_lib.SyntheticConfig(variants_per_image=1, min_side=64, max_side=96))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> str:
    """Three small synthetic DNGs prepared into 32x32 tiles: two train files, one val file."""
    root = tmp_path_factory.mktemp("tiny_train_data")
    paths = synthetic.generate(root / "raw", TINY.synthetic, limit=3)
    splits = {os.path.basename(p): "val" if i == 2 else "train" for i, p in enumerate(paths)}
    output = str(root / "data")
    prepare.prepare_files(paths, output, TINY.data, source="synthetic", splits=splits, workers=1,
                          progress=False)
    return output


def _tags(folder: str) -> set[str]:
    """Return the summary tags written to the TensorBoard event files in `folder`."""
    tags = set()
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


class _StopAfterEpoch(keras.callbacks.Callback):
    """Raise at the end of epoch `epoch` (0-based), as a kill would."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt(f"killed after epoch {epoch + 1}")


class _Phases(keras.callbacks.Callback):
    """Count Keras' own evaluation passes and keep every epoch's logs."""

    def __init__(self):
        super().__init__()
        self.test_runs, self.logs = 0, []

    def on_test_begin(self, logs=None):
        self.test_runs += 1

    def on_epoch_end(self, epoch, logs=None):
        self.logs.append(dict(logs or {}))


def test_train_writes_the_workdir_contract_and_does_not_retrain_a_finished_run(tiny_data,
                                                                              tmp_path):
    workdir = str(tmp_path / "run")
    phases = _Phases()
    summary = train.train(TINY, tiny_data, workdir, verbose=0, callbacks=[phases])
    assert summary.complete and summary.epochs == 2 and summary.initial_epoch == 0
    assert summary.tiles_per_second > 0 and np.isfinite(summary.best_val_psnr)
    assert summary.best_val_psnr >= summary.final_val_psnr and 0 < summary.best_val_ssim <= 1
    run = json.load(open(os.path.join(workdir, train.RUN_FILE)))
    assert run["data"] == os.path.abspath(tiny_data) and run["best_epoch"] in (1, 2)
    for kind in ("final", "best"):
        assert os.path.isfile(io.model_path(workdir, kind))
    assert os.path.isfile(os.path.join(workdir, "latest", io.MODEL_FILE))
    assert not os.path.exists(os.path.join(workdir, train.BACKUP_DIR))
    model, config = io.load_trained(workdir)
    assert config == TINY and model.output_shape == (None, None, None, 3)
    assert {"epoch_loss"} <= _tags(os.path.join(workdir, "logs", "train"))
    assert {"epoch_loss", "epoch_psnr", "epoch_ssim"} <= _tags(
        os.path.join(workdir, "logs", "validation"))
    images = _tags(os.path.join(workdir, "logs", "images"))
    assert len(images) == TINY.train.image_summaries
    assert "best val PSNR" in train.format_summary(summary)
    assert os.path.isfile(os.path.join(workdir, "run.md"))
    assert os.path.isfile(os.path.join(workdir, "run.csv"))

    # One validation pass per epoch: Keras ran no evaluation of its own, and the val_* logs
    # that TensorBoard, the best checkpoint and the history read come from that one pass.
    assert phases.test_runs == 0 and len(phases.logs) == 2
    assert all({"val_loss", "val_psnr", "val_ssim"} <= set(logs) for logs in phases.logs)
    assert phases.logs[-1]["val_psnr"] == pytest.approx(summary.final_val_psnr)
    final = colour.training_model(model)
    final.compile(loss=train.IspLoss(TINY.train.ssim_weight))
    expected = final.evaluate(train.val_dataset(tiny_data, TINY), verbose=0)
    assert phases.logs[-1]["val_loss"] == pytest.approx(expected, rel=1e-4)

    again = train.train(TINY, tiny_data, workdir, verbose=0)
    assert again == summary


def test_killed_run_resumes_from_the_last_finished_epoch(tiny_data, tmp_path):
    workdir = str(tmp_path / "run")
    config = config_lib.override(TINY, ["train.epochs=3"])
    with pytest.raises(KeyboardInterrupt):
        train.train(config, tiny_data, workdir, verbose=0, callbacks=[_StopAfterEpoch(1)])
    assert os.path.isdir(os.path.join(workdir, train.BACKUP_DIR))
    assert not os.path.exists(io.model_path(workdir))
    best = json.load(open(train.best_metrics_path(workdir)))

    epochs_seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            epochs_seen.append(epoch)

    summary = train.train(config, tiny_data, workdir, verbose=0, callbacks=[Record()])
    assert epochs_seen == [2]
    assert summary.initial_epoch == 2 and summary.epochs == 3 and summary.complete
    assert summary.best_val_psnr >= best["val_psnr"]


def test_missing_or_empty_data_dir_fails_with_a_clean_message(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(train.TrainingDataError, match="no shards for split 'train'"):
        train.check_dataset(str(empty), TINY)
    result = subprocess.run(
        [sys.executable, "-m", "tools.train", "--config=quickstart",
         f"--data={tmp_path / 'missing'}", f"--workdir={tmp_path / 'w'}"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": REPO})
    assert result.returncode != 0
    assert "train:" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_data_prepared_for_smaller_tiles_is_refused(tiny_data):
    bigger = dataclasses.replace(TINY, data=dataclasses.replace(TINY.data, crop_size=64))
    with pytest.raises(train.TrainingDataError, match="tiles are 34 px"):
        train.check_dataset(tiny_data, bigger)


def test_training_input_runs_through_an_in_process_tf_data_service(tiny_data, tmp_path):
    dispatcher = tf.data.experimental.service.DispatchServer()
    address = dispatcher.target.split("://")[1]
    worker = tf.data.experimental.service.WorkerServer(  # fast heartbeats: new jobs start now
        tf.data.experimental.service.WorkerConfig(dispatcher_address=address,
                                                  heartbeat_interval_ms=100))
    assert worker._num_tasks() == 0  # pylint: disable=protected-access
    dataset = train.train_dataset(tiny_data, TINY, data_service=dispatcher.target)
    inputs, target = next(iter(dataset))
    assert inputs["bayer"].shape == (4, 32, 32, 1) and target.shape == (4, 32, 32, 3)
    assert 0 <= float(tf.reduce_min(target)) and float(tf.reduce_max(target)) <= 1
    # The batch came from the service: its worker now runs the pipeline as a task.
    before = worker._num_tasks()  # pylint: disable=protected-access
    assert before == 1 and dispatcher._num_workers() == 1  # pylint: disable=protected-access

    tasks_during_training = []

    class Tasks(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            tasks_during_training.append(worker._num_tasks())  # pylint: disable=W0212

    summary = train.train(config_lib.override(TINY, ["train.epochs=1"]), tiny_data,
                          str(tmp_path / "run"), data_service=dispatcher.target, verbose=0,
                          callbacks=[Tasks()])
    assert summary.complete and np.isfinite(summary.final_val_psnr)
    assert tasks_during_training == [before + 1]  # training read its own job from the worker
    del worker


