"""The tf.data input pipeline over prepared shards, in pure TF ops.

No `numpy_function`/`py_function` anywhere, so the same pipeline can run on tf.data service
workers. Parallel `interleave` over shards, parallel `map` for parsing, normalization, random
crops at even offsets (keeps the CFA phase) and Bayer-preserving flips/transposes, then shuffle,
batch and prefetch. Elements are `({"bayer": [B, C, C, 1], "metadata": [B, 12]}, [B, C, C, 3])`.
"""

from __future__ import annotations

import glob
import os
from typing import Iterator, Sequence

from deepisp_tf.config import DataConfig
from deepisp_tf.data import gamma, tfrecord
from deepisp_tf.tf_env import tf

AUTOTUNE = tf.data.AUTOTUNE


def data_dirs(data_dir: str | Sequence[str]) -> list[str]:
    """Return the dataset folders of a `--data` value: one folder, or several comma-separated."""
    folders = data_dir.split(",") if isinstance(data_dir, str) else list(data_dir)
    return [folder.strip() for folder in folders if folder.strip()]


def shard_files(data_dir: str | Sequence[str], split: str) -> list[str]:
    """Return the shard files of a split of one or several prepared datasets (sorted).

    Several datasets (e.g. the synthetic set and your own RAW files) are mixed by listing
    their folders, comma-separated or as a sequence; they must share tile settings.
    """
    folders = data_dirs(data_dir)
    files = sorted(path for folder in folders
                   for path in glob.glob(os.path.join(folder, "shards", split, "*.tfrecord")))
    if not files:
        raise ValueError(f"{','.join(folders)}: no shards for split {split!r} "
                         "(run tools.prepare_data)")
    return files


# A dataset with train shards but no val shards (e.g. made from one RAW file) holds back every
# HOLD_BACK_EVERY-th tile of each training shard for validation (`split_sources`).
HOLD_BACK_EVERY = 7


def holds_back_val(data_dir: str | Sequence[str]) -> bool:
    """Return True when the dataset(s) have train shards but no val shard to validate on."""
    try:
        shard_files(data_dir, "val")
    except ValueError:
        shard_files(data_dir, "train")  # raises when there is no data at all
        return True
    return False


def split_sources(data_dir: str | Sequence[str], split: str) -> tuple[list[str], bool | None]:
    """Return (shard files, tile filter) of a split; the filter handles held-back validation.

    The filter is None (every tile of the shards), True (only the held-back tiles: index %
    HOLD_BACK_EVERY == 0 within each shard) or False (every other tile). Train and val read
    the train shards with opposite filters when `holds_back_val`, so no tile is in both.
    """
    if split in ("train", "val") and holds_back_val(data_dir):
        return shard_files(data_dir, "train"), split == "val"
    return shard_files(data_dir, split), None


def read_shard(path: tf.Tensor, held_back: bool | None) -> tf.data.Dataset:
    """Return the serialized tiles of one shard, filtered by `split_sources`' tile filter."""
    records = tf.data.TFRecordDataset(path)
    if held_back is None:
        return records
    every = tf.constant(HOLD_BACK_EVERY, tf.int64)
    chosen = records.enumerate().filter(
        lambda index, _: tf.equal(index % every, 0) == held_back)
    return chosen.map(lambda _, record: record)


