"""What an evaluation scores: a RAW folder, a prepared dataset's split, or ZRR shards."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Iterator

import numpy as np

from deepisp_tf.data import tfrecord
from deepisp_tf.data.prepare import load_manifest
from deepisp_tf.raw.files import list_raw_files
from deepisp_tf.raw.io import RawRecord, read_raw
from deepisp_tf.tf_env import tf

ZRR_CAMERA = "Huawei P20 (ZRR)"


@dataclasses.dataclass(frozen=True)
class EvalInput:
    """What to evaluate.

    Attributes:
      path: the --input folder.
      kind: "raw_dir" (a folder of RAW files), "dataset" (a prepared dataset's RAW files of one
        split) or "zrr" (a prepared Zurich RAW-to-RGB dataset's shards of one split).
      split: the split evaluated (None for a raw_dir).
      files: RAW files, or TFRecord shards for zrr.
      note: how the files were chosen, for the report.
    """

    path: str
    kind: str
    split: str | None
    files: list[str]
    note: str


@dataclasses.dataclass(frozen=True)
class Item:
    """One image to evaluate: `load()` -> (record, ground truth [H, W, 3] uint16)."""

    name: str
    path: str
    load: Callable[[], tuple[RawRecord, np.ndarray]]
    baselines: tuple[str, ...]
    read: Callable[..., Any] = read_raw  # read_raw or `isolation.DecoderPool.load`


def resolve_input(path: str) -> EvalInput:
    """Return what --input holds: a RAW folder, or a prepared dataset's test (else val) split."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: --input folder does not exist")
    manifest = load_manifest(path)
    if manifest is None:
        files = list_raw_files(path)
        return EvalInput(path, "raw_dir", None, files, f"all {len(files)} files of the folder")
    zrr = manifest.get("source") == "zrr"
    for split in ("test", "val"):
        entries = [e for e in manifest.get("files", [])
                   if e.get("split") == split and e.get("status") == "ok"]
        if entries:
            break
    else:
        raise ValueError(f"{path}: the prepared dataset has no test or val files to evaluate")
    files = [os.path.join(path, e["shard"]) if zrr else e["path"] for e in entries]
    note = f"prepared dataset ({manifest.get('source')}), {split} split, {len(files)} " \
           f"{'shards' if zrr else 'files'} with status ok"
    if split == "val":
        note += "; the test split is empty, so the val split is evaluated instead"
    return EvalInput(path, "zrr" if zrr else "dataset", split, files, note)


def _raw_items(files: list[str], read: Callable[..., Any] = read_raw) -> Iterator[Item]:
    for path in files:
        yield Item(os.path.basename(path), path,
                   lambda path=path: read(path, with_reference=True),
                   ("rawpy_linear", "classic"), read)


def _zrr_items(shards: list[str]) -> Iterator[Item]:
    """Yield the patches of ZRR shards: PyNET-normalized record + Canon JPEG target (x 257)."""
    examples = tf.data.TFRecordDataset(shards).map(tfrecord.parse_example)
    for example in examples.as_numpy_iterator():
        mosaic, source = example["mosaic"], example["source"].decode()
        record = RawRecord(
            path=source, mosaic=mosaic, pattern="RGGB",
            black_levels=example["black_levels"].reshape(2, 2),
            white_level=float(example["white_level"]), wb_gains=example["wb_gains"],
            wb_source="none", cam_to_srgb=example["cam_to_srgb"].reshape(3, 3),
            pixel_aspect=1.0, render_size=tuple(mosaic.shape), camera=ZRR_CAMERA)
        yield Item(source, source, lambda r=record, t=example["target"]: (r, t), ("classic",))


def iter_items(eval_input: EvalInput, limit: int | None = None,
               read: Callable[..., Any] = read_raw) -> Iterator[Item]:
    """Yield the images of an input, at most `limit`."""
    items = _zrr_items(eval_input.files) if eval_input.kind == "zrr" \
        else _raw_items(eval_input.files, read)
    for count, item in enumerate(items):
        if limit is not None and count >= limit:
            return
        yield item
