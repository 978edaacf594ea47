"""The tf.data pipeline: each data op eagerly and inside Dataset.map, and the whole pipeline."""

import os

import numpy as np
import pytest

from deepisp_tf.config import DataConfig
from deepisp_tf.data import gamma, pipeline, tfrecord
from deepisp_tf.raw import cfa, color
from deepisp_tf.tf_env import tf

TILE = 18
CONFIG = DataConfig(tile_size=TILE, tile_stride=TILE, crop_size=12, shuffle_buffer=8, border=0)


def _coded_tile(seed: int):
    """A tile whose target at each site holds the mosaic value: alignment is checkable."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 65535, (TILE, TILE, 3)).astype(np.uint16)
    mosaic = cfa.mosaic(target, "RGGB")  # mosaic value == target's channel of that site
    return mosaic, target


def _example(seed: int, black=((64, 60), (62, 64)), white=65535.0, gains=(2.0, 1.0, 1.5)):
    mosaic, target = _coded_tile(seed)
    return tfrecord.encode_example(mosaic, target, np.array(black, np.float32), white,
                                   np.array(gains, np.float32), np.eye(3), f"f{seed}.dng",
                                   (0, 0))


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("prepared")
    for split, seeds in (("train", range(0, 12)), ("val", range(100, 105))):
        folder = root / "shards" / split
        folder.mkdir(parents=True)
        for shard in range(2):
            with tf.io.TFRecordWriter(str(folder / f"s{shard}.tfrecord")) as writer:
                for seed in seeds:
                    if seed % 2 == shard:
                        writer.write(_example(seed))
    return str(root)


def _eager_and_mapped(fn, *args):
    """Run `fn` eagerly and inside Dataset.map on the same inputs; return both results."""
    eager = fn(*args)
    mapped = next(iter(tf.data.Dataset.from_tensors(args).map(fn)))
    return eager, mapped


def test_normalize_matches_numpy_normalize_and_gamma_eagerly_and_in_map():
    serialized = tf.constant(_example(3, white=30000.0))

    def fn(value):
        return pipeline.normalize(tfrecord.parse_example(value))

    mosaic, target = _coded_tile(3)
    expected = color.gamma_compression(color.normalize(
        mosaic, "RGGB", np.array([[64, 60], [62, 64]]), 30000.0, np.array([2.0, 1.0, 1.5])))
    for bayer, metadata, out_target in _eager_and_mapped(fn, serialized):
        np.testing.assert_allclose(bayer.numpy()[..., 0], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(metadata.numpy(), [1, 0, 0, 0, 1, 0, 0, 0, 1, 2, 1, 1.5])
        np.testing.assert_allclose(out_target.numpy(), target / 65535.0, rtol=1e-6)


def test_tf_gamma_matches_numpy_gamma_and_inverts_eagerly_and_in_map():
    values = np.linspace(0.0, 1.0, 2001, dtype=np.float32)
    for encoded, decoded in _eager_and_mapped(
            lambda x: (gamma.gamma_compression(x), gamma.gamma_expansion(
                gamma.gamma_compression(x))), tf.constant(values)):
        np.testing.assert_allclose(encoded.numpy(), color.gamma_compression(values), atol=2e-6)
        np.testing.assert_allclose(decoded.numpy(), values, atol=2e-5)


@pytest.mark.parametrize("axis", [0, 1])
def test_bayer_flip_keeps_rggb_and_alignment_eagerly_and_in_map(axis):
    mosaic, target = _coded_tile(5)
    bayer = tf.constant(mosaic[..., None].astype(np.float32))
    rgb = tf.constant(target.astype(np.float32))
    size = TILE - 2
    for out_bayer, out_rgb in _eager_and_mapped(
            lambda b, t: pipeline.bayer_flip(b, t, axis, size), bayer, rgb):
        out_bayer, out_rgb = out_bayer.numpy()[..., 0], out_rgb.numpy()
        assert out_bayer.shape[axis] == size
        np.testing.assert_array_equal(cfa.mosaic(out_rgb, "RGGB"), out_bayer)
        flipped = np.flip(mosaic, axis)
        np.testing.assert_array_equal(out_bayer, np.take(flipped, range(1, 1 + size), axis))


def test_augment_every_seed_keeps_rggb_phase_and_alignment():
    mosaic, target = _coded_tile(7)
    bayer = tf.constant(mosaic[..., None].astype(np.float32))
    rgb = tf.constant(target.astype(np.float32))
    seen = set()
    for seed in range(24):
        fn = lambda b, t, s=seed: pipeline.augment(b, t, TILE - 2, tf.constant([s, 1]))  # noqa
        for out_bayer, out_rgb in _eager_and_mapped(fn, bayer, rgb):
            out_bayer, out_rgb = out_bayer.numpy()[..., 0], out_rgb.numpy()
            assert out_bayer.shape == (TILE - 2, TILE - 2)
            np.testing.assert_array_equal(cfa.mosaic(out_rgb, "RGGB"), out_bayer)
            seen.add(out_bayer.tobytes())
    assert len(seen) >= 6  # flips and transposes really vary


def test_random_even_offset_is_even_and_in_range():
    for seed in range(30):
        offset = pipeline.random_even_offset(tf.constant(TILE), 8, tf.constant([seed, 0]))
        assert np.all(offset.numpy() % 2 == 0) and np.all(offset.numpy() <= TILE - 8)


def test_make_dataset_training_batches_have_model_contract(dataset_dir):
    dataset = pipeline.make_dataset(dataset_dir, "train", CONFIG, 4, training=True)
    inputs, target = next(iter(dataset))
    assert inputs["bayer"].shape == (4, 12, 12, 1) and inputs["bayer"].dtype == tf.float32
    assert inputs["metadata"].shape == (4, 12)
    assert target.shape == (4, 12, 12, 3)
    assert 0.0 <= float(tf.reduce_min(inputs["bayer"])) and float(
        tf.reduce_max(inputs["bayer"])) <= 1.0


def test_make_dataset_serial_and_parallel_validation_give_same_elements(dataset_dir):
    def collect(serial):
        dataset = pipeline.make_dataset(dataset_dir, "val", CONFIG, 2, training=False,
                                        serial=serial)
        return sorted(float(t.numpy().sum()) for _, batch in dataset for t in batch)

    parallel = collect(False)
    assert len(parallel) == 5
    assert parallel == collect(True)


def test_make_dataset_without_metadata_has_only_bayer(dataset_dir):
    dataset = pipeline.make_dataset(dataset_dir, "val", CONFIG, 2, training=False,
                                    with_metadata=False)
    inputs, _ = next(iter(dataset))
    assert set(inputs) == {"bayer"}


def test_representative_dataset_yields_requested_single_examples(dataset_dir):
    samples = list(pipeline.representative_dataset(dataset_dir, CONFIG, 7, split="val"))
    assert len(samples) == 7
    assert samples[0][0].shape == (1, 12, 12, 1) and samples[0][1].shape == (1, 12)


def test_make_dataset_missing_split_raises_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no shards for split 'test'"):
        pipeline.make_dataset(str(tmp_path), "test", CONFIG, 2, training=False)


def test_pipeline_graph_has_no_python_function_ops(dataset_dir):
    """Pure TF: no py_function/numpy_function, so tf.data service workers can run it."""
    dataset = pipeline.make_dataset(dataset_dir, "train", CONFIG, 2, training=True)
    graph = dataset._as_serialized_graph().numpy()  # pylint: disable=protected-access
    assert b"PyFunc" not in graph and b"EagerPyFunc" not in graph


def test_shard_files_mixes_several_datasets_given_comma_separated(dataset_dir, tmp_path):
    other = tmp_path / "shards" / "train"
    other.mkdir(parents=True)
    (other / "mine.tfrecord").write_bytes(b"")
    one = pipeline.shard_files(dataset_dir, "train")
    both = pipeline.shard_files(f"{dataset_dir},{tmp_path}", "train")
    assert both == sorted(one + [str(other / "mine.tfrecord")])
    with pytest.raises(ValueError, match="no shards for split 'test'"):
        pipeline.shard_files([dataset_dir, str(tmp_path)], "test")
