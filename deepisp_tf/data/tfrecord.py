"""The tile example schema: one tf.train.Example per aligned tile, parsed with pure TF ops."""

from __future__ import annotations

import numpy as np

from deepisp_tf.constants import METADATA_SIZE  # noqa: F401  (re-exported: the schema's size)
from deepisp_tf.tf_env import tf

FEATURES = {
    "mosaic": tf.io.FixedLenFeature([], tf.string),        # uint16 LE [T, T], RGGB
    "target": tf.io.FixedLenFeature([], tf.string),        # uint16 LE [T, T, 3], sRGB
    "size": tf.io.FixedLenFeature([2], tf.int64),          # (T, T)
    "black_levels": tf.io.FixedLenFeature([4], tf.float32),  # per RGGB site, row-major 2x2
    "white_level": tf.io.FixedLenFeature([], tf.float32),
    "wb_gains": tf.io.FixedLenFeature([3], tf.float32),    # R, G, B, min = 1
    "cam_to_srgb": tf.io.FixedLenFeature([9], tf.float32),
    # per RGGB site gain (LibRaw balances the greens apart); zeros: spread wb_gains
    "site_gains": tf.io.FixedLenFeature([4], tf.float32, default_value=[0.0] * 4),
    "source": tf.io.FixedLenFeature([], tf.string),
    "offset": tf.io.FixedLenFeature([2], tf.int64),
}


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _floats(values: np.ndarray) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=np.ravel(values).tolist()))


def _ints(values: np.ndarray) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=np.ravel(values).tolist()))


def encode_example(mosaic: np.ndarray, target: np.ndarray, black_levels: np.ndarray,
                   white_level: float, wb_gains: np.ndarray, cam_to_srgb: np.ndarray,
                   source: str, offset: tuple[int, int] = (0, 0),
                   site_gains: np.ndarray | None = None) -> bytes:
    """Serialize one aligned tile.

    Args:
      mosaic: [T, T] uint16 RGGB mosaic tile, black not subtracted.
      target: [T, T, 3] uint16 reference tile.
      black_levels: [2, 2] per RGGB site.
      white_level: saturation value.
      wb_gains: [3] (R, G, B) gains, min = 1.
      cam_to_srgb: [3, 3] camera->sRGB matrix.
      source: name of the source file.
      offset: (row, col) of the tile in its file's aligned mosaic.
      site_gains: [2, 2] gain per RGGB site (None: wb_gains spread over the sites).

    Returns:
      A serialized tf.train.Example.
    """
    if mosaic.shape != target.shape[:2] or target.shape[2:] != (3,):
        raise ValueError(f"mosaic {mosaic.shape} and target {target.shape} do not match")
    features = {
        "mosaic": _bytes(np.ascontiguousarray(mosaic, dtype="<u2").tobytes()),
        "target": _bytes(np.ascontiguousarray(target, dtype="<u2").tobytes()),
        "size": _ints(np.array(mosaic.shape)),
        "black_levels": _floats(black_levels),
        "white_level": _floats(np.array([white_level])),
        "wb_gains": _floats(wb_gains),
        "cam_to_srgb": _floats(cam_to_srgb),
        "source": _bytes(source.encode("utf-8")),
        "offset": _ints(np.array(offset)),
    }
    if site_gains is not None:
        features["site_gains"] = _floats(np.asarray(site_gains, np.float32))
    example = tf.train.Example(features=tf.train.Features(feature=features))
    return example.SerializeToString()


def parse_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parse one serialized tile into tensors: mosaic [T, T] uint16, target [T, T, 3] uint16, ..."""
    parsed = tf.io.parse_single_example(serialized, FEATURES)
    size = tf.cast(parsed["size"], tf.int32)
    parsed["mosaic"] = tf.reshape(tf.io.decode_raw(parsed["mosaic"], tf.uint16), size)
    parsed["target"] = tf.reshape(tf.io.decode_raw(parsed["target"], tf.uint16),
                                  tf.concat([size, [3]], axis=0))
    return parsed
