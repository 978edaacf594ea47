"""How training is distributed: tf.distribute strategies and how the input is split among them."""

from __future__ import annotations

from deepisp_tf.config import ExperimentConfig
from deepisp_tf.data import pipeline
from deepisp_tf.tf_env import tf

STRATEGIES = ("default", "mirrored", "multi_worker")


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
    """Return at most `validation_steps` batches of centre crops of the val split, in order.

    Iterated directly by `callbacks.ValidationScores` on every worker (not distributed), so
    every worker scores the same tiles and takes the same best-checkpoint decision.
    """
    dataset = pipeline.make_dataset(data_dir, "val", config.data, config.train.batch_size,
                                    training=False)
    return _sharded(dataset.take(config.train.validation_steps), by_data=True)
