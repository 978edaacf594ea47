"""Data for conversion, from the training pipeline: int8 calibration samples and scored tiles.

Both come from `deepisp_tf.data.pipeline` with the experiment's own `DataConfig` (same
normalization as training), as centre crops of the stored tiles: calibration from the train
split (`representative_samples`), scoring from the val split (`validation_tiles`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from deepisp_tf import constants
from deepisp_tf.config import DataConfig, ExperimentConfig
from deepisp_tf.data.pipeline import make_dataset, representative_dataset, shard_files
from deepisp_tf.tf_env import tf

MIN_LARGE_SAMPLES = 8      # calibration samples of a shape larger than 256x256
REFERENCE_PIXELS = 256 * 256


def tile_to_shape(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Repeat an [h, w, C] image (h, w even: the CFA phase is kept) to [height, width, C]."""
    reps = (-(-height // image.shape[0]), -(-width // image.shape[1]), 1)
    return np.tile(image, reps)[:height, :width]


def crop_config(experiment: ExperimentConfig, size: int) -> DataConfig:
    """Return the experiment's DataConfig with centre crops of `size`, clipped to the tiles.

    The clip is the largest even crop a stored tile holds (`tile_size - 2`, DataConfig's bound).
    """
    crop = min(size, (experiment.data.tile_size - 2) // constants.TILE_MULTIPLE
               * constants.TILE_MULTIPLE)
    return dataclasses.replace(experiment.data, crop_size=crop)


def require_records(data_dir: str, split: str) -> None:
    """Raise ValueError unless a split of a prepared dataset holds at least one tile.

    Checked before any repeating pipeline is built on the split: repeating a split with no
    records would spin forever instead of ending.
    """
    records = tf.data.TFRecordDataset(shard_files(data_dir, split)).take(1)
    if not any(True for _ in records):
        raise ValueError(f"empty representative set: the {split} split of {data_dir} has no "
                         "tiles")


def representative_samples(data_dir: str, experiment: ExperimentConfig, count: int,
                           shape: tuple[int, int], with_metadata: bool) -> list[list[np.ndarray]]:
    """Return calibration samples [bayer [1, H, W, 1] (+ metadata [1, 12])].

    Centre crops of training tiles from the training pipeline (`representative_dataset`),
    repeated to fill H x W when the model is larger than a stored tile (Full HD). Larger
    shapes take proportionally fewer samples (at least 8): the same pixel count, less memory.

    Raises:
      ValueError: the training split yields no tile.
    """
    height, width = shape
    require_records(data_dir, "train")
    count = min(count, max(MIN_LARGE_SAMPLES, count * REFERENCE_PIXELS // (height * width)))
    data = crop_config(experiment, max(shape))
    samples = []
    for tensors in representative_dataset(data_dir, data, count, "train", with_metadata):
        arrays = [np.asarray(t, np.float32) for t in tensors]
        arrays[0] = tile_to_shape(arrays[0][0], height, width)[None]
        samples.append(arrays)
    if not samples:
        raise ValueError(f"empty representative set: the train split of {data_dir} has no tiles")
    return samples


def validation_tiles(data_dir: str, experiment: ExperimentConfig, count: int, size: int
                     ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Return up to `count` (bayer [S, S], metadata [12], target [S, S, 3]) val tiles.

    The metadata is the model's optional input and, always, the colour matrix scoring needs.

    Raises:
      ValueError: the stored tiles are smaller than S + 2, or the val split has no tile.
    """
    data = crop_config(experiment, size)
    if data.crop_size != size:
        raise ValueError(f"validation tiles are {experiment.data.tile_size} px: a {size}x{size} "
                         f"model cannot be scored on them")
    dataset = make_dataset(data_dir, "val", data, 1, training=False, repeat=False)
    tiles = []
    for inputs, target in dataset.take(count):
        tiles.append((inputs[constants.INPUT_BAYER].numpy()[0, ..., 0],
                      inputs[constants.INPUT_METADATA].numpy()[0], target.numpy()[0]))
    if not tiles:
        raise ValueError(f"the val split of {data_dir} has no tiles")
    return tiles
