"""Datasets: RAW files -> aligned tiles in TFRecord shards, the Zurich layout, the tf.data pipeline.

`tiles` is numpy only (it runs in worker processes); the other modules import TensorFlow.
"""