def site_map(values_2x2: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """Tile per-site values [2, 2] over an even [size, size] mosaic."""
    return tf.tile(tf.reshape(values_2x2, [2, 2]), [size // 2, size // 2])


def normalize(example: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Turn a parsed tile into model tensors (pure TF).

    Black subtraction, white-level scaling and white balance per RGGB site, clipped to [0, 1]
    exactly as `deepisp_tf.raw.color.normalize` does in numpy, then the render's gamma curve
    (`gamma.gamma_compression`): the network's input encoding.

    Returns:
      bayer [T, T, 1] float32 (gamma-encoded), metadata [12] float32, target [T, T, 3]
      float32 in [0, 1].
    """
    size = tf.shape(example["mosaic"])[0]
    black = site_map(example["black_levels"], size)
    gains = example["wb_gains"]
    per_site = tf.where(tf.reduce_max(example["site_gains"]) > 0, example["site_gains"],
                        tf.stack([gains[0], gains[1], gains[1], gains[2]]))
    site_gains = site_map(per_site, size)
    mosaic = tf.cast(example["mosaic"], tf.float32)
    white_range = example["white_level"] - tf.reduce_min(black)  # color.white_range
    bayer = (mosaic - black) / white_range * site_gains
    bayer = gamma.gamma_compression(bayer)[..., tf.newaxis]
    metadata = tf.concat([example["cam_to_srgb"], gains], axis=0)
    target = tf.cast(example["target"], tf.float32) / 65535.0
    return bayer, metadata, target


def crop_even(bayer: tf.Tensor, target: tf.Tensor, size: int, offset: tf.Tensor
              ) -> tuple[tf.Tensor, tf.Tensor]:
    """Crop [size, size] windows of bayer [T, T, 1] and target [T, T, 3] at an even offset [2]."""
    offset = offset // 2 * 2
    begin = tf.concat([offset, [0]], axis=0)
    return (tf.slice(bayer, begin, [size, size, 1]), tf.slice(target, begin, [size, size, 3]))


def random_even_offset(tile: tf.Tensor, size: int, seed: tf.Tensor) -> tf.Tensor:
    """Return a random even (row, col) offset for a [size, size] crop of a [tile, tile] image."""
    positions = (tile - size) // 2 + 1
    return 2 * tf.random.stateless_uniform([2], seed, 0, positions, dtype=tf.int32)


def bayer_flip(bayer: tf.Tensor, target: tf.Tensor, axis: int, size: int
               ) -> tuple[tf.Tensor, tf.Tensor]:
    """Flip along `axis` (0 rows, 1 columns) keeping RGGB: flip, then drop the first line.

    Inputs have size + 2 (or more) along `axis`; outputs have `size` there, in the same RGGB
    phase as the input.
    """
    bayer, target = tf.reverse(bayer, [axis]), tf.reverse(target, [axis])
    begin = [1, 0, 0] if axis == 0 else [0, 1, 0]
    extent = [size, -1, -1] if axis == 0 else [-1, size, -1]
    return tf.slice(bayer, begin, extent), tf.slice(target, begin, extent)


def _take(bayer: tf.Tensor, target: tf.Tensor, axis: int, size: int
          ) -> tuple[tf.Tensor, tf.Tensor]:
    extent = [size, -1, -1] if axis == 0 else [-1, size, -1]
    return tf.slice(bayer, [0, 0, 0], extent), tf.slice(target, [0, 0, 0], extent)


def augment(bayer: tf.Tensor, target: tf.Tensor, size: int, seed: tf.Tensor
            ) -> tuple[tf.Tensor, tf.Tensor]:
    """Random Bayer-preserving flips and transpose of a [size + 2, size + 2] crop.

    Flipping an RGGB mosaic gives GRBG/GBRG/BGGR; dropping the first row/column after the flip
    restores RGGB (Liu et al. 2019). A transpose keeps RGGB as it is.

    Returns:
      bayer [size, size, 1], target [size, size, 3].
    """
    coins = tf.random.stateless_uniform([3], seed, 0, 2, dtype=tf.int32)
    for axis in (0, 1):
        bayer, target = tf.cond(coins[axis] > 0,
                                lambda b=bayer, t=target, a=axis: bayer_flip(b, t, a, size),
                                lambda b=bayer, t=target, a=axis: _take(b, t, a, size))
    transpose = tf.cond(coins[2] > 0,
                        lambda: (tf.transpose(bayer, [1, 0, 2]), tf.transpose(target, [1, 0, 2])),
                        lambda: (bayer, target))
    return transpose


def make_example_fn(config: DataConfig, training: bool, with_metadata: bool = True):
    """Return the per-element map function: (serialized, seed [2]) -> (inputs, target)."""
    size = config.crop_size

    def fn(serialized: tf.Tensor, seed: tf.Tensor):
        bayer, metadata, target = normalize(tfrecord.parse_example(serialized))
        tile = tf.shape(bayer)[0]
        if training:
            seeds = tf.random.experimental.stateless_split(seed, 2)
            margin = size + 2 if config.augment else size
            offset = random_even_offset(tile, margin, seeds[0])
            bayer, target = crop_even(bayer, target, margin, offset)
            if config.augment:
                bayer, target = augment(bayer, target, size, seeds[1])
        else:
            offset = tf.fill([2], (tile - size) // 2)
            bayer, target = crop_even(bayer, target, size, offset)
        bayer = tf.ensure_shape(bayer, [size, size, 1])
        target = tf.ensure_shape(target, [size, size, 3])
        inputs = {"bayer": bayer}
        if with_metadata:
            inputs["metadata"] = tf.ensure_shape(metadata, [tfrecord.METADATA_SIZE])
        return inputs, target

    return fn


def make_dataset(data_dir: str | Sequence[str], split: str, config: DataConfig, batch_size: int, *,
                 training: bool, repeat: bool | None = None, with_metadata: bool = True,
                 serial: bool = False, seed: int | None = None) -> tf.data.Dataset:
    """Build the input pipeline for one split of a prepared dataset.

    Args:
      data_dir: folder written by `tools.prepare_data`, or several (see `shard_files`).
      split: "train", "val" or "test"; with no val shards, val is every HOLD_BACK_EVERY-th
        tile of the train shards and train the rest (`split_sources`).
      config: crop size, shuffle buffer, augmentation.
      batch_size: examples per batch.
      training: random crops and augmentation, shuffling; else centre crops in file order.
      repeat: repeat forever (default: same as `training`).
      with_metadata: include the `metadata` input.
      serial: one element at a time everywhere (the benchmark's baseline): no parallel
        interleave/map, tf.data's automatic map parallelization and prefetch injection off.
      seed: random seed (default: config.seed).

    Returns:
      A dataset of ({"bayer": [B, C, C, 1], "metadata": [B, 12]}, target [B, C, C, 3]).
    """
    config.validate()
    seed = config.seed if seed is None else seed
    repeat = training if repeat is None else repeat
    parallel = None if serial else AUTOTUNE
    paths, held_back = split_sources(data_dir, split)
    files = tf.data.Dataset.from_tensor_slices(paths)
    if training:
        files = files.shuffle(len(paths), seed=seed,
                              reshuffle_each_iteration=True)
    if repeat:
        files = files.repeat()
    def read(path: tf.Tensor) -> tf.data.Dataset:
        return read_shard(path, held_back)

    if serial:
        records = files.interleave(read, cycle_length=1)
    else:
        records = files.interleave(read, cycle_length=4, block_length=1,
                                   num_parallel_calls=AUTOTUNE, deterministic=not training)
    if training:
        records = records.shuffle(config.shuffle_buffer, seed=seed)
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    dataset = tf.data.Dataset.zip((records, seeds))
    dataset = dataset.map(make_example_fn(config, training, with_metadata),
                          num_parallel_calls=parallel,
                          deterministic=None if serial else not training)
    dataset = dataset.batch(batch_size, drop_remainder=training)
    if not serial:
        dataset = dataset.prefetch(AUTOTUNE)
    options = tf.data.Options()
    if serial:
        options.experimental_optimization.map_parallelization = False
        options.experimental_optimization.inject_prefetch = False
        options.experimental_optimization.parallel_batch = False
        options.autotune.enabled = False
    return dataset.with_options(options)


def representative_dataset(data_dir: str, config: DataConfig, num_samples: int,
                           split: str = "train", with_metadata: bool = True
                           ) -> Iterator[list[tf.Tensor]]:
    """Yield `num_samples` single examples [bayer, (metadata)] for int8 calibration.

    Drawn from the same pipeline as training (same normalization, centre crops, no shuffle of
    the crop position), so the quantization ranges match what the model sees.
    """
    dataset = make_dataset(data_dir, split, config, 1, training=False, repeat=True,
                           with_metadata=with_metadata)
    for inputs, _ in dataset.take(num_samples):
        yield [inputs["bayer"]] + ([inputs["metadata"]] if with_metadata else [])
