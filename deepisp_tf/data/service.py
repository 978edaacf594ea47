"""tf.data service servers for `tools.train --data_service`: a dispatcher and its workers.

The training input (`pipeline.make_dataset`) is pure TF, so a tf.data service worker can run
it: the trainer sends the dataset graph to the dispatcher, every worker produces batches and
each trainer reads its own stream (`parallel_epochs`). Workers open the shard files by the
path the trainer gave, so every host must see the dataset at the same path (a shared mount).
"""

from __future__ import annotations

import dataclasses

from deepisp_tf.tf_env import tf


@dataclasses.dataclass(frozen=True)
class ServiceConfig:
    """Where a tf.data service server listens.

    Attributes:
      port: this server's port (0: any free port, printed at start).
      dispatcher: "host:port" of the dispatcher (workers only).
      worker_address: "host:port" under which trainers reach this worker (workers only; default
        localhost with the port, which only works on one machine: give the host's name).
      work_dir: the dispatcher's journal folder (restart without losing jobs), or None.
      heartbeat_ms: how often a worker asks the dispatcher for new tasks.
    """

    port: int = 0
    dispatcher: str | None = None
    worker_address: str | None = None
    work_dir: str | None = None
    heartbeat_ms: int = 1000

    def validate(self, role: str) -> None:
        """Raise ValueError when the settings do not fit `role` ("dispatcher" or "worker")."""
        if role not in ("dispatcher", "worker"):
            raise ValueError(f"role must be dispatcher or worker, got {role!r}")
        if not 0 <= self.port < 65536:
            raise ValueError(f"port must be in [0, 65535], got {self.port}")
        if role == "worker" and not self.dispatcher:
            raise ValueError("a worker needs the dispatcher's host:port (--dispatcher)")
        if self.dispatcher and "://" in self.dispatcher:
            raise ValueError(f"--dispatcher takes host:port without a protocol, got "
                             f"{self.dispatcher!r}")


def start_dispatcher(config: ServiceConfig) -> tf.data.experimental.service.DispatchServer:
    """Start a dispatcher; its `target` ("grpc://host:port") is the trainers' --data_service."""
    config.validate("dispatcher")
    return tf.data.experimental.service.DispatchServer(
        tf.data.experimental.service.DispatcherConfig(
            port=config.port, work_dir=config.work_dir,
            fault_tolerant_mode=config.work_dir is not None))


def start_worker(config: ServiceConfig) -> tf.data.experimental.service.WorkerServer:
    """Start a worker that registers with `config.dispatcher` and serves training batches."""
    config.validate("worker")
    return tf.data.experimental.service.WorkerServer(
        tf.data.experimental.service.WorkerConfig(
            dispatcher_address=config.dispatcher, worker_address=config.worker_address,
            port=config.port, heartbeat_interval_ms=config.heartbeat_ms))
