"""The two-host recipe of docs/scale_out.md, run as separate processes on this machine: a
tf.data service dispatcher and worker (`tools.data_service`) and two training workers
(`tools.train --strategy=multi_worker --data_service=...`, TF_CONFIG on localhost ports),
which must end with identical weights on both workers and the model written by the chief.

Deselect with `-m "not two_host"` when ports or time are short (66-200 s on 2 shared cores).
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO
from deepisp_tf import config as config_lib
from deepisp_tf.data import prepare
from deepisp_tf.model import io as model_io
from deepisp_tf.model.layers import OUTPUT_LAYER_NAME
from deepisp_tf.raw import synthetic

pytestmark = pytest.mark.two_host

OVERRIDES = ["data.tile_size=34", "data.tile_stride=32", "data.crop_size=32",
             "data.max_tiles_per_file=4", "data.border=8", "data.shuffle_buffer=8",
             "model.encoder_stages=2", "model.stem_filters=8", "model.decoder_filters=[8, 8]",
             "model.metadata_units=8", "train.batch_size=4", "train.epochs=2",
             "train.steps_per_epoch=3", "train.validation_steps=1", "train.image_summaries=0",
             "train.learning_rate=0.02"]
CONFIG = config_lib.override(config_lib.get_preset("quickstart"), OVERRIDES)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _start(args: list[str], env: dict[str, str], log: str) -> subprocess.Popen:
    with open(log, "w", encoding="utf-8") as handle:
        return subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, env=env, stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for(path: str, text: str, process: subprocess.Popen, seconds: float) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if text in open(path, encoding="utf-8").read():
            return
        assert process.poll() is None, open(path, encoding="utf-8").read()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in {path} after {seconds} s")


@pytest.fixture
def data(tmp_path) -> str:
    """Three small synthetic DNGs in the recipe's tiles: two train files, one val file."""
    small = config_lib.SyntheticConfig(variants_per_image=1, min_side=64, max_side=96)
    paths = synthetic.generate(tmp_path / "raw", small, limit=3)
    splits = {os.path.basename(p): "val" if i == 2 else "train" for i, p in enumerate(paths)}
    output = str(tmp_path / "data")
    prepare.prepare_files(paths, output, CONFIG.data, source="synthetic", splits=splits,
                          workers=1, progress=False)
    return output


def test_two_training_workers_fed_by_a_data_service_train_and_the_chief_writes_the_model(
        data, tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO, "CUDA_VISIBLE_DEVICES": "",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    dispatcher_port, worker_port, *trainer_ports = _free_ports(4)
    logs = {name: str(tmp_path / f"{name}.log")
            for name in ("dispatcher", "worker", "trainer0", "trainer1")}
    journal = tmp_path / "journal"
    servers = [_start(["tools.data_service", "--role=dispatcher", f"--port={dispatcher_port}",
                       f"--work_dir={journal}"], env, logs["dispatcher"])]
    try:
        servers.append(_start(["tools.data_service", "--role=worker", f"--port={worker_port}",
                               f"--dispatcher=localhost:{dispatcher_port}",
                               f"--worker_address=localhost:{worker_port}",
                               "--heartbeat_ms=200"], env, logs["worker"]))
        _wait_for(logs["dispatcher"], "dispatcher serving", servers[0], 90)
        cluster = {"worker": [f"localhost:{port}" for port in trainer_ports]}
        workdir = str(tmp_path / "run")
        trainers = []
        for index in range(2):
            tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
            trainers.append(_start(
                ["tools.train", "--config=quickstart", f"--data={data}", f"--workdir={workdir}",
                 "--strategy=multi_worker", f"--data_service=grpc://localhost:{dispatcher_port}",
                 *(f"--override={item}" for item in OVERRIDES)],
                {**env, "TF_CONFIG": json.dumps(tf_config)}, logs[f"trainer{index}"]))
        for trainer in trainers:
            trainer.wait(timeout=240)
        outputs = [open(logs[f"trainer{index}"], encoding="utf-8").read() for index in range(2)]
        for trainer, output in zip(trainers, outputs):
            assert trainer.returncode == 0, output[-4000:]
            assert "multi_worker (2 replica(s))" in output
        # Synchronous training: both workers end with the same weights (their digests match).
        digests = [re.findall(r"final weights sha256 +\| ([0-9a-f]{16})", output)
                   for output in outputs]
        assert len(digests[0]) == 1 and digests[0] == digests[1], digests
        losses = [float(value) for value in re.findall(r" - loss: ([0-9.]+)", outputs[0])]
        assert len(losses) == 2 and all(0 < loss < 1 for loss in losses), losses
        # The residual head starts at exactly zero (a fresh model is the bilinear demosaic):
        # a non-zero kernel in the chief's final model proves the synchronised steps trained.
        residual = model_io.load_model(model_io.model_path(workdir)).get_layer(
            f"{OUTPUT_LAYER_NAME}_conv").get_weights()[0]
        assert np.abs(residual).max() > 0
        run = json.load(open(os.path.join(workdir, "run.json")))
        assert run["complete"] and run["replicas"] == 2 and run["strategy"] == "multi_worker"
        assert os.path.isfile(os.path.join(workdir, "final", "model.keras"))
        assert servers[0].poll() is None and servers[1].poll() is None
        assert any(journal.rglob("*")), "the dispatcher journaled no job: input bypassed it"
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
