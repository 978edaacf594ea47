"""The Zurich RAW-to-RGB dataset (PyNET, Ignatov et al. 2020), read with pure TF ops.

Layout (users download it themselves):

    ROOT/train/huawei_raw/<i>.png   448x448 16-bit single-channel RGGB mosaic, 10-bit values
    ROOT/train/canon/<i>.jpg        448x448 Canon 5D Mark IV target
    ROOT/test/huawei_raw/<i>.png, ROOT/test/canon/<i>.jpg
    ROOT/full_resolution/huawei_raw/*.png   (full frames, for visual checks)

Normalization follows PyNET's loader, which divides the raw values by 4 * 255 = 1020 (not 1023)
with no black level: here that is black 0, white level 1020, unit white balance and an identity
colour matrix (ZRR carries no metadata). The targets are the Canon JPEGs / 255, not a rawpy
render (stored x 257 as 16 bits, so value / 65535 == JPEG value / 255), and evaluation follows
PyNET's protocol (whole 448x448 patches, max value 1.0).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from tqdm import tqdm

from deepisp_tf import atomic
from deepisp_tf.config import DataConfig
from deepisp_tf.tf_env import tf

PATCH_SIZE = 448
PYNET_WHITE_LEVEL = 4 * 255  # PyNET's loader: raw / (4 * 255)
SPLIT_FOLDERS = {"train": "train", "test": "test"}


def patch_indices(root: str, split: str) -> list[int]:
    """Return the sorted indices i with both `huawei_raw/<i>.png` and `canon/<i>.jpg`."""
    if split not in SPLIT_FOLDERS:
        raise ValueError(f"ZRR split must be one of {sorted(SPLIT_FOLDERS)}, got {split!r}")
    folder = os.path.join(root, SPLIT_FOLDERS[split])
    raw_dir, rgb_dir = os.path.join(folder, "huawei_raw"), os.path.join(folder, "canon")
    if not os.path.isdir(raw_dir) or not os.path.isdir(rgb_dir):
        raise ValueError(f"{folder}: not a Zurich RAW-to-RGB split (needs huawei_raw/ and canon/)")
    raws = {os.path.splitext(n)[0] for n in os.listdir(raw_dir) if n.endswith(".png")}
    rgbs = {os.path.splitext(n)[0] for n in os.listdir(rgb_dir) if n.endswith(".jpg")}
    return sorted(int(n) for n in raws & rgbs if n.isdigit())


def decode_pair(raw_path: tf.Tensor, rgb_path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Decode one ZRR pair: mosaic [448, 448] uint16 and target [448, 448, 3] uint8."""
    mosaic = tf.io.decode_png(tf.io.read_file(raw_path), channels=1, dtype=tf.uint16)[..., 0]
    target = tf.io.decode_jpeg(tf.io.read_file(rgb_path), channels=3)
    return mosaic, target


def dataset(root: str, split: str) -> tf.data.Dataset:
    """Return a ZRR split as (index, mosaic uint16 [448, 448], target uint8 [448, 448, 3])."""
    indices = patch_indices(root, split)
    if not indices:
        raise ValueError(f"{root}/{split}: no ZRR pairs found")
    folder = os.path.join(root, SPLIT_FOLDERS[split])
    raw_paths = [os.path.join(folder, "huawei_raw", f"{i}.png") for i in indices]
    rgb_paths = [os.path.join(folder, "canon", f"{i}.jpg") for i in indices]
    paths = tf.data.Dataset.from_tensor_slices((np.array(indices), raw_paths, rgb_paths))
    return paths.map(lambda i, r, c: (i, *decode_pair(r, c)), num_parallel_calls=tf.data.AUTOTUNE)


def prepare(root: str, output: str, config: DataConfig, shard_size: int = 500,
            progress: bool = True) -> dict[str, Any]:
    """Write a ZRR copy in the prepared-tile schema: train -> train, test -> val and test.

    PyNET validates on the test patches, so `val` holds the same shards as `test` (hard links).
    Shards are written atomically and existing ones are kept, so an interrupted run resumes.

    Returns:
      The manifest (also written to `output/manifest.json`).
    """
    from deepisp_tf.data import prepare as prepare_lib  # pylint: disable=import-outside-toplevel
    from deepisp_tf.data import tfrecord  # pylint: disable=import-outside-toplevel
    files: list[dict[str, Any]] = []
    for split in ("train", "test"):
        count = len(patch_indices(root, split))
        pairs = dataset(root, split).batch(shard_size)
        os.makedirs(os.path.join(output, "shards", split), exist_ok=True)
        for number, (indices, mosaics, targets) in enumerate(
                tqdm(pairs, total=-(-count // shard_size), desc=f"zrr {split}",
                     disable=not progress)):
            name = f"zrr-{split}-{number:05d}"
            shard = os.path.join("shards", split, f"{name}.tfrecord")
            path = os.path.join(output, shard)
            if not os.path.exists(path):
                with atomic.replacing(path) as temporary, \
                        tf.io.TFRecordWriter(temporary) as writer:
                    for index, mosaic, target in zip(indices.numpy(), mosaics, targets):
                        writer.write(tfrecord.encode_example(
                            mosaic.numpy(), target.numpy().astype(np.uint16) * 257,
                            np.zeros((2, 2)), PYNET_WHITE_LEVEL, np.ones(3), np.eye(3),
                            f"{split}/{index}.png"))
            files.append({"name": name, "status": "ok", "split": split, "shard": shard,
                          "tiles": int(indices.shape[0]), "sha256": None})
    os.makedirs(os.path.join(output, "shards", "val"), exist_ok=True)
    for entry in [f for f in files if f["split"] == "test"]:
        link = os.path.join(output, "shards", "val", os.path.basename(entry["shard"]))
        if not os.path.exists(link):
            os.link(os.path.join(output, entry["shard"]), link)
        files.append({**entry, "split": "val", "shard": os.path.relpath(link, output)})
    manifest = {
        "format_version": prepare_lib.FORMAT_VERSION, "source": "zrr", "root": root,
        "settings": prepare_lib.settings_of(config), "complete": True,
        "normalization": "PyNET: raw / (4 * 255), no black level, no colour metadata",
        "targets": "Canon 5D Mark IV JPEG / 255 (not a rawpy render)",
        "files": files, "splits": prepare_lib.summarize_splits(files)}
    atomic.write_json(os.path.join(output, prepare_lib.MANIFEST), manifest)
    return manifest
